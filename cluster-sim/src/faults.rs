//! Counting calls and injecting failures, per [`Operation`].

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::Duration;

use cluster_api::Error;

/// One kind of [`ClusterApi`](cluster_api::ClusterApi) call, for counters and fault injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Operation {
    /// `get_node`.
    GetNode,
    /// `list_nodes`.
    ListNodes,
    /// `watch_nodes`.
    WatchNodes,
    /// `patch_node`.
    PatchNode,
    /// `list_pods`.
    ListPods,
    /// `watch_pods`.
    WatchPods,
    /// `evict_pod`.
    EvictPod,
    /// `list_disruption_budgets`.
    ListBudgets,
    /// `get_lease`.
    GetLease,
    /// `list_leases`.
    ListLeases,
    /// `watch_leases`.
    WatchLeases,
    /// `create_lease`.
    CreateLease,
    /// `replace_lease`.
    ReplaceLease,
    /// `delete_lease`.
    DeleteLease,
    /// `get_workload`.
    GetWorkload,
    /// `list_workloads`.
    ListWorkloads,
    /// `watch_workloads`.
    WatchWorkloads,
    /// `patch_template_annotations`.
    PatchWorkload,
    /// `record_event`.
    RecordEvent,
    /// `list_events`.
    ListEvents,
    /// `watch_config`.
    WatchConfig,
    /// `get_secret`.
    GetSecret,
    /// `create_secret`.
    CreateSecret,
}

// === impl Operation ===

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 23] = [
        Operation::GetNode,
        Operation::ListNodes,
        Operation::WatchNodes,
        Operation::PatchNode,
        Operation::ListPods,
        Operation::WatchPods,
        Operation::EvictPod,
        Operation::ListBudgets,
        Operation::GetLease,
        Operation::ListLeases,
        Operation::WatchLeases,
        Operation::CreateLease,
        Operation::ReplaceLease,
        Operation::DeleteLease,
        Operation::GetWorkload,
        Operation::ListWorkloads,
        Operation::WatchWorkloads,
        Operation::PatchWorkload,
        Operation::RecordEvent,
        Operation::ListEvents,
        Operation::WatchConfig,
        Operation::GetSecret,
        Operation::CreateSecret,
    ];

    /// The `ClusterApi` method name.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::GetNode => "get_node",
            Operation::ListNodes => "list_nodes",
            Operation::WatchNodes => "watch_nodes",
            Operation::PatchNode => "patch_node",
            Operation::ListPods => "list_pods",
            Operation::WatchPods => "watch_pods",
            Operation::EvictPod => "evict_pod",
            Operation::ListBudgets => "list_disruption_budgets",
            Operation::GetLease => "get_lease",
            Operation::ListLeases => "list_leases",
            Operation::WatchLeases => "watch_leases",
            Operation::CreateLease => "create_lease",
            Operation::ReplaceLease => "replace_lease",
            Operation::DeleteLease => "delete_lease",
            Operation::GetWorkload => "get_workload",
            Operation::ListWorkloads => "list_workloads",
            Operation::WatchWorkloads => "watch_workloads",
            Operation::PatchWorkload => "patch_template_annotations",
            Operation::RecordEvent => "record_event",
            Operation::ListEvents => "list_events",
            Operation::WatchConfig => "watch_config",
            Operation::GetSecret => "get_secret",
            Operation::CreateSecret => "create_secret",
        }
    }

    /// Whether the call changes cluster state.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Operation::PatchNode
                | Operation::EvictPod
                | Operation::CreateLease
                | Operation::ReplaceLease
                | Operation::DeleteLease
                | Operation::PatchWorkload
                | Operation::RecordEvent
        )
    }

    /// Whether the call lists (or starts a watch with a list of) a whole collection.
    pub fn is_list(self) -> bool {
        matches!(
            self,
            Operation::ListNodes
                | Operation::WatchNodes
                | Operation::ListPods
                | Operation::WatchPods
                | Operation::ListBudgets
                | Operation::ListLeases
                | Operation::WatchLeases
                | Operation::ListWorkloads
                | Operation::WatchWorkloads
                | Operation::ListEvents
                | Operation::WatchConfig
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many calls of each operation a [`SimCluster`](crate::SimCluster) has served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallCounts(pub(crate) BTreeMap<Operation, u64>);

impl CallCounts {
    /// Calls of one operation.
    pub fn get(&self, op: Operation) -> u64 {
        self.0.get(&op).copied().unwrap_or(0)
    }

    /// Calls of every operation.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Calls that change cluster state.
    pub fn writes(&self) -> u64 {
        self.sum(Operation::is_write)
    }

    /// Calls that list a collection.
    pub fn lists(&self) -> u64 {
        self.sum(Operation::is_list)
    }

    /// The non-zero counters, by operation.
    pub fn iter(&self) -> impl Iterator<Item = (Operation, u64)> + '_ {
        self.0
            .iter()
            .map(|(op, n)| (*op, *n))
            .filter(|(_, n)| *n > 0)
    }

    fn sum(&self, pred: impl Fn(Operation) -> bool) -> u64 {
        self.0
            .iter()
            .filter(|(op, _)| pred(**op))
            .map(|(_, n)| n)
            .sum()
    }
}

impl fmt::Display for CallCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (op, n) in self.iter() {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{op}={n}")?;
        }
        if first {
            f.write_str("no calls")?;
        }
        Ok(())
    }
}

/// Failures and delays waiting to be applied to calls.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// Per operation, what the next calls get: `None` lets a call through.
    queued: BTreeMap<Operation, VecDeque<Option<Error>>>,
    after: BTreeMap<Operation, VecDeque<Error>>,
    always: BTreeMap<Operation, Error>,
    latency: BTreeMap<Operation, Duration>,
    pub(crate) counts: CallCounts,
}

impl Faults {
    pub(crate) fn fail_next(&mut self, op: Operation, times: usize, error: Error) {
        self.fail_later(op, 0, times, error);
    }

    pub(crate) fn fail_later(&mut self, op: Operation, skip: usize, times: usize, error: Error) {
        let queue = self.queued.entry(op).or_default();
        queue.extend(std::iter::repeat_n(None, skip));
        queue.extend(std::iter::repeat_n(Some(error), times));
    }

    pub(crate) fn fail_after_next(&mut self, op: Operation, times: usize, error: Error) {
        let queue = self.after.entry(op).or_default();
        queue.extend(std::iter::repeat_n(error, times));
    }

    /// The error to answer a call with after it took effect, if one is queued.
    pub(crate) fn after_call(&mut self, op: Operation) -> Option<Error> {
        self.after.get_mut(&op).and_then(VecDeque::pop_front)
    }

    pub(crate) fn fail_always(&mut self, op: Operation, error: Error) {
        self.always.insert(op, error);
    }

    pub(crate) fn set_latency(&mut self, op: Operation, latency: Duration) {
        if latency.is_zero() {
            self.latency.remove(&op);
        } else {
            self.latency.insert(op, latency);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.queued.clear();
        self.after.clear();
        self.always.clear();
        self.latency.clear();
    }

    /// Counts a call and says what should happen to it: a delay first, then maybe an error.
    pub(crate) fn on_call(&mut self, op: Operation) -> (Option<Duration>, Option<Error>) {
        *self.counts.0.entry(op).or_default() += 1;
        let error = match self.queued.get_mut(&op).and_then(VecDeque::pop_front) {
            Some(queued) => queued,
            None => self.always.get(&op).cloned(),
        };
        (self.latency.get(&op).copied(), error)
    }
}
