//! The caches and loops: the watches that keep workloads and locks current, the resync, and
//! judging each running restart's rollout.

use std::collections::{BTreeSet, HashSet};

use cluster_api::{
    CacheHealth, Error, Lease, WatchEvent, Workload, WorkloadFilter, WorkloadKind, WorkloadRef,
    follow,
};

use super::{Inner, LOCKS, RESTARTED_AT};
use crate::allowlist::Allowlist;
use crate::lock::{self, Outcome};
use crate::rollout::rollout;
use crate::status::{self, Phase, ServiceStatus};

impl Inner {
    pub(super) fn store_workload(&self, w: Workload) {
        let r = w.reference();
        if self.allowlist.get(&r).is_none() {
            return;
        }
        let mut workloads = self.workloads.write().unwrap_or_else(|e| e.into_inner());
        let newer = workloads.get(&r).is_none_or(|old| {
            !cluster_api::is_older_version(&w.resource_version, &old.resource_version)
        });
        if newer {
            workloads.insert(r.clone(), w);
            drop(workloads);
            self.judge_again(&r);
        }
    }

    pub(super) fn store_lease(&self, r: &WorkloadRef, lease: Lease) {
        let mut leases = self.leases.write().unwrap_or_else(|e| e.into_inner());
        let newer = leases.get(r).is_none_or(|old| {
            !cluster_api::is_older_version(&lease.resource_version, &old.resource_version)
        });
        if newer {
            leases.insert(r.clone(), lease);
            drop(leases);
            self.judge_again(r);
        }
    }

    pub(super) fn health(&self, what: &str) -> Option<&CacheHealth> {
        self.health.get(what)
    }

    pub(super) fn all_healthy(&self) -> bool {
        self.health.values().all(CacheHealth::is_healthy)
    }

