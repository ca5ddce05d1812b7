//! The simulated cluster's Nodes and Pods: reboots, readiness, graceful termination and
//! scheduling.

use super::*;

// === impl State: nodes and pods ===

impl State {
    // --- nodes ---

    pub(crate) fn put_node(&mut self, mut node: Node) -> Node {
        node.resource_version = self.next_rv();
        if node.uid.is_empty() {
            node.uid = self.next_uid();
        }
        if node.boot_id.is_empty() {
            node.boot_id = self.next_uid();
        }
        if node.heartbeat.is_none() && node.ready {
            node.heartbeat = Some(self.wall());
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
        self.rebooting.remove(name);
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

    /// A reboot as a real cluster shows it: the kubelet goes silent at once, but the Node
    /// keeps showing what it showed (Ready too) until the node controller's grace period runs
    /// out; the operating system (and Zincati) is up after `reboot_duration`; the kubelet
    /// reports the new bootID, Ready and a fresh heartbeat `kubelet_start` later.
    pub(crate) fn reboot_node(&mut self, name: &str) -> Result<()> {
        let uid = self.node_named(name)?.uid;
        self.reboot_seq += 1;
        let boot = self.reboot_seq;
        self.rebooting.insert(name.to_string(), (boot, Boot::Down));
        let name = name.to_string();
        self.schedule(
            self.config.node_monitor_grace_period,
            Timer::NodeUnknown {
                name: name.clone(),
                uid: uid.clone(),
                boot,
            },
        );
        self.schedule(
            self.config.reboot_duration,
            Timer::OsUp {
                name: name.clone(),
                uid: uid.clone(),
                boot,
            },
        );
        self.schedule(
            self.config.reboot_duration + self.config.kubelet_start,
            Timer::NodeBack { name, uid, boot },
        );
        Ok(())
    }

    /// The Node called `name`, or the API server's NotFound.
    pub(crate) fn node_named(&self, name: &str) -> Result<Node> {
        self.nodes
            .get(name)
            .cloned()
            .ok_or_else(|| Error::not_found("nodes", name))
    }

    /// Whether `name` (the Node with `uid`) is still in reboot number `boot`.
    pub(crate) fn in_reboot(&self, name: &str, uid: &str, boot: u64) -> bool {
        self.nodes.get(name).is_some_and(|n| n.uid == uid)
            && self.rebooting.get(name).is_some_and(|(b, _)| *b == boot)
    }

    /// Whether the node's kubelet runs (not in a reboot, and reporting Ready).
    pub(crate) fn kubelet_up(&self, name: &str) -> bool {
        !self.rebooting.contains_key(name) && self.nodes.get(name).is_some_and(|n| n.ready)
    }

    pub(crate) fn set_node_ready(&mut self, mut node: Node, ready: bool) {
        if node.ready == ready {
            return;
        }
        let name = node.name.clone();
        node.ready = ready;
        if ready {
            // A kubelet that reports Ready again has just posted its status.
            node.heartbeat = Some(self.wall());
        }
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
    pub(super) fn restart_pods_on(&mut self, name: &str) {
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

    pub(super) fn daemonsets_dirty(&mut self) {
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

    pub(super) fn notify_pod(&mut self, old: Option<&Pod>, new: Option<&Pod>) {
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
    pub(super) fn schedule_pending(&mut self) {
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
}
