//! How a restart ends: its lock released with the rollout's outcome, or broken by someone
//! with the right to; both announced.

use std::time::Duration;

use cluster_api::{EventType, WorkloadRef};

use super::ask::clean_reason;
use super::core::Core;
use crate::allowlist::Identity;
use crate::error::RestartError;
use crate::lock::{self, LockInfo, Outcome};
use crate::notices::{RestartNotice, RestartTransition};
use crate::status::seconds;

impl Core {
    /// Breaks a workload's lock, whoever holds it: the lock that was broken, if any.
    pub(super) async fn force_unlock(
        &self,
        workload: &WorkloadRef,
        who: &Identity,
        reason: &str,
    ) -> Result<Option<LockInfo>, RestartError> {
        self.admission.entry(workload)?;
        let reason = clean_reason(Some(reason))?
            .ok_or_else(|| RestartError::Invalid("a forced unlock needs a reason".into()))?;
        let released = lock::release(
            self.api.as_ref(),
            &self.config.namespace,
            workload,
            None,
            Outcome::Unlocked,
            self.clock.now(),
        )
        .await
        .map_err(RestartError::Cluster)?;
        let Some((old, lease)) = released else {
            return Ok(None);
        };
        self.store_lease(workload, lease);
        self.publish_view(workload);
        tracing::warn!(%workload, by = %who, holder = %old.holder, %reason, "restart lock force-released");
        let message = format!(
            "{who} broke the restart lock held by {} since {}: {reason}",
            old.holder,
            seconds(&old.since)
        );
        let unlocked = RestartTransition::Unlocked;
        self.announce(unlocked, workload, &who.user, Some(&reason), &message);
        let reason = "RestartLockForceReleased";
        self.event(workload, EventType::Warning, reason, message)
            .await;
        self.judge_again(workload);
        Ok(Some(old))
    }

    /// Releases a restart's lock with its outcome, if it still holds it; reports it once.
    pub(super) async fn finish(
        &self,
        workload: &WorkloadRef,
        lock: &LockInfo,
        outcome: Outcome,
        note: String,
    ) {
        let now = self.clock.now();
        let released = lock::release(
            self.api.as_ref(),
            &self.config.namespace,
            workload,
            Some(&lock.restart_id),
            outcome,
            now,
        )
        .await;
        match released {
            Ok(Some((_, lease))) => {
                self.store_lease(workload, lease);
                let took = Duration::try_from(now.duration_since(lock.since)).unwrap_or_default();
                self.ended(workload, lock, outcome, took, note).await;
            }
            // Another replica got there first, or the lock was broken.
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%workload, error = %e, "could not release the restart lock; will retry")
            }
        }
    }

    /// Reports a restart this replica ended, `took` after it started.
    async fn ended(
        &self,
        workload: &WorkloadRef,
        lock: &LockInfo,
        outcome: Outcome,
        took: Duration,
        note: String,
    ) {
        self.observer.rollout_finished(workload, outcome, took);
        if matches!(outcome, Outcome::Failed | Outcome::TimedOut) {
            self.observer.restart_failed(workload);
        }
        let (type_, reason) = match outcome {
            Outcome::Complete => (EventType::Normal, "RolloutComplete"),
            Outcome::Failed => (EventType::Warning, "RolloutFailed"),
            Outcome::TimedOut => (EventType::Warning, "RestartTimedOut"),
            Outcome::Unlocked | Outcome::Aborted => (EventType::Warning, "RestartAborted"),
        };
        tracing::info!(%workload, outcome = outcome.as_str(), seconds = took.as_secs(), "restart ended");
        let transition = match outcome {
            Outcome::Complete => Some(RestartTransition::Completed),
            Outcome::Failed | Outcome::TimedOut | Outcome::Aborted => {
                Some(RestartTransition::Failed)
            }
            // Announced by the forced unlock itself, with who broke it.
            Outcome::Unlocked => None,
        };
        if let Some(transition) = transition {
            let why = lock.reason.as_deref();
            self.announce(transition, workload, &lock.holder, why, &note);
        }
        self.event(workload, type_, reason, note).await;
    }

    /// Tells the observer of a restart transition.
    pub(super) fn announce(
        &self,
        transition: RestartTransition,
        workload: &WorkloadRef,
        who: &str,
        why: Option<&str>,
        message: &str,
    ) {
        self.observer.restart_notice(&RestartNotice {
            transition,
            workload: workload.clone(),
            who: who.to_string(),
            why: why.map(str::to_string),
            message: message.to_string(),
            time: self.clock.now(),
        });
    }
}
