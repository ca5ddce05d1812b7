//! The caches and loops: the watches that keep workloads and locks current, the resync, and
//! judging each running restart's rollout.

use std::collections::BTreeSet;

use cluster_api::{
    CacheHealth, Error, Lease, Store, WatchCache, Workload, WorkloadFilter, WorkloadKind,
    WorkloadRef, feed,
};

use super::{Inner, RESTARTED_AT};
use crate::allowlist::Allowlist;
use crate::lock::{self, Outcome};
use crate::rollout::rollout;
use crate::status::{self, Phase, ServiceStatus};

/// One kind in one namespace of the allowlist: its watch, and the workloads it has seen.
pub(super) struct Place {
    kind: WorkloadKind,
    namespace: String,
    workloads: Store<WorkloadRef, Workload>,
    health: CacheHealth,
}

impl Place {
    /// Each kind and namespace the allowlist names, once, in order.
    pub(super) fn all(allowlist: &Allowlist) -> Vec<Place> {
        let places: BTreeSet<(WorkloadKind, &str)> = allowlist
            .iter()
            .map(|a| (a.workload.kind, a.workload.namespace.as_str()))
            .collect();
        places
            .into_iter()
            .map(|(kind, namespace)| Place {
                kind,
                namespace: namespace.to_string(),
                workloads: Store::new(),
                health: CacheHealth::new(format!("{} in {namespace}", kind.resource())),
            })
            .collect()
    }

    fn holds(&self, r: &WorkloadRef) -> bool {
        r.kind == self.kind && r.namespace == self.namespace
    }
}

/// A [`Place`]'s workloads as its watch sees them: every change is judged again.
struct PlaceCache<'a> {
    inner: &'a Inner,
    place: &'a Place,
}

impl WatchCache<Workload> for PlaceCache<'_> {
    fn reset(&self, all: Vec<Workload>) {
        let allowlist = &self.inner.allowlist;
        let all: Vec<(WorkloadRef, Workload)> = all
            .into_iter()
            .map(|w| (w.reference(), w))
            .filter(|(r, _)| allowlist.get(r).is_some())
            .collect();
        let listed: Vec<WorkloadRef> = all.iter().map(|(r, _)| r.clone()).collect();
        for r in self.place.workloads.reset(all).iter().chain(&listed) {
            self.inner.judge_again(r);
        }
    }

    fn apply(&self, w: Workload) {
        self.inner.store_workload(w);
    }

    fn delete(&self, w: Workload) {
        self.inner.forget_workload(&w.reference());
    }
}

/// The lock Leases as their watch sees them: every change is judged again.
impl WatchCache<Lease> for Inner {
    fn reset(&self, all: Vec<Lease>) {
        let all: Vec<(WorkloadRef, Lease)> = all
            .into_iter()
            .filter_map(|l| Some((self.by_lease.get(&l.name)?.clone(), l)))
            .inspect(|(_, l)| {
                self.observed.unchanged_for(l);
            })
            .collect();
        let listed: Vec<WorkloadRef> = all.iter().map(|(r, _)| r.clone()).collect();
        for r in self.leases.reset(all).iter().chain(&listed) {
            self.judge_again(r);
        }
        self.sets_wake.notify_one();
    }

    fn apply(&self, lease: Lease) {
        if let Some(r) = self.by_lease.get(&lease.name).cloned() {
            self.store_lease(&r, lease);
        }
    }

    fn delete(&self, lease: Lease) {
        if let Some(r) = self.by_lease.get(&lease.name)
            && self.leases.remove(r)
        {
            self.judge_again(r);
        }
    }
}

impl Inner {
    fn place(&self, r: &WorkloadRef) -> Option<&Place> {
        self.places.iter().find(|p| p.holds(r))
    }

    /// The allowlisted workload `r` as last seen.
    pub(super) fn workload(&self, r: &WorkloadRef) -> Option<Workload> {
        self.place(r)?.workloads.get(r)
    }

    /// Keeps `w` if it is allowlisted and newer than what is held, and judges it again.
    pub(super) fn store_workload(&self, w: Workload) {
        let r = w.reference();
        let Some(entry) = self.allowlist.get(&r) else {
            return;
        };
        let Some(place) = self.place(&r) else {
            return;
        };
        // A workload that restarts on configuration changes is looked at as soon as its
        // template changes: that rollout starts its pods on the configuration as it is now.
        let template = entry
            .config_trigger
            .is_some()
            .then(|| w.template_annotations.clone());
        let before = template.as_ref().and_then(|_| place.workloads.get(&r));
        if place.workloads.insert(r.clone(), w) {
            if let (Some(now), Some(before)) = (&template, &before)
                && before.template_annotations != *now
                && let Some(w) = place.workloads.get(&r)
            {
                self.template_changed(&w);
            }
            self.judge_again(&r);
        }
    }

