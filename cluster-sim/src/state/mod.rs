//! The simulated cluster's objects, the timers that move them, and the watchers that see them.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use cluster_api::{
    Condition, Error, Event, EventSeries, Lease, Node, OwnerRef, Pod, PodFilter, PodPhase, Result,
    Toleration, WatchEvent, Workload, WorkloadFilter, WorkloadKind, WorkloadRef,
};
use jiff::{SignedDuration, Timestamp};
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use crate::audit::{EVICTION_LIMIT, EvictionRecord};
use crate::budget::Budget;
use crate::changes::{ChangeLog, ChangeType, Object};
use crate::faults::Faults;
use crate::spec::WorkloadSpec;

mod configs;
mod nodes;
mod workloads;

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
    pub(crate) configs: BTreeMap<configs::ConfigKey, cluster_api::ConfigObject>,
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
    pub(crate) auditors: Vec<std::sync::Arc<dyn crate::audit::Auditor>>,
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

    /// Fires every timer due by `target`, in order, each at its own deadline.
    pub(crate) fn advance_to(&mut self, target: Instant) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > target {
                break;
            }
            let ((at, _), timer) = entry.remove_entry();
            self.now = self.now.max(at);
            self.fire(timer);
            self.settle();
        }
        self.now = self.now.max(target);
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.first_key_value().map(|((at, _), _)| *at)
    }

    pub(crate) fn schedule(&mut self, after: Duration, timer: Timer) {
        self.timer_seq += 1;
        self.timers
            .insert((self.now + after, self.timer_seq), timer);
    }

    fn fire(&mut self, timer: Timer) {
        match timer {
            Timer::PodReady { key, uid } => {
                let node_ready = |st: &State, sp: &SimPod| {
                    sp.pod.node_name.as_ref().is_some_and(|n| st.kubelet_up(n))
                };
                let Some(sp) = self.pods.get(&key) else {
                    return;
                };
                if sp.pod.uid != uid || sp.pod.is_terminating() || !node_ready(self, sp) {
                    return;
                }
                let mut sp = sp.clone();
                let ready = !sp.never_ready;
                if sp.pod.phase == PodPhase::Running && sp.pod.ready == ready {
                    return;
                }
                sp.pod.phase = PodPhase::Running;
                sp.pod.ready = ready;
                self.put_pod(sp);
            }
            Timer::PodGone { key, uid } => {
                let Some(sp) = self.pods.get(&key).filter(|sp| sp.pod.uid == uid) else {
                    return;
                };
                // Only a kubelet confirms that a bound pod has stopped; on a NotReady or
                // rebooting node nobody does, and the pod stays Terminating until it is back.
                let kubelet_up = sp
                    .pod
                    .node_name
                    .as_ref()
                    .is_none_or(|n| !self.nodes.contains_key(n) || self.kubelet_up(n));
                if kubelet_up {
                    self.remove_pod(&key);
                }
            }
            Timer::NodeUnknown { name, uid, boot } => {
                if !self.in_reboot(&name, &uid, boot) {
                    return;
                }
                // Silent for the whole grace period: Ready=Unknown, and its pods NotReady.
                let node = self.nodes[&name].clone();
                self.set_node_ready(node, false);
            }
            Timer::NodeStatusReport => {
                let up: Vec<String> = self
                    .nodes
                    .keys()
                    .filter(|n| self.kubelet_up(n))
                    .cloned()
                    .collect();
                for name in up {
                    let mut node = self.nodes[&name].clone();
                    node.heartbeat = Some(self.wall());
                    self.put_node(node);
                }
                if let Some(every) = self.config.node_status_report {
                    self.schedule(every, Timer::NodeStatusReport);
                }
            }
            Timer::OsUp { name, uid, boot } => {
                if self.in_reboot(&name, &uid, boot) {
                    self.rebooting.insert(name, (boot, Boot::Starting));
                }
            }
            Timer::NodeBack { name, uid, boot } => {
                if !self.in_reboot(&name, &uid, boot) {
                    return;
                }
                self.rebooting.remove(&name);
                let mut node = self.nodes[&name].clone();
                node.ready = true;
                node.boot_id = self.next_uid();
                node.heartbeat = Some(self.wall());
                self.put_node(node);
                // Every container started afresh: its pods pass readiness again.
                for key in self.pods_on_node(&name) {
                    let mut sp = self.pods[&key].clone();
                    if !sp.pod.is_terminating() && !sp.pod.is_finished() && sp.pod.ready {
                        sp.pod.ready = false;
                        self.put_pod(sp);
                    }
                }
                self.restart_pods_on(&name);
            }
            Timer::Sync { workload } => {
                self.dirty.insert(workload);
            }
        }
    }

    /// Runs the scheduler and the workload controllers until nothing more changes.
    pub(crate) fn settle(&mut self) {
        // A controller that keeps finding work would loop forever; none should, but the bound
        // turns such a bug into a warning instead of a hang.
        let mut budget = 100_000usize;
        loop {
            self.schedule_pending();
            let Some(w) = self.dirty.pop_first() else {
                break;
            };
            self.reconcile(&w);
            budget -= 1;
            if budget == 0 {
                tracing::warn!("simulated controllers did not settle");
                self.dirty.clear();
                break;
            }
        }
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

    // --- audit ---

    pub(crate) fn record_eviction(&mut self, record: EvictionRecord) {
        if self.evictions.len() == EVICTION_LIMIT {
            self.evictions.pop_front();
        }
        self.evictions.push_back(record);
        if let Some(record) = self.evictions.back() {
            self.audit(&crate::audit::Write::Eviction(record));
        }
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

fn added_or_modified(existed: bool) -> ChangeType {
    if existed {
        ChangeType::Modified
    } else {
        ChangeType::Added
    }
}

/// Whether the scheduler may place `pod` on `node`, judging the taints the node lifecycle
/// controller derives from its state (`TaintNodesByCondition`).
fn fits(node: &Node, pod: &Pod) -> bool {
    (node.ready || pod.tolerates(cluster_api::NOT_READY_TAINT, "", "NoSchedule"))
        && (!node.unschedulable || pod.tolerates_cordon())
}

/// The tolerations the DaemonSet controller adds to every pod it creates
/// (`AddOrUpdateDaemonPodTolerations`), so that its pods run on cordoned and troubled nodes.
fn daemonset_tolerations() -> Vec<Toleration> {
    [
        (cluster_api::NOT_READY_TAINT, "NoExecute"),
        (cluster_api::UNREACHABLE_TAINT, "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        (cluster_api::UNSCHEDULABLE_TAINT, "NoSchedule"),
    ]
    .into_iter()
    .map(|(key, effect)| Toleration::exists(key, effect))
    .collect()
}

/// The most bytes an object's annotations may hold, keys and values together
/// (apimachinery's `TotalAnnotationSizeLimitB`).
pub const ANNOTATIONS_LIMIT: usize = 256 * 1024;

/// What the API server checks of an object's annotations: at most [`ANNOTATIONS_LIMIT`]
/// bytes in all, or the write is refused (422 Invalid) with its words.
/// `kind` is the object's kind, qualified by its group outside the core group
/// (`Lease.coordination.k8s.io`), as the API server names it in a validation error.
pub(crate) fn validate_annotations(
    kind: &str,
    name: &str,
    annotations: &BTreeMap<String, String>,
) -> Result<()> {
    let total: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > ANNOTATIONS_LIMIT {
        return Err(Error::invalid(format!(
            "{kind} \"{name}\" is invalid: metadata.annotations: Too long: may not be more \
             than {ANNOTATIONS_LIMIT} bytes"
        )));
    }
    Ok(())
}

/// The API server's refusal of a core/v1 Event with an `eventTime` whose note (`message`)
/// passes [`cluster_api::NOTE_LIMIT`] bytes (its words, value left out, as
/// kube-apiserver v1.37 writes them).
pub(crate) fn note_too_long(name: &str) -> Error {
    Error::invalid(format!(
        "Event \"{name}\" is invalid: message: Invalid value: \"\": can have at most {} characters",
        cluster_api::NOTE_LIMIT
    ))
}

/// A stable short hash of a pod template, like `pod-template-hash`.
pub(crate) fn template_hash(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> String {
    let h = fnv1a(
        labels
            .iter()
            .chain(annotations.iter())
            .flat_map(|(k, v)| k.bytes().chain([0]).chain(v.bytes()).chain([0])),
    );
    format!("{:010x}", h & 0xff_ffff_ffff)
}

/// 64-bit FNV-1a: a stable hash for names and uids the simulation derives.
pub(crate) fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Registration of watchers.
impl Watchers {
    pub(crate) fn add_nodes(&mut self, tx: UnboundedSender<Result<WatchEvent<Node>>>) {
        self.nodes.push(tx);
    }

    pub(crate) fn add_pods(
        &mut self,
        filter: PodFilter,
        tx: UnboundedSender<Result<WatchEvent<Pod>>>,
    ) {
        self.pods.push((filter, tx));
    }

    pub(crate) fn add_leases(
        &mut self,
        filter: LeaseFilter,
        tx: UnboundedSender<Result<WatchEvent<Lease>>>,
    ) {
        self.leases.push((filter, tx));
    }

    pub(crate) fn add_workloads(
        &mut self,
        filter: WorkloadFilter,
        tx: UnboundedSender<Result<WatchEvent<Workload>>>,
    ) {
        self.workloads.push((filter, tx));
    }
}
