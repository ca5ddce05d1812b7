//! The simulation's timers: the kubelet, the node controller and the workload controllers
//! acting some time after a change, each at its own deadline.

use std::time::Duration;

use cluster_api::PodPhase;
use tokio::time::Instant;

use super::{Boot, Key, SimPod, State, Timer};

// === impl State: timers ===

impl State {
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
            Timer::PodReady { key, uid } => self.pod_ready(&key, &uid),
            Timer::PodGone { key, uid } => self.pod_gone(&key, &uid),
            Timer::NodeUnknown { name, uid, boot } => {
                if !self.in_reboot(&name, &uid, boot) {
                    return;
                }
                // Silent for the whole grace period: Ready=Unknown, and its pods NotReady.
                let node = self.nodes[&name].clone();
                self.set_node_ready(node, false);
            }
            Timer::NodeStatusReport => self.node_status_report(),
            Timer::OsUp { name, uid, boot } => {
                if self.in_reboot(&name, &uid, boot) {
                    self.rebooting.insert(name, (boot, Boot::Starting));
                }
            }
            Timer::NodeBack { name, uid, boot } => self.node_back(name, &uid, boot),
            Timer::Sync { workload } => {
                self.dirty.insert(workload);
            }
        }
    }

    /// A started pod passes readiness (or, crash-looping, runs without), if it is still the
    /// same pod and its kubelet is up.
    fn pod_ready(&mut self, key: &Key, uid: &str) {
        let node_ready =
            |st: &State, sp: &SimPod| sp.pod.node_name.as_ref().is_some_and(|n| st.kubelet_up(n));
        let Some(sp) = self.pods.get(key) else {
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

    /// A terminating pod's grace period is over: it goes, once a kubelet confirms it.
    fn pod_gone(&mut self, key: &Key, uid: &str) {
        let Some(sp) = self.pods.get(key).filter(|sp| sp.pod.uid == uid) else {
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
            self.remove_pod(key);
        }
    }

    /// Every running kubelet posts its status, and the next report is scheduled.
    fn node_status_report(&mut self) {
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

    /// The kubelet's first status after a reboot: Ready, a new bootID, and every pod on the
    /// node starting afresh.
    fn node_back(&mut self, name: String, uid: &str, boot: u64) {
        if !self.in_reboot(&name, uid, boot) {
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
}