    fn forget_workload(&self, r: &WorkloadRef) {
        if let Some(place) = self.place(r)
            && place.workloads.remove(r)
        {
            self.judge_again(r);
        }
    }

    /// Keeps `lease` as `r`'s lock if it is newer than what is held, and judges `r` again.
    pub(super) fn store_lease(&self, r: &WorkloadRef, lease: Lease) {
        // Seen only when newer than what is held: an older copy is no change.
        let seen = lease.clone();
        if self.leases.insert(r.clone(), lease) {
            self.observed.unchanged_for(&seen);
            self.judge_again(r);
            // A set's member may have started, waited or ended.
            if !self.sets.is_empty() {
                self.sets_wake.notify_one();
            }
        }
    }

    /// Every watch's health: the workload watches in order, then the lock watch.
    pub(super) fn healths(&self) -> impl Iterator<Item = &CacheHealth> {
        self.places
            .iter()
            .map(|p| &p.health)
            .chain([&self.locks_health])
            .chain(self.runs_health())
            .chain(self.schedules_health())
            .chain(self.config_healths())
    }

    fn all_healthy(&self) -> bool {
        self.healths().all(CacheHealth::is_healthy)
    }

    pub(super) async fn watch_place(&self, place: &Place) {
        let filter = WorkloadFilter {
            namespace: Some(place.namespace.clone()),
            ..WorkloadFilter::kind(place.kind)
        };
        let cache = PlaceCache { inner: self, place };
        feed(
            place.kind.resource(),
            || self.api.watch_workloads(&filter),
            &cache,
            &place.health,
        )
        .await;
    }

    pub(super) async fn watch_locks(&self) {
        let selector = lock::lease_selector();
        let open = || self.api.watch_leases(&self.config.namespace, &selector);
        feed(
            "restart lock",
            open,
            self as &dyn WatchCache<Lease>,
            &self.locks_health,
        )
        .await;
    }

    /// Every `resync`: look at everything again (lock expiry needs time, not events), and if a
    /// watch is down, read the workloads directly.
    pub(super) async fn resync_forever(&self) {
        let mut leadership = self.leadership.clone();
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.config.resync) => {}
                () = super::leadership_changed(&mut leadership) => {}
            }
            if !self.all_healthy() {
                for a in self.allowlist.iter() {
                    match self.api.get_workload(&a.workload).await {
                        Ok(w) => self.store_workload(w),
                        Err(Error::NotFound { .. }) => self.forget_workload(&a.workload),
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
            if self.tracks(&r) {
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
        let Some(lease) = self.leases.get(r) else {
            return;
        };
        let Some(lock) = lock::lock_of(&lease) else {
            return;
        };
        let workload = self.workload(r);
        // Timed out only once this replica has watched the lock unchanged for its whole
        // duration: a leader whose wall clock runs ahead ends no live restart.
        let expired = !self.observed.is_held(&lease);
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
        if self.allowlist.get(r).is_some() {
            self.publish_view(r);
        }
    }

    /// Broadcasts the allowlisted workload's status if it changed, and returns it.
    ///
    /// Computed and sent under the lock: statuses go out in the order they were computed,
    /// so one computed before a restart stored its lock cannot follow the one the restart
    /// publishes (see `restart`), and reach a client that subscribed after it.
    pub(super) fn publish_view(&self, r: &WorkloadRef) -> ServiceStatus {
        let mut views = self.views.write();
        let view = self.view(r);
        if views.get(r) != Some(&view) {
            views.insert(r.clone(), view.clone());
            let _ = self.updates.send(view.clone());
        }
        view
    }

    pub(super) fn view(&self, r: &WorkloadRef) -> ServiceStatus {
        let entry = self.allowlist.get(r);
        let description = entry.and_then(|a| a.description.clone());
        let windows: Vec<String> = entry
            .map(|a| a.windows.iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        let schedule = entry.and_then(|a| {
            let s = a.schedule.as_ref()?;
            Some(self.schedule_status(&crate::schedule::Target::Workload(r.clone()), s))
        });
        let lease = self.leases.get(r);
        let lock = lease
            .as_ref()
            .filter(|l| self.observed.is_held(l))
            .and_then(lock::lock_of);
        let last_restart = lease.as_ref().and_then(lock::last_restart_of);
        let Some(w) = self.workload(r) else {
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
                windows,
                schedule,
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
            windows,
            schedule,
        }
    }
}
