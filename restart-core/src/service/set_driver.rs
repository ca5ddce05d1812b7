//! The driver that moves restart sets' runs forward (on the leader only).
//!
//! It reads the run and the members' locks from the caches, decides with [`SetRun::step`]
//! (a plain function), and only when something changes reads the locks afresh, decides again
//! and writes the run back with compare-and-swap before it restarts any member; a member's
//! restart carries an id derived from the run's, so a member restarts at most once per run
//! whoever drives it.

use std::collections::HashMap;
use std::time::Duration;

use cluster_api::{EventType, Lease, Timestamp, WorkloadRef};

use super::ask::{Ask, Windows};
use super::core::Core;
use crate::allowlist::Identity;
use crate::error::RestartError;
use crate::lock::{self, Outcome, RESTART_ID_ANNOTATION};
use crate::sets::{MemberState, RestartSet, RunState, Seen, SetRun, parse_member};

/// Members' locks read from the API server for one decision (`None`: there is no lock).
type Locks = HashMap<WorkloadRef, Option<Lease>>;

impl Core {
    /// Moves every run forward, whenever a run or a member's lock changes, and every resync;
    /// on the leader only.
    pub(super) async fn drive_sets_forever(&self) {
        if self.sets.is_empty() {
            return;
        }
        loop {
            tokio::select! {
                () = self.sets.woken() => {}
                () = tokio::time::sleep(self.config.resync) => {}
            }
            for set in self.sets.all().iter().filter(|s| self.role.drives(&s.name)) {
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
            None => self.locks.get(&w),
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
            Some(held) if self.locks.is_held(&lease) => Seen::HeldBy(held),
            // Its restart took the lock, and a later one has since, and ended: the member's
            // pods were replaced after the run reached it (its restart is done, and would not
            // be done again), whatever the clocks stamped.
            _ if lock::took(&lease, &id) => {
                Seen::Ended(last.and_then(|l| l.outcome).unwrap_or(Outcome::Aborted))
            }
            _ => Seen::Free(last),
        }
    }

    /// Whether the run's Lease is due for renewal: by its own times, or once this replica
    /// has seen it unchanged for half its duration (so a driver whose clock runs behind
    /// renews in time too).
    fn renewal_due(&self, lease: &Lease, now: Timestamp) -> bool {
        let half = self.run_lease_secs() / 2;
        let renew_by = lease.renew_time.and_then(|t| {
            t.checked_add(jiff::SignedDuration::from_secs(i64::from(half)))
                .ok()
        });
        let half = Duration::from_secs(u64::from(half.unsigned_abs()));
        renew_by.is_none_or(|by| by <= now) || self.sets.unchanged_for(lease) >= half
    }

    /// One pass over a set's run: nothing is read from the cluster unless the cached run
    /// says something should change.
    async fn advance(&self, set: &RestartSet) {
        let Some(lease) = self.sets.lease(&set.name) else {
            return;
        };
        let Some(cached) = SetRun::of(&lease) else {
            return;
        };
        if cached.state.is_final() {
            return;
        }
        let now = self.clock.now();
        let stale = self.renewal_due(&lease, now);
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
        let Some((run, starts)) = self.move_on(set, &cached, &locks, stale, now).await else {
            return;
        };
        for i in starts {
            self.start_member(set, &run, i).await;
        }
        if run.state.is_final() {
            self.set_ended(&run).await;
        }
    }

    /// Writes the run's next step, decided on `locks`: the run as written and the members to
    /// start, or `None` when nothing was written.
    async fn move_on(
        &self,
        set: &RestartSet,
        cached: &SetRun,
        locks: &Locks,
        stale: bool,
        now: Timestamp,
    ) -> Option<(SetRun, Vec<usize>)> {
        let mut starts = Vec::new();
        let written = self
            .change_run(set, Some(&cached.id), |run| {
                let snapshot = run.clone();
                let step = run.step(|i| self.seen(&snapshot, i, locks), now);
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
        match written {
            Ok(Some(run)) => Some((run, starts)),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(set = %set.name, error = %e, "could not move the restart set on; will retry");
                None
            }
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
}
