//! Restart sets at run time: starting and cancelling a run, the watch on the run Leases, and
//! the driver that moves runs forward (on the leader only).
//!
//! A run's progress lives only in its Lease. The driver reads the run and the members' locks
//! from the caches, decides with [`SetRun::step`] (a plain function), and only when something
//! changes reads the Lease afresh, decides again and writes it back with compare-and-swap
//! before it restarts any member; a member's restart carries an id derived from the run's,
//! so a member restarts at most once per run whoever drives it.

use cluster_api::lease::{self, Decision, Modified};
use cluster_api::{CacheHealth, EventType, Lease, ObjectRef, Timestamp, WatchCache, feed};

use super::Inner;
use super::requests::{Ask, Windows, clean_reason};
use crate::allowlist::Identity;
use crate::error::RestartError;
use crate::lock::{self, LOCK_LABEL, Outcome, RESTART_ID_ANNOTATION};
use crate::sets::{
    MemberState, RUN_ANNOTATION, RestartSet, RunState, SET_LABEL_VALUE, Seen, SetRun, SetStatus,
    lease_name, parse_member,
};

/// Members' locks read from the API server for one decision (`None`: there is no lock).
type Locks = std::collections::HashMap<cluster_api::WorkloadRef, Option<Lease>>;

/// The run Leases as their watch sees them.
pub(super) struct RunsCache<'a>(pub(super) &'a Inner);

impl WatchCache<Lease> for RunsCache<'_> {
    fn reset(&self, all: Vec<Lease>) {
        let inner = self.0;
        let all: Vec<(String, Lease)> = all
            .into_iter()
            .filter_map(|l| Some((inner.set_of_lease(&l.name)?, l)))
            .inspect(|(_, l)| {
                inner.observed.unchanged_for(l);
            })
            .collect();
        let listed: Vec<String> = all.iter().map(|(s, _)| s.clone()).collect();
        for set in inner.runs.reset(all).iter().chain(&listed) {
            inner.publish_set(set);
        }
        inner.sets_wake.notify_one();
    }

    fn apply(&self, lease: Lease) {
        if let Some(set) = self.0.set_of_lease(&lease.name) {
            self.0.store_run(&set, lease);
        }
    }

    fn delete(&self, lease: Lease) {
        if let Some(set) = self.0.set_of_lease(&lease.name)
            && self.0.runs.remove(&set)
        {
            self.0.publish_set(&set);
        }
    }
}

impl Inner {
    fn set_of_lease(&self, lease: &str) -> Option<String> {
        let name = lease.strip_prefix("restart-set.")?;
        self.sets
            .iter()
            .any(|s| s.name == name)
            .then(|| name.to_string())
    }

