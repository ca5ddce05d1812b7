//! Restart sets at run time, by request: the watch on the run Leases, starting and
//! cancelling a run, and writing a run into its Lease.
//!
//! A run's progress lives only in its Lease, written with compare-and-swap; the driver
//! (`set_driver.rs`) moves it on.

use cluster_api::lease::{self, Decision, Modified};
use cluster_api::{EventType, LabelSelector, Lease, ObjectRef, Timestamp, WatchCache, feed};

use super::ask::Ask;
use super::core::Core;
use crate::allowlist::Identity;
use crate::error::RestartError;
use crate::lock::LOCK_LABEL;
use crate::schedule::Target;
use crate::sets::{
    RUN_ANNOTATION, RestartSet, RunState, SET_LABEL_VALUE, SetRun, SetStatus, lease_name,
};

/// The run Leases as their watch sees them.
struct RunsCache<'a>(&'a Core);

impl WatchCache<Lease> for RunsCache<'_> {
    fn reset(&self, all: Vec<Lease>) {
        let core = self.0;
        for set in core.sets.reset(all) {
            core.publish_set(&set);
        }
        core.sets.wake();
    }

    fn apply(&self, lease: Lease) {
        if let Some(set) = self.0.sets.set_of_lease(&lease.name) {
            self.0.store_run(&set, lease);
        }
    }

    fn delete(&self, lease: Lease) {
        if let Some(set) = self.0.sets.remove(&lease.name) {
            self.0.publish_set(&set);
        }
    }
}

/// What starting a run found: the Lease as read, with the run of someone else that still
/// goes on (none if it is this very run, started already: a schedule's, claimed twice).
type Found = (Lease, Option<SetRun>);

impl Core {
    /// The set, if `who` may restart every member (and so start or cancel its runs).
    fn may_run(&self, name: &str, who: &Identity) -> Result<&RestartSet, RestartError> {
        let set = self.sets.get(name)?;
        self.admission.may_run(set, who)?;
        Ok(set)
    }

    /// Keeps a run's Lease if it is newer, shows it, and lets the driver look.
    pub(super) fn store_run(&self, set: &str, lease: Lease) {
        if self.sets.insert(set, lease) {
            self.publish_set(set);
            self.sets.wake();
        }
    }

    pub(super) fn set_view(&self, set: &RestartSet) -> SetStatus {
        let lease = self.sets.lease(&set.name);
        let run = lease.as_ref().and_then(SetRun::of);
        let schedule = set.schedule.as_ref().map(|s| {
            let target = Target::Set(set.name.clone());
            self.schedules.status(&target, s, self.clock.now())
        });
        SetStatus {
            set: set.clone(),
            running: run.as_ref().is_some_and(|r| !r.state.is_final()),
            run,
            schedule,
        }
    }

    /// Broadcasts the set's status if it changed.
    pub(super) fn publish_set(&self, name: &str) -> Option<SetStatus> {
        let set = self.sets.get(name).ok()?;
        let key = name.to_string();
        Some(self.sets.statuses().publish(&key, || self.set_view(set)))
    }

    pub(super) async fn watch_runs(&self) {
        if self.sets.is_empty() {
            return;
        }
        let selector = LabelSelector::eq(LOCK_LABEL, SET_LABEL_VALUE);
        let open = || self.api.watch_leases(&self.config.namespace, &selector);
        let health = self.sets.watch_health();
        feed("restart set", open, &RunsCache(self), health).await;
    }

    /// Starts a run of the set for `who`, as `ask` says (see
    /// [`Admission::admit_set`](super::admission::Admission::admit_set)). A run with `ask`'s
    /// id that exists already is not started again.
    pub(super) async fn start_set(
        &self,
        name: &str,
        who: &Identity,
        reason: Option<&str>,
        ask: Ask<'_>,
    ) -> Result<SetStatus, RestartError> {
        let set = self.sets.get(name)?;
        let reason = self.admission.admit_set(set, who, reason, &ask)?;
        let now = self.clock.now();
        let id = ask
            .restart_id
            .map_or_else(|| self.new_id(now), str::to_string);
        let run = SetRun::new(set, id, &who.user, reason, now);
        match self.write_new_run(set, &run, &who.user, now).await? {
            Modified::Kept((lease, None)) => {
                self.store_run(&set.name, lease);
                Ok(self.set_view(set))
            }
            Modified::Kept((lease, Some(running))) => {
                self.store_run(&set.name, lease);
                Err(RestartError::SetRunning {
                    set: set.name.clone(),
                    by: running.by,
                    since: running.started,
                })
            }
            Modified::Written(lease, ()) => {
                self.store_run(&set.name, lease);
                let because = run.reason.as_deref().map(|r| format!(": {r}"));
                let note = format!(
                    "{who} started restart set {} ({} members){}",
                    set.name,
                    set.members.len(),
                    because.unwrap_or_default()
                );
                tracing::info!(set = %set.name, by = %who, "restart set started");
                self.set_event(&set.name, EventType::Normal, "RestartSetStarted", note)
                    .await;
                Ok(self.set_view(set))
            }
        }
    }

