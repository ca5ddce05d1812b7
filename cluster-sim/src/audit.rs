//! What the simulated API server remembers of the writes it served, for tests to check
//! invariants against ("no eviction without a slot holder") rather than against the state a
//! test happens to look at afterwards.

use std::collections::BTreeMap;

use cluster_api::{EvictionOutcome, Lease, Node, Pod, Timestamp, Workload, WorkloadRef};

use crate::state::State;

/// How many eviction records are kept before the oldest are dropped.
pub(crate) const EVICTION_LIMIT: usize = 100_000;

/// One eviction request the cluster answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvictionRecord {
    /// When it was answered (simulated wall clock).
    pub at: Timestamp,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod's uid, if the pod existed.
    pub uid: Option<String>,
    /// The node the pod was bound to, if it existed and was bound.
    pub node: Option<String>,
    /// What the Eviction API answered.
    pub outcome: EvictionOutcome,
}

/// Who made a write the cluster accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// A client of the API: the cores through [`ClusterApi`](cluster_api::ClusterApi), or
    /// anything that reaches the API endpoint.
    Client,
    /// A test's own hand on the cluster ([`SimCluster::edit_node`](crate::SimCluster::edit_node)
    /// and the other controls): an administrator's `kubectl`.
    Operator,
}

/// One write the cluster accepted, as the cluster saw it: the object before and after.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Write<'a> {
    /// A Lease was created (`before` is `None`), replaced, or deleted (`after` is `None`).
    Lease {
        /// The Lease before the write.
        before: Option<&'a Lease>,
        /// The Lease as stored.
        after: Option<&'a Lease>,
    },
    /// A Node changed.
    Node {
        /// The Node before the write.
        before: &'a Node,
        /// The Node as stored.
        after: &'a Node,
        /// Who changed it.
        by: Writer,
    },
    /// An eviction request arrived, before any injected latency or fault delays or fails it:
    /// the moment its sender sent it.
    EvictionRequested {
        /// The pod's namespace.
        namespace: &'a str,
        /// The pod's name.
        name: &'a str,
        /// The node the pod is bound to, if it exists and is bound (and is the pod a uid
        /// precondition names, if there is one).
        node: Option<&'a str>,
    },
    /// An eviction was answered (the pod's node, if it had one, is in the record).
    Eviction(&'a EvictionRecord),
    /// A patch of a workload's pod template annotations arrived, before any injected latency
    /// or fault delays or fails it: the moment its sender sent it.
    WorkloadPatchRequested {
        /// The workload.
        workload: &'a WorkloadRef,
        /// The annotations set (`Some`) or removed (`None`).
        changes: &'a BTreeMap<String, Option<String>>,
    },
    /// A workload's pod template annotations were patched through the API.
    Workload {
        /// The workload before the patch.
        before: &'a Workload,
        /// The workload as stored.
        after: &'a Workload,
    },
}

/// A read-only look at the cluster at the moment of a write, for an [`Auditor`].
pub struct ClusterView<'a> {
    pub(crate) state: &'a State,
}

impl ClusterView<'_> {
    /// The simulated wall-clock time of the write.
    pub fn now(&self) -> Timestamp {
        self.state.wall()
    }

    /// A Node by name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.state.nodes.get(name)
    }

    /// Whether the node's operating system runs, so that its Zincati can speak: what the
    /// simulation knows and the Node may not show yet ([`SimCluster::os_up`]). `None` for a
    /// node that does not exist.
    ///
    /// [`SimCluster::os_up`]: crate::SimCluster::os_up
    pub fn os_up(&self, name: &str) -> Option<bool> {
        self.state.nodes.contains_key(name).then(|| {
            self.state
                .rebooting
                .get(name)
                .is_none_or(|(_, boot)| *boot != crate::state::Boot::Down)
        })
    }

    /// The pods bound to a node, terminating ones included.
    pub fn pods_on(&self, node: &str) -> Vec<&Pod> {
        self.state
            .pods_on_node(node)
            .iter()
            .filter_map(|k| self.state.pods.get(k).map(|sp| &sp.pod))
            .collect()
    }

    /// The Leases of a namespace.
    pub fn leases(&self, namespace: &str) -> impl Iterator<Item = &Lease> {
        self.state
            .leases
            .iter()
            .filter(move |((ns, _), _)| ns == namespace)
            .map(|(_, lease)| lease)
    }

    /// One Lease.
    pub fn lease(&self, namespace: &str, name: &str) -> Option<&Lease> {
        self.state
            .leases
            .get(&(namespace.to_string(), name.to_string()))
    }
}

/// Sees every write the cluster accepts, at the moment it is accepted, with the cluster as it
/// is then: a checker of invariants ("no eviction without a slot holder") that cannot miss a
/// state because it looked too late.
///
/// It runs under the cluster's lock: it must not call back into the [`SimCluster`](crate::SimCluster)
/// (that would deadlock), and it should be quick.
pub trait Auditor: Send + Sync + 'static {
    /// One accepted write.
    fn audit(&self, write: &Write<'_>, cluster: &ClusterView<'_>);
}

// === impl State: auditing ===

impl State {
    /// Shows a write to every auditor.
    pub(crate) fn audit(&self, write: &Write<'_>) {
        if self.auditors.is_empty() {
            return;
        }
        let view = ClusterView { state: self };
        for auditor in &self.auditors {
            auditor.audit(write, &view);
        }
    }
}
