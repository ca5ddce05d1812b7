//! Scheduled restarts at run time: the schedule Leases' watch, and the loop (on the leader
//! only) that claims each due time with compare-and-swap and then restarts the workload or
//! starts the set's run, under an id derived from the due time.

use std::time::Duration;

use cluster_api::lease::{self, Decision, Modified};
use cluster_api::{Error, EventType, LabelSelector, Lease, Timestamp, feed};

use super::ask::{Ask, Windows};
use super::core::Core;
use super::role;
use super::schedules::SCHEDULE_USER;
use crate::allowlist::Identity;
use crate::error::RestartError;
use crate::lock::LOCK_LABEL;
use crate::schedule::{DueState, LastDue, SCHEDULE_LABEL_VALUE, Schedule, Target, due_now};
use crate::status::rfc3339;

/// What became of a due time, to record.
struct Outcome {
    state: DueState,
    note: String,
}

impl Core {
    pub(super) async fn watch_schedules(&self) {
        if self.schedules.is_empty() {
            return;
        }
        let selector = LabelSelector::eq(LOCK_LABEL, SCHEDULE_LABEL_VALUE);
        let open = || self.api.watch_leases(&self.config.namespace, &selector);
        let health = self.schedules.watch_health();
        feed("restart schedule", open, &self.schedules, health).await;
    }

    /// Acts on every due time, sleeping until the next one (or a resync); on the leader
    /// only.
    pub(super) async fn schedule_forever(&self) {
        if self.schedules.is_empty() {
            return;
        }
        let mut leadership = self.role.watch();
        loop {
            let now = self.clock.now();
            if self.role.leads() {
                for (target, schedule) in self.schedules.all() {
                    self.act_on_due(target, schedule, now).await;
                }
            }
            let now = self.clock.now();
            let next = (self.schedules.all().iter())
                .filter_map(|(_, s)| s.cron.next_after(now))
                .min();
            let wait = next
                .and_then(|n| Duration::try_from(n.duration_since(now)).ok())
                .map_or(self.config.resync, |d| d.min(self.config.resync));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = role::changed(&mut leadership) => {}
            }
        }
    }

    /// Claims the target's due time (if one is due and nobody finished it), acts on it, and
    /// records what became of it.
    async fn act_on_due(&self, target: &Target, schedule: &Schedule, now: Timestamp) {
        // The cache says whether anything is due: no request unless something is.
        let cached = self.schedules.last_due(target);
        if due_now(schedule, cached.as_ref(), now).is_none() {
            return;
        }
        let due = match self.claim(target, schedule, now).await {
            Ok(Some(due)) => due,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(%target, error = %e, "could not claim a scheduled restart; will retry");
                return;
            }
        };
        let Some(outcome) = self.act_on(target, schedule, due).await else {
            return;
        };
        match self.record_due(target, due, &outcome).await {
            Ok(true) => {
                self.observer.scheduled(&target.to_string(), outcome.state);
                let (type_, reason) = match outcome.state {
                    DueState::Skipped => (EventType::Warning, "ScheduledRestartSkipped"),
                    _ => (EventType::Normal, "ScheduledRestart"),
                };
                tracing::info!(%target, state = ?outcome.state, note = %outcome.note, "scheduled restart");
                self.schedule_event(target, type_, reason, outcome.note)
                    .await;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(%target, error = %e, "could not record a scheduled restart"),
        }
    }

    /// Marks the due time claimed in the target's schedule Lease, unless another replica has
    /// finished it: the due time to act on, if any.
    async fn claim(
        &self,
        target: &Target,
        schedule: &Schedule,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, Error> {
        let name = target.lease_name();
        let namespace = &self.config.namespace;
        let modified = lease::modify(self.api.as_ref(), namespace, &name, |current| {
            let last = current.as_ref().and_then(LastDue::of);
            let Some(due) = due_now(schedule, last.as_ref(), now) else {
                return Decision::Keep((current, None));
            };
            if last.as_ref().is_some_and(|l| l.due == due) {
                // Claimed already, and not finished: finish it (the act is idempotent).
                return Decision::Keep((None, Some(due)));
            }
            let mut lease = current.unwrap_or_else(|| {
                Lease::new(namespace, &name)
                    .label(LOCK_LABEL, SCHEDULE_LABEL_VALUE)
                    .label("app.kubernetes.io/managed-by", "restart-manager")
            });
            LastDue {
                due,
                state: DueState::Claimed,
                note: None,
            }
            .write(&mut lease);
            lease.renew_time = Some(now);
            Decision::Write(lease, due)
        })
        .await?;
        let (seen, due) = match modified {
            Modified::Written(lease, due) => (Some(lease), Some(due)),
            Modified::Kept(kept) => kept,
        };
        if let Some(lease) = seen {
            self.schedules.insert(lease);
        }
        Ok(due)
    }

    /// Restarts the workload or starts the set's run for the due time; `None` when it should
    /// be tried again (the cluster could not be reached).
    async fn act_on(
        &self,
        target: &Target,
        schedule: &Schedule,
        due: Timestamp,
    ) -> Option<Outcome> {
        let id = target.id_for(due);
        let via = format!("scheduled {}", schedule.cron);
        let who = Identity::user(SCHEDULE_USER);
        let ask = Ask {
            windows: Windows::Enforce,
            on_behalf_of: Some(&via),
            restart_id: Some(&id),
        };
        let result = match target {
            Target::Workload(w) => self.restart(w, &who, None, ask).await.map(|_| ()),
            Target::Set(name) => self.start_set(name, &who, None, ask).await.map(|_| ()),
        };
        let due_text = rfc3339(due);
        Some(match result {
            Ok(()) => Outcome {
                state: DueState::Started,
                note: format!(
                    "{target} restarted as scheduled ({}) for {due_text}",
                    schedule.cron
                ),
            },
            Err(RestartError::Cluster(e)) if e.is_transient() => {
                tracing::warn!(%target, error = %e, "scheduled restart failed; will retry");
                return None;
            }
            Err(e) => Outcome {
                state: DueState::Skipped,
                note: format!("scheduled restart of {target} for {due_text} skipped: {e}"),
            },
        })
    }

    /// Writes what became of the due time, if it is still the one claimed and unfinished:
    /// `true` if this replica wrote it (and reports it).
    async fn record_due(
        &self,
        target: &Target,
        due: Timestamp,
        outcome: &Outcome,
    ) -> Result<bool, Error> {
        let name = target.lease_name();
        let modified = lease::modify(
            self.api.as_ref(),
            &self.config.namespace,
            &name,
            |current| {
                let Some(mut lease) = current else {
                    return Decision::Keep(());
                };
                let claimed = LastDue::of(&lease)
                    .is_some_and(|l| l.due == due && l.state == DueState::Claimed);
                if !claimed {
                    return Decision::Keep(());
                }
                LastDue {
                    due,
                    state: outcome.state,
                    note: Some(outcome.note.clone()),
                }
                .write(&mut lease);
                Decision::Write(lease, ())
            },
        )
        .await?;
        let Modified::Written(written, ()) = modified else {
            return Ok(false);
        };
        self.schedules.insert(written);
        match target {
            Target::Workload(w) => self.publish(w),
            Target::Set(set) => {
                self.publish_set(set);
            }
        }
        Ok(true)
    }

    async fn schedule_event(&self, target: &Target, type_: EventType, reason: &str, note: String) {
        let regarding = match target {
            Target::Workload(w) => self.regarding(w),
            Target::Set(name) => self.run_lease_ref(name),
        };
        self.events
            .record(regarding, type_, reason, "ScheduledRestart", note)
            .await;
    }
}
