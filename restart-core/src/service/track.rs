//! Keeping up with the cluster: the workload and lock watches, the resync, judging each
//! running restart's rollout, and publishing statuses.

use cluster_api::{Error, Lease, WatchCache, Workload, WorkloadFilter, WorkloadRef, feed};

use super::core::Core;
use super::role;
use super::settings::RESTARTED_AT;
use super::workloads::{Kept, Place};
use crate::lock::{self, Outcome};
use crate::rollout::rollout;
use crate::schedule::Target;
use crate::status::{self, Phase, ServiceStatus};

/// A [`Place`]'s workloads as its watch sees them: every change is judged again.
struct PlaceCache<'a> {
    core: &'a Core,
    place: &'a Place,
}

impl WatchCache<Workload> for PlaceCache<'_> {
    fn reset(&self, all: Vec<Workload>) {
        let allowlist = self.core.allowlist();
        let all: Vec<(WorkloadRef, Workload)> = all
            .into_iter()
            .map(|w| (w.reference(), w))
            .filter(|(r, _)| allowlist.get(r).is_some())
            .collect();
        let listed: Vec<WorkloadRef> = all.iter().map(|(r, _)| r.clone()).collect();
        for r in self.place.reset(all).iter().chain(&listed) {
            self.core.judge_again(r);
        }
    }

    fn apply(&self, w: Workload) {
        self.core.store_workload(w);
    }

    fn delete(&self, w: Workload) {
        self.core.forget_workload(&w.reference());
    }
}

/// The lock Leases as their watch sees them: every change is judged again.
struct LocksCache<'a>(&'a Core);

impl WatchCache<Lease> for LocksCache<'_> {
    fn reset(&self, all: Vec<Lease>) {
        let core = self.0;
        for r in core.locks.reset(all) {
            core.judge_again(&r);
        }
        core.sets.wake();
    }

    fn apply(&self, lease: Lease) {
        if let Some(r) = self.0.locks.workload_of(&lease.name).cloned() {
            self.0.store_lease(&r, lease);
        }
    }

    fn delete(&self, lease: Lease) {
        if let Some(r) = self.0.locks.remove(&lease.name) {
            self.0.judge_again(r);
        }
    }
}

impl Core {
    /// Keeps `w` if it is allowlisted and newer than what is held, and judges it again.
    pub(super) fn store_workload(&self, w: Workload) {
        let Some(entry) = self.allowlist().get(&w.reference()) else {
            return;
        };
        let r = entry.workload.clone();
        // A workload that restarts on configuration changes is looked at as soon as its
        // template changes: that rollout starts its pods on the configuration as it is now.
        match self.workloads.insert(w, entry.config_trigger.is_some()) {
            Kept::Unchanged => return,
            Kept::TemplateChanged(w) => self.template_changed(&w),
            Kept::Newer => {}
        }
        self.judge_again(&r);
    }

    fn forget_workload(&self, r: &WorkloadRef) {
        if self.workloads.remove(r) {
            self.judge_again(r);
        }
    }

    /// Keeps `lease` as `r`'s lock if it is newer than what is held, and judges `r` again.
    pub(super) fn store_lease(&self, r: &WorkloadRef, lease: Lease) {
        if self.locks.insert(r, lease) {
            self.judge_again(r);
            // A set's member may have started, waited or ended.
            if !self.sets.is_empty() {
                self.sets.wake();
            }
        }
    }

    pub(super) async fn watch_place(&self, place: &Place) {
        let filter = WorkloadFilter {
            namespace: Some(place.namespace.clone()),
            ..WorkloadFilter::kind(place.kind)
        };
        let cache = PlaceCache { core: self, place };
        let open = || self.api.watch_workloads(&filter);
        feed(place.kind.resource(), open, &cache, &place.health).await;
    }

    pub(super) async fn watch_locks(&self) {
        let selector = lock::lease_selector();
        let open = || self.api.watch_leases(&self.config.namespace, &selector);
        feed("restart lock", open, &LocksCache(self), &self.locks.health).await;
    }