    pub(super) async fn watch_kind(&self, kind: WorkloadKind, namespace: &str) {
        let filter = WorkloadFilter {
            namespace: Some(namespace.to_string()),
            ..WorkloadFilter::kind(kind)
        };
        let key = place_key(kind, namespace);
        follow(
            kind.resource(),
            || self.api.watch_workloads(&filter),
            |event| match event {
                Ok(WatchEvent::Restarted(all)) => {
                    // A fresh list is the whole truth: what it lacks was deleted meanwhile.
                    let listed: HashSet<WorkloadRef> =
                        all.iter().map(Workload::reference).collect();
                    let gone: Vec<WorkloadRef> = {
                        let mut workloads =
                            self.workloads.write().unwrap_or_else(|e| e.into_inner());
                        let gone: Vec<WorkloadRef> = workloads
                            .keys()
                            .filter(|r| {
                                r.kind == kind && r.namespace == namespace && !listed.contains(*r)
                            })
                            .cloned()
                            .collect();
                        for r in &gone {
                            workloads.remove(r);
                        }
                        gone
                    };
                    for r in gone {
                        self.judge_again(&r);
                    }
                    for w in all {
                        self.store_workload(w);
                    }
                    if let Some(h) = self.health(&key) {
                        h.restarted();
                    }
                }
                Ok(WatchEvent::Applied(w)) => self.store_workload(w),
                Ok(WatchEvent::Deleted(w)) => {
                    let r = w.reference();
                    self.workloads
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&r);
                    self.judge_again(&r);
                }
                Err(e) => {
                    if let Some(h) = self.health(&key) {
                        h.failed(e);
                    }
                }
            },
        )
        .await;
    }

    pub(super) async fn watch_locks(&self) {
        let selector = lock::lease_selector();
        let open = || self.api.watch_leases(&self.config.namespace, &selector);
        follow("restart lock", open, |event| match event {
            Ok(WatchEvent::Restarted(all)) => {
                let listed: HashSet<&str> = all.iter().map(|l| l.name.as_str()).collect();
                let gone: Vec<WorkloadRef> = {
                    let mut leases = self.leases.write().unwrap_or_else(|e| e.into_inner());
                    let gone: Vec<WorkloadRef> = self
                        .by_lease
                        .iter()
                        .filter(|(name, r)| {
                            !listed.contains(name.as_str()) && leases.contains_key(*r)
                        })
                        .map(|(_, r)| r.clone())
                        .collect();
                    for r in &gone {
                        leases.remove(r);
                    }
                    gone
                };
                for r in gone {
                    self.judge_again(&r);
                }
                for lease in all {
                    if let Some(r) = self.by_lease.get(&lease.name).cloned() {
                        self.store_lease(&r, lease);
                    }
                }
                if let Some(h) = self.health(LOCKS) {
                    h.restarted();
                }
            }
            Ok(WatchEvent::Applied(lease)) => {
                if let Some(r) = self.by_lease.get(&lease.name).cloned() {
                    self.store_lease(&r, lease);
                }
            }
            Ok(WatchEvent::Deleted(lease)) => {
                if let Some(r) = self.by_lease.get(&lease.name).cloned() {
                    self.leases
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&r);
                    self.judge_again(&r);
                }
            }
            Err(e) => {
                if let Some(h) = self.health(LOCKS) {
                    h.failed(e);
                }
            }
        })
        .await;
    }

    /// Every `resync`: look at everything again (lock expiry needs time, not events), and if a
    /// watch is down, read the workloads directly.
    pub(super) async fn resync_forever(&self) {
        let mut leadership = self.leadership.clone();
        loop {
            let became_leader = async {
                match leadership.as_mut() {
                    Some(l) => {
                        let _ = l.changed().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = tokio::time::sleep(self.config.resync) => {}
                () = became_leader => {}
            }
            if !self.all_healthy() {
                for a in self.allowlist.iter() {
                    match self.api.get_workload(&a.workload).await {
                        Ok(w) => self.store_workload(w),
                        Err(Error::NotFound { .. }) => {
                            self.workloads
                                .write()
                                .unwrap_or_else(|e| e.into_inner())
                                .remove(&a.workload);
                        }
                        Err(e) => {
                            tracing::debug!(workload = %a.workload, error = %e, "resync read failed")
                        }
                    }
                }
            }
            for a in self.allowlist.iter() {
                self.judge_again(&a.workload);
            }
        }
    }

    /// Judges rollouts one workload at a time, so that no two decisions about one workload
    /// race on this replica.
    pub(super) async fn track_forever(&self) {
        loop {
            let r = self.refresh.next().await;
            if self.leadership.as_ref().is_none_or(|l| *l.borrow()) {
                self.track(&r).await;
            }
            self.publish(&r);
        }
    }

    /// Asks for `r` to be judged again, if it is allowlisted (nothing else is ever judged).
    pub(super) fn judge_again(&self, r: &WorkloadRef) {
        if self.allowlist.get(r).is_some() {
            self.refresh.push(r);
        }
    }

    pub(super) async fn track(&self, r: &WorkloadRef) {
        let Some(lease) = self
            .leases
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(r)
            .cloned()
        else {
            return;
        };
        let Some(lock) = lock::lock_of(&lease) else {
            return;
        };
        let workload = self
            .workloads
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(r)
            .cloned();
        let now = self.clock.now();
        let expired = !lease.is_held_at(now);
        // Judge only the rollout this restart caused: the template must carry its timestamp.
        let ours = workload.as_ref().filter(|w| {
            lock.restarted_at.is_some()
                && w.template_annotations.get(RESTARTED_AT) == lock.restarted_at.as_ref()
        });
        let judged = ours.map(rollout);
        let message = judged
            .as_ref()
            .map_or("the change was never observed", |r| r.message.as_str());
        let Some(outcome) = status::ended(judged.as_ref().map(|r| r.verdict), expired) else {
            return;
        };
        let note = match outcome {
            Outcome::Complete => format!("restart by {} rolled out: {message}", lock.holder),
            Outcome::Failed => format!("restart by {} failed: {message}", lock.holder),
            _ => format!(
                "restart by {} did not finish within {}s: {message}",
                lock.holder,
                self.config.lock_duration.as_secs()
            ),
        };
        self.finish(r, &lock, outcome, note).await;
    }

    /// Broadcasts the workload's status if it changed.
    pub(super) fn publish(&self, r: &WorkloadRef) {
        if self.allowlist.get(r).is_none() {
            return;
        }
        let view = self.view(r);
        let mut views = self.views.write().unwrap_or_else(|e| e.into_inner());
        if views.get(r) != Some(&view) {
            views.insert(r.clone(), view.clone());
            drop(views);
            let _ = self.updates.send(view);
        }
    }

    pub(super) fn view(&self, r: &WorkloadRef) -> ServiceStatus {
        let now = self.clock.now();
        let description = self.allowlist.get(r).and_then(|a| a.description.clone());
        let lease = self
            .leases
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(r)
            .cloned();
        let lock = lease
            .as_ref()
            .filter(|l| l.is_held_at(now))
            .and_then(lock::lock_of);
        let last_restart = lease.as_ref().and_then(lock::last_restart_of);
        let workload = self
            .workloads
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(r)
            .cloned();
        let Some(w) = workload else {
            return ServiceStatus {
                kind: r.kind,
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                description,
                exists: false,
                phase: Phase::Idle,
                message: format!(
                    "{} {}/{} was not found in the cluster",
                    r.kind, r.namespace, r.name
                ),
                desired: 0,
                updated: 0,
                ready: 0,
                available: 0,
                paused: false,
                lock,
                last_restart,
            };
        };
        let ro = rollout(&w);
        // The controller has taken up this restart's template (and judged it) only once the
        // template carries its timestamp and the status is of the current generation.
        let caught_up = lock.as_ref().is_some_and(|l| {
            l.restarted_at.is_some()
                && w.template_annotations.get(RESTARTED_AT) == l.restarted_at.as_ref()
        }) && w.status.observed_generation.unwrap_or(0) >= w.generation;
        let phase = status::phase(
            ro.verdict,
            lock.is_some(),
            caught_up,
            last_restart.as_ref().and_then(|l| l.outcome),
        );
        ServiceStatus {
            kind: r.kind,
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            description,
            exists: true,
            phase,
            message: ro.message,
            desired: ro.desired,
            updated: ro.updated,
            ready: ro.ready,
            available: ro.available,
            paused: w.paused,
            lock,
            last_restart,
        }
    }
}

/// Each kind and namespace the allowlist names, once.
pub(super) fn places(allowlist: &Allowlist) -> BTreeSet<(WorkloadKind, String)> {
    allowlist
        .iter()
        .map(|a| (a.workload.kind, a.workload.namespace.clone()))
        .collect()
}

/// The health key of one kind's watch in one namespace.
pub(super) fn place_key(kind: WorkloadKind, namespace: &str) -> String {
    format!("{}/{namespace}", kind.as_str())
}
