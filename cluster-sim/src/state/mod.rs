//! The simulated cluster's objects, the timers that move them, and the watchers that see them.
//!
//! This file holds the types ([`State`] and what it is made of, [`Auditor`] and the
//! [`ClusterView`] it gets, which hold each other); the behaviour is in the children:
//!
//! | file | what it holds |
//! |---|---|
//! | `nodes.rs` | Nodes and Pods: reboots, readiness, termination, scheduling |
//! | `workloads.rs` | workloads, Leases, and the pods the controllers create |
//! | `configs.rs` | ConfigMaps and Secrets |
//! | `timers.rs` | the timers and what each does when it fires |
//! | `audit.rs` | showing every accepted write to the auditors |
//! | `watchers.rs` | registering watches |
//! | `rules.rs` | what the API server and controllers require of objects, as plain functions |

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use cluster_api::{
    Condition, Error, Event, EventSeries, Lease, Node, OwnerRef, Pod, PodFilter, PodPhase, Result,
    WatchEvent, Workload, WorkloadFilter, WorkloadKind, WorkloadRef,
};
use jiff::{SignedDuration, Timestamp};
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use crate::audit::{EvictionRecord, Write};
use crate::budget::Budget;
use crate::changes::{ChangeLog, ChangeType, Object};
use crate::faults::Faults;
use crate::spec::WorkloadSpec;

mod audit;
mod configs;
mod nodes;
mod rules;
mod timers;
mod watchers;
mod workloads;

pub use rules::ANNOTATIONS_LIMIT;
use rules::{added_or_modified, daemonset_tolerations, fits};
pub(crate) use rules::{fnv1a, note_too_long, template_hash, validate_annotations};

pub(crate) type Key = (String, String);

/// How many Events the cluster keeps before dropping the oldest (the API server expires them
/// after an hour; a bound serves the same purpose here).
const EVENT_LIMIT: usize = 10_000;

/// Settings of a [`SimCluster`](crate::SimCluster).
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// The wall-clock time the simulation starts at; every timestamp it writes is this plus the
    /// Tokio time elapsed since the cluster was created.
    pub start_time: Timestamp,
    /// How long a rebooting node's operating system is down: Zincati starts again (and says
    /// steady-state at once) this long after
    /// [`reboot_node`](crate::SimCluster::reboot_node).
    pub reboot_duration: Duration,
    /// How long after the operating system is up the kubelet posts its first status (the new
    /// bootID, Ready, a fresh heartbeat). Until then the Node shows what it showed before the
    /// reboot, as on a real cluster.
    pub kubelet_start: Duration,
    /// kube-controller-manager's `--node-monitor-grace-period` (50 s by default since
    /// Kubernetes 1.32): a node whose kubelet has been silent this long turns Ready=Unknown,
    /// and its pods NotReady. A reboot shorter than this never shows the node NotReady.
    pub node_monitor_grace_period: Duration,
    /// The kubelet's `nodeStatusReportFrequency` (5 min by default on a real kubelet): with
    /// `Some`, every running kubelet posts its status (a fresh heartbeat) this often even when
    /// nothing changed. `None` (the default here): only at its start and on changes, which
    /// keeps large simulations quiet.
    pub node_status_report: Option<Duration>,
    /// How long a workload controller takes to notice a spec change (so `observedGeneration`
    /// lags `generation` briefly, as on a real cluster).
    pub controller_delay: Duration,
    /// How many container images each node's kubelet reports in `status.images` (the
    /// kubelet's own limit is 50). They fill the Nodes the API endpoint serves, which is where
    /// most of a real Node's size comes from; the in-process API has no field for them.
    pub node_images: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            start_time: Timestamp::from_second(1_767_603_600).unwrap_or(Timestamp::UNIX_EPOCH), // 2026-01-05T09:00:00Z, a Monday
            reboot_duration: Duration::from_secs(35),
            kubelet_start: Duration::from_secs(10),
            node_monitor_grace_period: Duration::from_secs(50),
            node_status_report: None,
            controller_delay: Duration::from_millis(50),
            node_images: 0,
        }
    }
}

/// A pod plus what only the simulation knows about it.
#[derive(Debug, Clone)]
pub(crate) struct SimPod {
    pub(crate) pod: Pod,
    /// The simulated workload that created it.
    pub(crate) owner: Option<WorkloadRef>,
    /// The template revision it was made from.
    pub(crate) revision: String,
    /// StatefulSet ordinal.
    pub(crate) ordinal: Option<i32>,
    pub(crate) start_delay: Duration,
    /// Crash-looping: bound and running, never Ready.
    pub(crate) never_ready: bool,
    /// Ignores termination (a finalizer that never clears, a hung kubelet).
    pub(crate) stuck: bool,
    /// Its `creationTimestamp` (shown by the API endpoint).
    #[cfg_attr(not(feature = "apiserver"), allow(dead_code))]
    pub(crate) created: Timestamp,
}