    /// Every `resync`: look at everything again (lock expiry needs time, not events), and if a
    /// watch is down, read the workloads directly.
    pub(super) async fn resync_forever(&self) {
        let mut leadership = self.role.watch();
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.config.resync) => {}
                () = role::changed(&mut leadership) => {}
            }
            if !self.all_healthy() {
                self.read_workloads().await;
            }
            for a in self.allowlist().iter() {
                self.judge_again(&a.workload);
            }
        }
    }

    /// Reads every allowlisted workload directly, while a watch is down.
    async fn read_workloads(&self) {
        for a in self.allowlist().iter() {
            match self.api.get_workload(&a.workload).await {
                Ok(w) => self.store_workload(w),
                Err(Error::NotFound { .. }) => self.forget_workload(&a.workload),
                Err(e) => {
                    tracing::debug!(workload = %a.workload, error = %e, "resync read failed")
                }
            }
        }
    }

    /// Judges rollouts one workload at a time, so that no two decisions about one workload
    /// race on this replica.
    pub(super) async fn track_forever(&self) {
        loop {
            let r = self.refresh.next().await;
            if self.role.tracks(&r) {
                self.track(&r).await;
            }
            self.publish(&r);
        }
    }

    /// Asks for `r` to be judged again, if it is allowlisted (nothing else is ever judged).
    pub(super) fn judge_again(&self, r: &WorkloadRef) {
        if self.allowlist().get(r).is_some() {
            self.refresh.push(r);
        }
    }

    /// Ends `r`'s restart if its rollout has, or its lock has run out.
    async fn track(&self, r: &WorkloadRef) {
        let Some(lease) = self.locks.get(r) else {
            return;
        };
        let Some(lock) = lock::lock_of(&lease) else {
            return;
        };
        let workload = self.workloads.get(r);
        // Timed out only once this replica has watched the lock unchanged for its whole
        // duration: a leader whose wall clock runs ahead ends no live restart.
        let expired = !self.locks.is_held(&lease);
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

    /// Broadcasts the workload's status if it changed (allowlisted workloads only).
    pub(super) fn publish(&self, r: &WorkloadRef) {
        if self.allowlist().get(r).is_some() {
            self.publish_view(r);
        }
    }

    /// Broadcasts the allowlisted workload's status if it changed, and returns it (in the
    /// order computed: see [`Board::publish`](super::board::Board::publish)).
    pub(super) fn publish_view(&self, r: &WorkloadRef) -> ServiceStatus {
        self.statuses.publish(r, || self.view(r))
    }

    /// The workload's status as this replica sees it now.
    pub(super) fn view(&self, r: &WorkloadRef) -> ServiceStatus {
        let entry = self.allowlist().get(r);
        let schedule = entry.and_then(|a| {
            let s = a.schedule.as_ref()?;
            let target = Target::Workload(r.clone());
            Some(self.schedules.status(&target, s, self.clock.now()))
        });
        let lease = self.locks.get(r);
        let lock = lease
            .as_ref()
            .filter(|l| self.locks.is_held(l))
            .and_then(lock::lock_of);
        let mut view = ServiceStatus {
            kind: r.kind,
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            description: entry.and_then(|a| a.description.clone()),
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
            last_restart: lease.as_ref().and_then(lock::last_restart_of),
            windows: entry
                .map(|a| a.windows.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
            schedule,
        };
        if let Some(w) = self.workloads.get(r) {
            seen_in_cluster(&mut view, &w);
        }
        view
    }
}

/// Fills in a status from the workload as seen: its rollout and its phase.
fn seen_in_cluster(view: &mut ServiceStatus, w: &Workload) {
    let ro = rollout(w);
    // The controller has taken up this restart's template (and judged it) only once the
    // template carries its timestamp and the status is of the current generation.
    let caught_up = view.lock.as_ref().is_some_and(|l| {
        l.restarted_at.is_some()
            && w.template_annotations.get(RESTARTED_AT) == l.restarted_at.as_ref()
    }) && w.status.observed_generation.unwrap_or(0) >= w.generation;
    let last = view.last_restart.as_ref().and_then(|l| l.outcome);
    view.phase = status::phase(ro.verdict, view.lock.is_some(), caught_up, last);
    view.exists = true;
    view.message = ro.message;
    view.desired = ro.desired;
    view.updated = ro.updated;
    view.ready = ro.ready;
    view.available = ro.available;
    view.paused = w.paused;
}
