//! The simulated cluster's workloads and Leases, and the pods the controllers create.

use super::*;

// === impl State: workloads and leases ===

impl State {
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

    pub(super) fn notify_workload(&mut self, event: WatchEvent<Workload>) {
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

    /// Stores a Lease with a new resource version and tells its watchers. A new Lease gets a
    /// uid; one replaced keeps its own, whatever the writer sent.
    pub(crate) fn put_lease(&mut self, mut lease: Lease) -> Lease {
        lease.resource_version = self.next_rv();
        let key = (lease.namespace.clone(), lease.name.clone());
        lease.uid = match self.leases.get(&key) {
            Some(stored) => stored.uid.clone(),
            None => self.next_uid(),
        };
        let old = self
            .leases
            .insert((lease.namespace.clone(), lease.name.clone()), lease.clone());
        self.log(added_or_modified(old.is_some()), || {
            Object::Lease(lease.clone())
        });
        self.notify_lease(WatchEvent::Applied(lease.clone()));
        self.audit(&crate::audit::Write::Lease {
            before: old.as_ref(),
            after: Some(&lease),
        });
        lease
    }

    pub(crate) fn remove_lease(&mut self, key: &Key) {
        if let Some(lease) = self.leases.remove(key) {
            self.audit(&crate::audit::Write::Lease {
                before: Some(&lease),
                after: None,
            });
            self.log(ChangeType::Deleted, || Object::Lease(lease.clone()));
            self.notify_lease(WatchEvent::Deleted(lease));
        }
    }

    pub(super) fn notify_lease(&mut self, event: WatchEvent<Lease>) {
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
}