    /// Writes a new run into the set's Lease, unless this very run is there already or
    /// another one still goes on.
    async fn write_new_run(
        &self,
        set: &RestartSet,
        run: &SetRun,
        by: &str,
        now: Timestamp,
    ) -> Result<Modified<(), Found>, RestartError> {
        let name = lease_name(&set.name);
        let namespace = &self.config.namespace;
        lease::modify(self.api.as_ref(), namespace, &name, |current| {
            if let Some(lease) = current {
                let found = SetRun::of(&lease);
                if found.as_ref().is_some_and(|r| r.id == run.id) {
                    return Decision::Keep((lease, None));
                }
                if let Some(running) = found.filter(|r| !r.state.is_final())
                    && self.sets.is_held(&lease)
                {
                    return Decision::Keep((lease, Some(running)));
                }
                return Decision::Write(self.run_started(lease, run, by, now), ());
            }
            let lease = Lease::new(namespace, &name)
                .label(LOCK_LABEL, SET_LABEL_VALUE)
                .label("app.kubernetes.io/managed-by", "restart-manager");
            Decision::Write(self.run_started(lease, run, by, now), ())
        })
        .await
        .map_err(|e| RestartError::Cluster(e.into()))
    }

    /// The run's Lease as a new run leaves it: held by `by`, taken over now.
    fn run_started(&self, mut lease: Lease, run: &SetRun, by: &str, now: Timestamp) -> Lease {
        lease.holder_identity = Some(by.to_string());
        lease.acquire_time = Some(now);
        lease.lease_transitions = Some(lease.lease_transitions.unwrap_or(0) + 1);
        self.write_run(&mut lease, run, now);
        lease
    }

    /// Cancels the set's run: no further member starts; those restarting finish.
    pub(super) async fn cancel_set(
        &self,
        name: &str,
        who: &Identity,
    ) -> Result<Option<SetStatus>, RestartError> {
        let set = self.may_run(name, who)?;
        let cancelled = self
            .change_run(set, None, |run| {
                if run.state != RunState::Running {
                    return false;
                }
                run.state = RunState::Cancelling;
                run.cancelled_by = Some(who.user.clone());
                true
            })
            .await?;
        if cancelled.is_none() {
            return Ok(None);
        }
        tracing::info!(set = %set.name, by = %who, "restart set cancelled");
        let note = format!("{who} cancelled restart set {}", set.name);
        self.set_event(&set.name, EventType::Warning, "RestartSetCancelled", note)
            .await;
        Ok(Some(self.set_view(set)))
    }

    /// Changes the set's run with compare-and-swap if `change` says it did (and the run is
    /// `id`, when given); returns the run as written, or `None` if there was nothing to
    /// change. A run that ends gives its Lease up.
    pub(super) async fn change_run(
        &self,
        set: &RestartSet,
        id: Option<&str>,
        mut change: impl FnMut(&mut SetRun) -> bool,
    ) -> Result<Option<SetRun>, RestartError> {
        let name = lease_name(&set.name);
        let modified = lease::modify(
            self.api.as_ref(),
            &self.config.namespace,
            &name,
            |current| {
                let Some(mut lease) = current else {
                    return Decision::Keep(());
                };
                let Some(mut run) = SetRun::of(&lease) else {
                    return Decision::Keep(());
                };
                if run.state.is_final() || id.is_some_and(|id| id != run.id) || !change(&mut run) {
                    return Decision::Keep(());
                }
                self.write_run(&mut lease, &run, self.clock.now());
                Decision::Write(lease, run)
            },
        )
        .await
        .map_err(|e| RestartError::Cluster(e.into()))?;
        Ok(match modified {
            Modified::Written(written, run) => {
                self.store_run(&set.name, written);
                Some(run)
            }
            Modified::Kept(()) => None,
        })
    }

    /// Puts the run into its Lease: renewed now; given up if the run ended.
    fn write_run(&self, lease: &mut Lease, run: &SetRun, now: Timestamp) {
        let json = serde_json::to_string(run).unwrap_or_default();
        lease.annotations.insert(RUN_ANNOTATION.into(), json);
        lease.renew_time = Some(now);
        lease.lease_duration_seconds = Some(self.run_lease_secs());
        if run.state.is_final() {
            lease.holder_identity = None;
        }
    }

    /// A run's Lease outlives any member's lock (so a driver that waits for a member's
    /// rollout renews it in time) and is renewed at half of it.
    pub(super) fn run_lease_secs(&self) -> i32 {
        i32::try_from(self.config.lock_duration.as_secs().saturating_mul(2))
            .unwrap_or(i32::MAX)
            .max(2)
    }

    /// Records an Event about a set's run, on its Lease.
    pub(super) async fn set_event(&self, set: &str, type_: EventType, reason: &str, note: String) {
        let regarding = self.run_lease_ref(set);
        self.events
            .record(regarding, type_, reason, "RestartSet", note)
            .await;
    }

    /// A set's run Lease as the object an Event is about, with its uid when known (`kubectl
    /// describe lease` shows only Events carrying it).
    pub(super) fn run_lease_ref(&self, set: &str) -> ObjectRef {
        let uid = self.sets.lease(set).map(|l| l.uid).unwrap_or_default();
        ObjectRef::namespaced("Lease", &self.config.namespace, lease_name(set)).with_uid(uid)
    }
}