    pub(super) fn set(&self, name: &str) -> Result<&RestartSet, RestartError> {
        self.sets
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| RestartError::UnknownSet(name.to_string()))
    }

    /// The set, if `who` may restart every member (and so start or cancel its runs).
    fn may_run(&self, name: &str, who: &Identity) -> Result<&RestartSet, RestartError> {
        let set = self.set(name)?;
        for w in &set.members {
            let entry = self.allowed(w)?;
            if !entry.allowed.is_empty() && !who.is_any_of(&entry.allowed) {
                return Err(RestartError::Forbidden {
                    who: who.user.clone(),
                    workload: w.clone(),
                });
            }
        }
        Ok(set)
    }

    /// Keeps a run's Lease if it is newer, shows it, and lets the driver look.
    pub(super) fn store_run(&self, set: &str, lease: Lease) {
        // Seen only when newer than what is held: an older copy is no change.
        let seen = lease.clone();
        if self.runs.insert(set.to_string(), lease) {
            self.observed.unchanged_for(&seen);
            self.publish_set(set);
            self.sets_wake.notify_one();
        }
    }

    pub(super) fn set_view(&self, set: &RestartSet) -> SetStatus {
        let lease = self.runs.get(&set.name);
        let run = lease.as_ref().and_then(SetRun::of);
        let schedule = set
            .schedule
            .as_ref()
            .map(|s| self.schedule_status(&crate::schedule::Target::Set(set.name.clone()), s));
        SetStatus {
            set: set.clone(),
            running: run.as_ref().is_some_and(|r| !r.state.is_final()),
            run,
            schedule,
        }
    }

    /// Broadcasts the set's status if it changed.
    pub(super) fn publish_set(&self, name: &str) -> Option<SetStatus> {
        let set = self.set(name).ok()?;
        let mut views = self.set_views.write();
        let view = self.set_view(set);
        if views.get(name) != Some(&view) {
            views.insert(name.to_string(), view.clone());
            let _ = self.set_updates.send(view.clone());
        }
        Some(view)
    }

    pub(super) async fn watch_runs(&self) {
        if self.sets.is_empty() {
            return;
        }
        let selector = cluster_api::LabelSelector::eq(LOCK_LABEL, SET_LABEL_VALUE);
        let open = || self.api.watch_leases(&self.config.namespace, &selector);
        feed("restart set", open, &RunsCache(self), &self.runs_health).await;
    }

    pub(super) fn runs_health(&self) -> Option<&CacheHealth> {
        (!self.sets.is_empty()).then_some(&self.runs_health)
    }

    /// Starts a run of the set for `who`, as `ask` says: unless on behalf of a schedule,
    /// `who` must be allowed to restart every member; every member must be inside its windows
    /// unless they are overridden (then with a reason). A run with `ask`'s id that exists
    /// already is not started again.
    pub(super) async fn start_set(
        &self,
        name: &str,
        who: &Identity,
        reason: Option<&str>,
        ask: Ask<'_>,
    ) -> Result<SetStatus, RestartError> {
        let set = match ask.on_behalf_of {
            Some(_) => self.set(name)?,
            None => self.may_run(name, who)?,
        };
        let reason = clean_reason(reason)?;
        for w in &set.members {
            let windows = &self.allowed(w)?.windows;
            match (self.window_refusal(w, windows), ask.windows) {
                (Err(e), Windows::Enforce) => return Err(e),
                (Err(_), Windows::Override) if reason.is_none() => {
                    return Err(RestartError::Invalid(
                        "a restart outside the restart windows needs a reason".into(),
                    ));
                }
                _ => {}
            }
        }
        let now = self.clock.now();
        let id = ask
            .restart_id
            .map_or_else(|| self.new_id(now), str::to_string);
        let run = SetRun::new(set, id, &who.user, reason, now);
        let name = lease_name(&set.name);
        let namespace = &self.config.namespace;
        // Kept: the Lease as read, with the run of someone else that still goes on (none if
        // it is this very run, started already: a schedule's, claimed twice).
        let modified = lease::modify(self.api.as_ref(), namespace, &name, |current| {
            if let Some(lease) = current {
                let found = SetRun::of(&lease);
                if found.as_ref().is_some_and(|r| r.id == run.id) {
                    return Decision::Keep((lease, None));
                }
                if let Some(running) = found.filter(|r| !r.state.is_final())
                    && self.observed.is_held(&lease)
                {
                    return Decision::Keep((lease, Some(running)));
                }
                return Decision::Write(self.run_started(lease, &run, &who.user, now), ());
            }
            let lease = Lease::new(namespace, &name)
                .label(LOCK_LABEL, SET_LABEL_VALUE)
                .label("app.kubernetes.io/managed-by", "restart-manager");
            Decision::Write(self.run_started(lease, &run, &who.user, now), ())
        })
        .await
        .map_err(|e| RestartError::Cluster(e.into()))?;
        match modified {
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
    async fn change_run(
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
    fn run_lease_secs(&self) -> i32 {
        i32::try_from(self.config.lock_duration.as_secs().saturating_mul(2))
            .unwrap_or(i32::MAX)
            .max(2)
    }

    /// Moves every run forward, whenever a run or a member's lock changes, and every resync;
    /// on the leader only.
    pub(super) async fn drive_sets_forever(&self) {
        if self.sets.is_empty() {
            return;
        }
        loop {
            tokio::select! {
                () = self.sets_wake.notified() => {}
                () = tokio::time::sleep(self.config.resync) => {}
            }
            for set in self.sets.iter().filter(|s| self.drives(&s.name)) {
                self.advance(set).await;
            }
        }
    }

    /// What `run`'s member at `i` looks like from its workload lock, as `locks` has it (read
    /// just now) or else as the watch cache does.
    fn seen(&self, run: &SetRun, i: usize, locks: &Locks) -> Seen {
        let Ok(w) = parse_member(&run.members[i].workload) else {
            return Seen::Ended(Outcome::Aborted);
        };
        let lease = match locks.get(&w) {
            Some(read) => read.clone(),
            None => self.leases.get(&w),
        };
        let Some(lease) = lease else {
            return Seen::Free(None);
        };
        let id = run.restart_id(i);
        if lease.annotations.get(RESTART_ID_ANNOTATION) == Some(&id) {
            return match lock::last_restart_of(&lease).and_then(|l| l.outcome) {
                Some(outcome) if lease.holder().is_none() => Seen::Ended(outcome),
                _ => Seen::Running,
            };
        }
        let last = lock::last_restart_of(&lease);
        match lock::lock_of(&lease) {
            Some(held) if self.observed.is_held(&lease) => Seen::HeldBy(held),
            // Its restart took the lock, and a later one has since, and ended: the member's
            // pods were replaced after the run reached it (its restart is done, and would not
            // be done again), whatever the clocks stamped.
            _ if lock::took(&lease, &id) => {
                Seen::Ended(last.and_then(|l| l.outcome).unwrap_or(Outcome::Aborted))
            }
            _ => Seen::Free(last),
        }
    }

    /// One pass over a set's run: nothing is read from the cluster unless the cached run
    /// says something should change.
    async fn advance(&self, set: &RestartSet) {
        let Some(lease) = self.runs.get(&set.name) else {
            return;
        };
        let Some(cached) = SetRun::of(&lease) else {
            return;
        };
        if cached.state.is_final() {
            return;
        }
        let now = self.clock.now();
        let renew_by = lease.renew_time.and_then(|t| {
            t.checked_add(jiff::SignedDuration::from_secs(i64::from(
                self.run_lease_secs() / 2,
            )))
            .ok()
        });
        // Renewed by the Lease's own times, or once this replica has seen it unchanged for
        // half its duration (so a driver whose clock runs behind renews in time too).
        let half =
            std::time::Duration::from_secs(u64::from(self.run_lease_secs().unsigned_abs() / 2));
        let stale =
            renew_by.is_none_or(|by| by <= now) || self.observed.unchanged_for(&lease) >= half;
        let mut probe = cached.clone();
        let step = probe.step(|i| self.seen(&cached, i, &Locks::new()), now);
        if !step.changed && step.start.is_empty() && !stale {
            return;
        }
        // What is written is decided on the members' locks as they are now. A replica whose
        // lock watch lags would otherwise undo what a driver with a fresher view wrote (send a
        // member that took its lock back to waiting, or start it again), and the two would
        // take turns at the speed of the API server until the watch caught up.
        let locks = match self.read_locks(&cached).await {
            Ok(locks) => locks,
            Err(e) => {
                tracing::warn!(set = %set.name, error = %e, "could not read the set's locks; will retry");
                return;
            }
        };
        let mut starts = Vec::new();
        let written = self
            .change_run(set, Some(&cached.id), |run| {
                let snapshot = run.clone();
                let step = run.step(|i| self.seen(&snapshot, i, &locks), now);
                for &i in &step.start {
                    run.mark_started(i, now);
                }
                let write = step.changed || !step.start.is_empty() || stale;
                starts = step.start;
                // Nothing to record (the cache was behind) and no renewal due: no write, or
                // this replica would wake itself and write again.
                write
            })
            .await;
        let run = match written {
            Ok(Some(run)) => run,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(set = %set.name, error = %e, "could not move the restart set on; will retry");
                return;
            }
        };
        for i in starts {
            self.start_member(set, &run, i).await;
        }
        if run.state.is_final() {
            self.set_ended(&run).await;
        }
    }

    /// Reads the lock of every member of `run` that is not done with, from the API server.
    async fn read_locks(&self, run: &SetRun) -> Result<Locks, cluster_api::Error> {
        let mut locks = Locks::new();
        for m in run.members.iter().filter(|m| !m.state.is_final()) {
            let Ok(w) = parse_member(&m.workload) else {
                continue;
            };
            let read = self
                .api
                .get_lease(&self.config.namespace, &lock::lease_name(&w))
                .await;
            let lease = match read {
                Ok(lease) => Some(lease),
                Err(cluster_api::Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            locks.insert(w, lease);
        }
        Ok(locks)
    }

    async fn start_member(&self, set: &RestartSet, run: &SetRun, i: usize) {
        let member = &run.members[i].workload;
        let Ok(w) = parse_member(member) else {
            return;
        };
        let id = run.restart_id(i);
        let via = format!("restart set {}", set.name);
        let ask = Ask {
            windows: Windows::Admitted,
            on_behalf_of: Some(&via),
            restart_id: Some(&id),
        };
        let who = Identity::user(run.by.clone());
        let failed = match self.restart(&w, &who, run.reason.as_deref(), ask).await {
            Ok(_) => return,
            // The next pass sees the holder and waits for them.
            Err(RestartError::Locked { .. }) => return,
            // The next pass finds the lock without this restart and tries again.
            Err(RestartError::Cluster(e)) if e.is_transient() => {
                tracing::warn!(set = %set.name, workload = %w, error = %e, "could not restart a set member; will retry");
                return;
            }
            Err(e) => e.to_string(),
        };
        let now = self.clock.now();
        let recorded = self
            .change_run(set, Some(&run.id), |run| {
                let m = &run.members[i];
                if m.state != MemberState::Restarting {
                    return false;
                }
                run.mark_failed(i, failed.clone(), now);
                true
            })
            .await;
        if let Err(e) = recorded {
            tracing::warn!(set = %set.name, workload = %w, error = %e, "could not record a set member's failure");
        }
    }

    async fn set_ended(&self, run: &SetRun) {
        let failed: Vec<&str> = run
            .members
            .iter()
            .filter(|m| m.state == MemberState::Failed)
            .map(|m| m.workload.as_str())
            .collect();
        let (type_, reason, how) = match run.state {
            RunState::Complete => (
                EventType::Normal,
                "RestartSetComplete",
                "rolled out".to_string(),
            ),
            RunState::Cancelled => (
                EventType::Warning,
                "RestartSetCancelled",
                format!(
                    "was cancelled by {}",
                    run.cancelled_by.as_deref().unwrap_or("someone")
                ),
            ),
            _ => (
                EventType::Warning,
                "RestartSetFailed",
                format!("failed ({} failed: {})", failed.len(), failed.join(", ")),
            ),
        };
        tracing::info!(set = %run.set, state = ?run.state, "restart set ended");
        let note = format!("restart set {} started by {} {how}", run.set, run.by);
        self.set_event(&run.set, type_, reason, note).await;
    }

    async fn set_event(&self, set: &str, type_: EventType, reason: &str, note: String) {
        self.record(self.run_lease_ref(set), type_, reason, "RestartSet", note)
            .await;
    }

    /// A set's run Lease as the object an Event is about, with its uid when known (`kubectl
    /// describe lease` shows only Events carrying it).
    pub(super) fn run_lease_ref(&self, set: &str) -> ObjectRef {
        let uid = self.runs.get(set).map(|l| l.uid).unwrap_or_default();
        ObjectRef::namespaced("Lease", &self.config.namespace, lease_name(set)).with_uid(uid)
    }
}