/// A workload plus its controller's memory.
#[derive(Debug, Clone)]
pub(crate) struct SimWorkload {
    pub(crate) w: Workload,
    pub(crate) spec: WorkloadSpec,
    /// The revision the controller rolls towards (Deployment's new ReplicaSet, StatefulSet's
    /// updateRevision, DaemonSet's current template).
    pub(crate) target_revision: String,
    /// A Deployment's ReplicaSets, oldest first: one per template it has rolled to, the last
    /// `revisionHistoryLimit` + 1 kept (empty for other kinds).
    pub(crate) history: Vec<Revision>,
    /// New pods crash-loop.
    pub(crate) stalled: bool,
    /// Last time the rollout made progress (the Progressing condition's lastUpdateTime).
    pub(crate) progress_at: Instant,
    pub(crate) seq: u64,
}

/// One of a Deployment's ReplicaSets: the template it was made for and when.
#[derive(Debug, Clone)]
pub(crate) struct Revision {
    /// The template's hash (the `pod-template-hash` label and the ReplicaSet's name suffix).
    pub(crate) hash: String,
    /// The `deployment.kubernetes.io/revision` number.
    pub(crate) number: u64,
    /// The template's annotations (shown by the API endpoint).
    #[cfg_attr(not(feature = "apiserver"), allow(dead_code))]
    pub(crate) template_annotations: BTreeMap<String, String>,
    #[cfg_attr(not(feature = "apiserver"), allow(dead_code))]
    pub(crate) created: Timestamp,
}

/// How many old ReplicaSets a Deployment keeps (`revisionHistoryLimit`'s default).
pub(crate) const REVISION_HISTORY_LIMIT: usize = 10;

#[derive(Debug, Clone)]
pub(crate) enum Timer {
    PodReady {
        key: Key,
        uid: String,
    },
    PodGone {
        key: Key,
        uid: String,
    },
    /// The node controller's grace period ran out while the kubelet was away.
    NodeUnknown {
        name: String,
        uid: String,
        boot: u64,
    },
    /// The operating system is up again (Zincati runs).
    OsUp {
        name: String,
        uid: String,
        boot: u64,
    },
    /// Every running kubelet posts its status ([`SimConfig::node_status_report`]).
    NodeStatusReport,
    /// The kubelet posts its first status after a reboot.
    NodeBack {
        name: String,
        uid: String,
        boot: u64,
    },
    Sync {
        workload: WorkloadRef,
    },
}

#[derive(Default)]
pub(crate) struct Watchers {
    nodes: Vec<UnboundedSender<Result<WatchEvent<Node>>>>,
    pods: Vec<(PodFilter, UnboundedSender<Result<WatchEvent<Pod>>>)>,
    workloads: Vec<(
        WorkloadFilter,
        UnboundedSender<Result<WatchEvent<Workload>>>,
    )>,
    leases: Vec<(LeaseFilter, UnboundedSender<Result<WatchEvent<Lease>>>)>,
    configs: Vec<(
        ConfigFilter,
        UnboundedSender<Result<WatchEvent<cluster_api::ConfigObject>>>,
    )>,
}

/// How far a node's reboot has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Boot {
    /// The machine is down: no kubelet, no Zincati.
    Down,
    /// The operating system is up (Zincati runs); the kubelet has not reported yet.
    Starting,
}

/// A ConfigMap or Secret by kind, namespace and name.
pub(crate) type ConfigKey = (cluster_api::ConfigKind, String, String);

/// The namespace and kind of a ConfigMap or Secret watch.
pub(crate) type ConfigFilter = (String, cluster_api::ConfigKind);

/// The namespace and label selector of a Lease watch.
pub(crate) type LeaseFilter = (String, cluster_api::LabelSelector);

pub(crate) struct State {
    pub(crate) config: SimConfig,
    origin: Instant,
    /// The instant the simulation has reached; timers fire at exactly their deadline.
    pub(crate) now: Instant,
    rv: u64,
    uid: u64,
    pub(crate) nodes: BTreeMap<String, Node>,
    /// Nodes in a reboot, by name: which reboot (a sequence number), and how far it has come.
    pub(crate) rebooting: HashMap<String, (u64, Boot)>,
    reboot_seq: u64,
    pub(crate) pods: BTreeMap<Key, SimPod>,
    pods_by_node: HashMap<String, BTreeSet<Key>>,
    pods_by_owner: HashMap<WorkloadRef, BTreeSet<Key>>,
    unscheduled: BTreeSet<Key>,
    pub(crate) budgets: BTreeMap<Key, Budget>,
    pub(crate) workloads: BTreeMap<WorkloadRef, SimWorkload>,
    pub(crate) leases: BTreeMap<Key, Lease>,
    /// ConfigMaps and Secrets, as watches see them.
    pub(crate) configs: BTreeMap<ConfigKey, cluster_api::ConfigObject>,
    /// Secrets with their data, by namespace and name (each also in `configs`, as a digest).
    pub(crate) secrets: BTreeMap<Key, cluster_api::Secret>,
    /// Events by a sequence number, oldest first.
    pub(crate) events: VecDeque<(u64, Event)>,
    event_seq: u64,
    series: EventSeries<u64>,
    pub(crate) evictions: VecDeque<EvictionRecord>,
    timers: BTreeMap<(Instant, u64), Timer>,
    timer_seq: u64,
    pub(crate) watchers: Watchers,
    pub(crate) dirty: BTreeSet<WorkloadRef>,
    pub(crate) faults: Faults,
    pub(crate) changes: ChangeLog,
    pub(crate) access: crate::access::Access,
    /// Namespaces created through the API endpoint (others exist while objects live in them).
    #[cfg_attr(not(feature = "apiserver"), allow(dead_code))]
    pub(crate) namespaces: BTreeSet<String>,
    /// Who sees every accepted write ([`SimCluster::add_auditor`](crate::SimCluster::add_auditor)).
    pub(crate) auditors: Vec<std::sync::Arc<dyn Auditor>>,
}

