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
    /// How long a rebooting node stays NotReady.
    pub reboot_duration: Duration,
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
            reboot_duration: Duration::from_secs(45),
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
    PodReady { key: Key, uid: String },
    PodGone { key: Key, uid: String },
    NodeBack { name: String, uid: String },
    Sync { workload: WorkloadRef },
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
}

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
    pub(crate) pods: BTreeMap<Key, SimPod>,
    pods_by_node: HashMap<String, BTreeSet<Key>>,
    pods_by_owner: HashMap<WorkloadRef, BTreeSet<Key>>,
    unscheduled: BTreeSet<Key>,
    pub(crate) budgets: BTreeMap<Key, Budget>,
    pub(crate) workloads: BTreeMap<WorkloadRef, SimWorkload>,
    pub(crate) leases: BTreeMap<Key, Lease>,
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
}

// === impl State ===

impl State {
    pub(crate) fn new(config: SimConfig) -> Self {
        let now = Instant::now();
        State {
            config,
            origin: now,
            now,
            rv: 1000,
            uid: 0,
            nodes: BTreeMap::new(),
            pods: BTreeMap::new(),
            pods_by_node: HashMap::new(),
            pods_by_owner: HashMap::new(),
            unscheduled: BTreeSet::new(),
            budgets: BTreeMap::new(),
            workloads: BTreeMap::new(),
            leases: BTreeMap::new(),
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
        }
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
                    sp.pod
                        .node_name
                        .as_ref()
                        .and_then(|n| st.nodes.get(n))
                        .is_some_and(|n| n.ready)
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
                // Only a kubelet confirms that a bound pod has stopped; on a NotReady node
                // nobody does, and the pod stays Terminating until the node is back.
                let kubelet_up = sp
                    .pod
                    .node_name
                    .as_ref()
                    .and_then(|n| self.nodes.get(n))
                    .is_none_or(|n| n.ready);
                if kubelet_up {
                    self.remove_pod(&key);
                }
            }
            Timer::NodeBack { name, uid } => {
                let Some(node) = self.nodes.get(&name) else {
                    return;
                };
                if node.uid != uid {
                    return;
                }
                let mut node = node.clone();
                node.ready = true;
                node.boot_id = self.next_uid();
                self.put_node(node);
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

    // --- nodes ---

    pub(crate) fn put_node(&mut self, mut node: Node) -> Node {
        node.resource_version = self.next_rv();
        if node.uid.is_empty() {
            node.uid = self.next_uid();
        }
        if node.boot_id.is_empty() {
            node.boot_id = self.next_uid();
        }
        if node.addresses.is_empty() || node.pod_cidrs.is_empty() {
            // As the kubelet and the node IPAM controller fill them: an address and a pod
            // range of its own, from the serial number in its uid.
            let serial = node
                .uid
                .rsplit('-')
                .next()
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .unwrap_or_else(|| fnv1a(node.name.bytes()));
            if node.addresses.is_empty() {
                let i = serial & 0xff_ffff;
                node.addresses.push(format!(
                    "10.{}.{}.{}",
                    (i >> 16) & 0xff,
                    (i >> 8) & 0xff,
                    i & 0xff
                ));
            }
            if node.pod_cidrs.is_empty() {
                node.pod_cidrs.push(format!(
                    "100.{}.{}.0/24",
                    64 + ((serial >> 8) & 0x3f),
                    serial & 0xff
                ));
            }
        }
        let old = self.nodes.insert(node.name.clone(), node.clone());
        if old.as_ref().is_none_or(|o| o.labels != node.labels) {
            self.daemonsets_dirty();
        }
        let type_ = added_or_modified(old.is_some());
        self.log(type_, || Object::Node(node.clone()));
        let event = WatchEvent::Applied(node.clone());
        self.watchers
            .nodes
            .retain(|tx| tx.send(Ok(event.clone())).is_ok());
        node
    }

    pub(crate) fn remove_node(&mut self, name: &str) -> Option<Node> {
        let node = self.nodes.remove(name)?;
        // The pod garbage collector removes pods bound to a node that no longer exists.
        for key in self.pods_by_node.remove(name).unwrap_or_default() {
            self.remove_pod(&key);
        }
        self.daemonsets_dirty();
        self.log(ChangeType::Deleted, || Object::Node(node.clone()));
        let event = WatchEvent::Deleted(node.clone());
        self.watchers
            .nodes
            .retain(|tx| tx.send(Ok(event.clone())).is_ok());
        Some(node)
    }

    /// Node goes NotReady, its pods stop being Ready, and after the reboot it comes back with
    /// a new bootID.
    pub(crate) fn reboot_node(&mut self, name: &str) -> Result<()> {
        let node = self
            .nodes
            .get(name)
            .cloned()
            .ok_or_else(|| Error::not_found("nodes", name))?;
        self.set_node_ready(node, false);
        let uid = self.nodes[name].uid.clone();
        self.schedule(
            self.config.reboot_duration,
            Timer::NodeBack {
                name: name.to_string(),
                uid,
            },
        );
        Ok(())
    }

    pub(crate) fn set_node_ready(&mut self, mut node: Node, ready: bool) {
        if node.ready == ready {
            return;
        }
        let name = node.name.clone();
        node.ready = ready;
        self.put_node(node);
        if ready {
            self.restart_pods_on(&name);
        } else {
            for key in self.pods_on_node(&name) {
                let mut sp = self.pods[&key].clone();
                if !sp.pod.is_terminating() && sp.pod.ready {
                    sp.pod.ready = false;
                    self.put_pod(sp);
                }
            }
        }
    }

    /// After a (re)start, the node's pods pass readiness again after their start delay, and
    /// the kubelet finishes the pods that were deleted while it was away.
    fn restart_pods_on(&mut self, name: &str) {
        for key in self.pods_on_node(name) {
            let sp = &self.pods[&key];
            let uid = sp.pod.uid.clone();
            if sp.pod.is_terminating() {
                if !sp.stuck {
                    self.schedule(Duration::ZERO, Timer::PodGone { key, uid });
                }
            } else if !sp.pod.is_finished() {
                self.schedule(sp.start_delay, Timer::PodReady { key, uid });
            }
        }
    }

    fn daemonsets_dirty(&mut self) {
        let daemonsets: Vec<_> = self
            .workloads
            .keys()
            .filter(|r| r.kind == WorkloadKind::DaemonSet)
            .cloned()
            .collect();
        self.dirty.extend(daemonsets);
    }

    // --- pods ---

    pub(crate) fn pods_on_node(&self, node: &str) -> Vec<Key> {
        self.pods_by_node
            .get(node)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn pods_of(&self, owner: &WorkloadRef) -> Vec<Key> {
        self.pods_by_owner
            .get(owner)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn put_pod(&mut self, mut sp: SimPod) {
        sp.pod.resource_version = self.next_rv();
        if sp.pod.uid.is_empty() {
            sp.pod.uid = self.next_uid();
        }
        let key = (sp.pod.namespace.clone(), sp.pod.name.clone());
        let old = self.pods.get(&key).map(|o| o.pod.clone());
        if let Some(old_node) = old.as_ref().and_then(|o| o.node_name.as_ref())
            && sp.pod.node_name.as_ref() != Some(old_node)
            && let Some(set) = self.pods_by_node.get_mut(old_node)
        {
            set.remove(&key);
        }
        match &sp.pod.node_name {
            Some(node) => {
                self.pods_by_node
                    .entry(node.clone())
                    .or_default()
                    .insert(key.clone());
                self.unscheduled.remove(&key);
            }
            None if !sp.pod.is_terminating() => {
                self.unscheduled.insert(key.clone());
            }
            None => {
                self.unscheduled.remove(&key);
            }
        }
        if let Some(owner) = &sp.owner {
            self.pods_by_owner
                .entry(owner.clone())
                .or_default()
                .insert(key.clone());
            self.dirty.insert(owner.clone());
        }
        self.notify_pod(old.as_ref(), Some(&sp.pod));
        let type_ = added_or_modified(old.is_some());
        self.log(type_, || Object::Pod(sp.pod.clone()));
        self.pods.insert(key, sp);
    }

    pub(crate) fn remove_pod(&mut self, key: &Key) -> Option<SimPod> {
        let sp = self.pods.remove(key)?;
        if let Some(node) = &sp.pod.node_name
            && let Some(set) = self.pods_by_node.get_mut(node)
        {
            set.remove(key);
        }
        self.unscheduled.remove(key);
        if let Some(owner) = &sp.owner {
            if let Some(set) = self.pods_by_owner.get_mut(owner) {
                set.remove(key);
            }
            self.dirty.insert(owner.clone());
        }
        self.notify_pod(Some(&sp.pod), None);
        self.log(ChangeType::Deleted, || Object::Pod(sp.pod.clone()));
        Some(sp)
    }

    fn notify_pod(&mut self, old: Option<&Pod>, new: Option<&Pod>) {
        self.watchers.pods.retain(|(filter, tx)| {
            let entered = new.filter(|p| filter.matches(p));
            let left = old.filter(|p| filter.matches(p));
            let event = match (entered, left) {
                (Some(p), _) => WatchEvent::Applied(p.clone()),
                // It was in the selection and no longer is: deleted, or relabelled away.
                (None, Some(last)) => WatchEvent::Deleted(new.unwrap_or(last).clone()),
                (None, None) => return !tx.is_closed(),
            };
            tx.send(Ok(event)).is_ok()
        });
    }

    /// Starts graceful termination: the pod gets a deletion timestamp, stops being Ready, and
    /// disappears after its grace period (at once if it was never bound to a node).
    pub(crate) fn terminate_pod(&mut self, key: &Key, grace: Option<i64>) {
        let Some(sp) = self.pods.get(key) else { return };
        if sp.pod.is_terminating() {
            return;
        }
        if sp.pod.node_name.is_none() {
            self.remove_pod(key);
            return;
        }
        let mut sp = sp.clone();
        let grace = grace
            .unwrap_or(sp.pod.termination_grace_period_seconds)
            .max(0);
        sp.pod.deletion_timestamp = Some(self.wall());
        sp.pod.ready = false;
        let (stuck, uid) = (sp.stuck, sp.pod.uid.clone());
        self.put_pod(sp);
        if !stuck {
            self.schedule(
                Duration::from_secs(grace.unsigned_abs()),
                Timer::PodGone {
                    key: key.clone(),
                    uid,
                },
            );
        }
    }

    /// Binds pending pods to nodes they fit, least-loaded first: Ready (or the pod tolerates
    /// the not-ready taint), not cordoned (or the pod tolerates the unschedulable taint, as
    /// DaemonSet pods and `operator: Exists` tolerations do), matching the node selector.
    fn schedule_pending(&mut self) {
        if self.unscheduled.is_empty() {
            return;
        }
        let pending: Vec<Key> = self.unscheduled.iter().cloned().collect();
        for key in pending {
            let sp = &self.pods[&key];
            let selector = sp
                .owner
                .as_ref()
                .and_then(|o| self.workloads.get(o))
                .map(|w| w.spec.node_selector.clone())
                .unwrap_or_default();
            let target = self
                .nodes
                .values()
                .filter(|n| fits(n, &sp.pod))
                .filter(|n| selector.iter().all(|(k, v)| n.labels.get(k) == Some(v)))
                .min_by_key(|n| {
                    (
                        self.pods_by_node.get(&n.name).map_or(0, |s| s.len()),
                        &n.name,
                    )
                })
                .map(|n| n.name.clone());
            if let Some(node) = target {
                self.bind(&key, &node);
            }
        }
    }

    pub(crate) fn bind(&mut self, key: &Key, node: &str) {
        let mut sp = self.pods[key].clone();
        sp.pod.node_name = Some(node.to_string());
        sp.pod.phase = PodPhase::Pending;
        sp.pod.ready = false;
        let (delay, uid) = (sp.start_delay, sp.pod.uid.clone());
        self.put_pod(sp);
        self.schedule(
            delay,
            Timer::PodReady {
                key: key.clone(),
                uid,
            },
        );
    }

    // --- workloads ---

    pub(crate) fn put_workload(&mut self, mut w: Workload) {
        // A workload is written for the first time without a version.
        let type_ = added_or_modified(!w.resource_version.is_empty());
        w.resource_version = self.next_rv();
        let r = w.reference();
        if let Some(sw) = self.workloads.get_mut(&r) {
            sw.w = w.clone();
        }
        self.log(type_, || Object::Workload(w.clone()));
        self.notify_workload(WatchEvent::Applied(w));
    }

    /// Deletes a workload; the garbage collector deletes its pods in the background
    /// (gracefully, as a cascading delete does).
    pub(crate) fn remove_workload(&mut self, r: &WorkloadRef) -> Option<Workload> {
        let sw = self.workloads.remove(r)?;
        for key in self.pods_of(r) {
            self.terminate_pod(&key, None);
        }
        self.log(ChangeType::Deleted, || Object::Workload(sw.w.clone()));
        self.notify_workload(WatchEvent::Deleted(sw.w.clone()));
        Some(sw.w)
    }

    fn notify_workload(&mut self, event: WatchEvent<Workload>) {
        let (WatchEvent::Applied(w) | WatchEvent::Deleted(w)) = &event else {
            return;
        };
        let w = w.clone();
        self.watchers.workloads.retain(|(filter, tx)| {
            if filter.matches(&w) {
                tx.send(Ok(event.clone())).is_ok()
            } else {
                !tx.is_closed()
            }
        });
    }

    /// Creates a pod for a workload from its template.
    pub(crate) fn create_workload_pod(
        &mut self,
        r: &WorkloadRef,
        name: String,
        revision: &str,
        ordinal: Option<i32>,
        node: Option<&str>,
    ) {
        let sw = &self.workloads[r];
        let spec = &sw.spec;
        let mut labels = spec.effective_pod_labels();
        let (controller, hash_label) = match r.kind {
            WorkloadKind::Deployment => (
                OwnerRef {
                    kind: "ReplicaSet".into(),
                    name: format!("{}-{revision}", r.name),
                },
                "pod-template-hash",
            ),
            WorkloadKind::StatefulSet => (
                OwnerRef {
                    kind: "StatefulSet".into(),
                    name: r.name.clone(),
                },
                "controller-revision-hash",
            ),
            WorkloadKind::DaemonSet => (
                OwnerRef {
                    kind: "DaemonSet".into(),
                    name: r.name.clone(),
                },
                "controller-revision-hash",
            ),
        };
        labels.insert(hash_label.into(), revision.to_string());
        let mut pod = Pod::new(&r.namespace, name)
            .owned_by(controller.kind, controller.name)
            .phase(PodPhase::Pending)
            .grace_period(spec.termination_grace_period_seconds);
        pod.labels = labels;
        pod.empty_dir = spec.empty_dir;
        pod.tolerations = spec.tolerations.clone();
        if r.kind == WorkloadKind::DaemonSet {
            pod.tolerations.extend(daemonset_tolerations());
        }
        let sp = SimPod {
            pod,
            owner: Some(r.clone()),
            revision: revision.to_string(),
            ordinal,
            start_delay: spec.pod_start(),
            never_ready: sw.stalled,
            stuck: false,
            created: self.wall(),
        };
        let key = (sp.pod.namespace.clone(), sp.pod.name.clone());
        self.put_pod(sp);
        if let Some(node) = node {
            self.bind(&key, node);
        }
    }

    pub(crate) fn next_pod_suffix(&mut self, r: &WorkloadRef) -> String {
        let sw = self.workloads.get_mut(r);
        let seq = sw.map_or(0, |sw| {
            sw.seq += 1;
            sw.seq
        });
        // Five characters from kube's alphabet of consonants and digits, as generateName does.
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut n = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20;
        (0..5)
            .map(|_| {
                let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
                n /= ALPHABET.len() as u64;
                c
            })
            .collect()
    }

    /// Sets a condition, keeping the list ordered by type.
    pub(crate) fn set_condition(
        w: &mut Workload,
        type_: &str,
        status: &str,
        reason: &str,
        message: String,
    ) {
        let c = Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message,
        };
        match w.status.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(existing) => *existing = c,
            None => {
                w.status.conditions.push(c);
                w.status.conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
            }
        }
    }

    // --- leases ---

    /// Stores a Lease with a new resource version and tells its watchers.
    pub(crate) fn put_lease(&mut self, mut lease: Lease) -> Lease {
        lease.resource_version = self.next_rv();
        let old = self
            .leases
            .insert((lease.namespace.clone(), lease.name.clone()), lease.clone());
        self.log(added_or_modified(old.is_some()), || {
            Object::Lease(lease.clone())
        });
        self.notify_lease(WatchEvent::Applied(lease.clone()));
        lease
    }

    pub(crate) fn remove_lease(&mut self, key: &Key) {
        if let Some(lease) = self.leases.remove(key) {
            self.log(ChangeType::Deleted, || Object::Lease(lease.clone()));
            self.notify_lease(WatchEvent::Deleted(lease));
        }
    }

    fn notify_lease(&mut self, event: WatchEvent<Lease>) {
        let (WatchEvent::Applied(lease) | WatchEvent::Deleted(lease)) = &event else {
            return;
        };
        let (namespace, labels) = (lease.namespace.clone(), lease.labels.clone());
        self.watchers.leases.retain(|((ns, selector), tx)| {
            if *ns == namespace && selector.matches(&labels) {
                tx.send(Ok(event.clone())).is_ok()
            } else {
                !tx.is_closed()
            }
        });
    }

    // --- audit ---

    pub(crate) fn record_eviction(&mut self, record: EvictionRecord) {
        if self.evictions.len() == EVICTION_LIMIT {
            self.evictions.pop_front();
        }
        self.evictions.push_back(record);
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

/// What the API server checks of a name: a lowercase RFC 1123 subdomain.
pub(crate) fn validate_name(name: &str) -> std::result::Result<(), String> {
    if cluster_api::is_object_name(name) {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid name: a lowercase RFC 1123 subdomain must consist of lower \
             case alphanumeric characters, '-' or '.', and must start and end with an \
             alphanumeric character"
        ))
    }
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