/// A read-only look at the cluster at the moment of a write, for an [`Auditor`].
pub struct ClusterView<'a> {
    pub(crate) state: &'a State,
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

// === impl State ===

impl State {
    pub(crate) fn new(config: SimConfig) -> Self {
        let now = Instant::now();
        let mut state = State {
            config,
            origin: now,
            now,
            rv: 1000,
            uid: 0,
            nodes: BTreeMap::new(),
            rebooting: HashMap::new(),
            reboot_seq: 0,
            pods: BTreeMap::new(),
            pods_by_node: HashMap::new(),
            pods_by_owner: HashMap::new(),
            unscheduled: BTreeSet::new(),
            budgets: BTreeMap::new(),
            workloads: BTreeMap::new(),
            leases: BTreeMap::new(),
            configs: BTreeMap::new(),
            secrets: BTreeMap::new(),
            events: VecDeque::new(),
            event_seq: 0,
            series: EventSeries::default(),
            evictions: VecDeque::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            watchers: Watchers::default(),
            dirty: BTreeSet::new(),
            faults: Faults::default(),
            changes: ChangeLog::default(),
            access: crate::access::Access::default(),
            namespaces: BTreeSet::new(),
            auditors: Vec::new(),
        };
        if let Some(every) = state.config.node_status_report {
            state.schedule(every, Timer::NodeStatusReport);
        }
        state
    }

    // --- time ---

    /// The wall-clock time at `self.now`.
    pub(crate) fn wall(&self) -> Timestamp {
        self.wall_at(self.now)
    }

    pub(crate) fn wall_at(&self, at: Instant) -> Timestamp {
        let elapsed = SignedDuration::try_from(at.saturating_duration_since(self.origin))
            .unwrap_or(SignedDuration::MAX);
        self.config
            .start_time
            .checked_add(elapsed)
            .unwrap_or(self.config.start_time)
    }

    // --- identity ---

    pub(crate) fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    /// The cluster's current resourceVersion.
    #[cfg_attr(not(feature = "apiserver"), allow(dead_code))]
    pub(crate) fn current_rv(&self) -> u64 {
        self.rv
    }

    /// Notes a write in the change log (when one is kept): `object` was written at the
    /// current version, or deleted (which takes a version of its own, as in etcd).
    fn log(&mut self, type_: ChangeType, object: impl FnOnce() -> Object) {
        if !self.changes.is_enabled() {
            return;
        }
        if type_ == ChangeType::Deleted {
            self.rv += 1;
        }
        let rv = self.rv;
        self.changes.record(rv, type_, object());
    }

    pub(crate) fn next_uid(&mut self) -> String {
        self.uid += 1;
        format!("5e1a0000-0000-4000-8000-{:012x}", self.uid)
    }

    /// Ends every open watch with an error, as an API server restart, a load balancer
    /// timeout or an expired resourceVersion (`410 Gone`) ends them.
    pub(crate) fn break_watches(&mut self, message: &str) {
        let now = self.rv;
        self.changes.break_all(now);
        let error = Error::unavailable(message);
        let w = std::mem::take(&mut self.watchers);
        for tx in w.nodes {
            let _ = tx.send(Err(error.clone()));
        }
        for (_, tx) in w.pods {
            let _ = tx.send(Err(error.clone()));
        }
        for (_, tx) in w.workloads {
            let _ = tx.send(Err(error.clone()));
        }
        for (_, tx) in w.leases {
            let _ = tx.send(Err(error.clone()));
        }
    }

    // --- events ---

    /// Records an Event; an identical repeat within the series window counts on the Event
    /// already recorded, as a recorder that keeps event series does.
    pub(crate) fn push_event(&mut self, mut event: Event) -> u64 {
        let time = event.time.unwrap_or_else(|| self.wall());
        if let Some((seq, count)) = self.series.repeat(&event) {
            let at = self.events.partition_point(|(s, _)| *s < seq);
            if let Some((s, stored)) = self.events.get_mut(at)
                && *s == seq
            {
                stored.count = count;
                stored.time = Some(time);
                return seq;
            }
            self.series.forget(&event);
        }
        event.time = Some(time);
        event.count = 1;
        if self.events.len() == EVENT_LIMIT {
            self.events.pop_front();
        }
        self.event_seq += 1;
        self.series.started(&event, self.event_seq);
        self.events.push_back((self.event_seq, event));
        self.event_seq
    }
}
