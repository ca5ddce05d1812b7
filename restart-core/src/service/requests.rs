//! The requests: restart, force-unlock, and the Events that record them.

use std::sync::atomic::Ordering;
use std::time::Duration;

use cluster_api::{Error, EventType, ObjectRef, Timestamp, Workload, WorkloadRef};

use super::{Inner, MAX_REASON_LEN, RESTARTED_AT};
use crate::allowlist::Identity;
use crate::error::RestartError;
use crate::lock::{self, LockInfo, Outcome, Take, TakeRequest};
use crate::notices::{RestartNotice, RestartTransition};
use crate::status::ServiceStatus;

/// What a restart does about the workload's restart windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Windows {
    /// Outside them it is refused.
    #[default]
    Enforce,
    /// Outside them it goes ahead, with a reason: the caller may override them (the server
    /// checked the `unlock` right).
    Override,
    /// Already judged: a set's member, admitted with its run.
    Admitted,
}

/// How a restart is asked for.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Ask<'a> {
    /// What the workload's windows mean to it.
    pub(super) windows: Windows,
    /// On behalf of a set's run or a schedule, named in the Event (`restart set shop`):
    /// the configuration admitted it, so the caller's rights are not looked at again.
    pub(super) on_behalf_of: Option<&'a str>,
    /// A restart id derived from the run or the due time, which makes the restart happen
    /// once however often it is asked.
    pub(super) restart_id: Option<&'a str>,
}

impl Inner {
    /// A new, unique restart (or run) id.
    pub(super) fn new_id(&self, now: Timestamp) -> String {
        format!(
            "{}-{}-{}",
            self.instance,
            now.as_millisecond(),
            self.sequence.fetch_add(1, Ordering::Relaxed)
        )
    }

    pub(super) fn allowed(
        &self,
        workload: &WorkloadRef,
    ) -> Result<&crate::allowlist::Allowed, RestartError> {
        self.allowlist
            .get(workload)
            .ok_or_else(|| RestartError::NotAllowlisted(workload.clone()))
    }

    /// Restarts `workload` for `who`, as `ask` says.
    pub(super) async fn restart(
        &self,
        workload: &WorkloadRef,
        who: &Identity,
        reason: Option<&str>,
        ask: Ask<'_>,
    ) -> Result<ServiceStatus, RestartError> {
        let entry = self.allowed(workload)?;
        let reason = clean_reason(reason)?;
        let mut because = reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        if let Some(via) = ask.on_behalf_of {
            because = format!(" ({via}){because}");
        }
        // The same checks as a dry run, in the same order; refusals that are the caller's
        // business are recorded. A set's member or a schedule was admitted by the
        // configuration.
        let admitted = match ask.on_behalf_of {
            Some(_) => self.existing(workload).await,
            None => self.admissible(workload, who).await,
        };
        let current = match admitted {
            Err(e @ RestartError::Forbidden { .. }) => {
                self.refused(
                    workload,
                    format!(
                        "restart by {who} refused: not among those allowed ({})",
                        entry.allowed.join(", ")
                    ),
                )
                .await;
                return Err(e);
            }
            other => other?,
        };
        if let Err(e) = self.refusal_for(workload, &current) {
            if matches!(e, RestartError::Paused(_)) {
                self.refused(
                    workload,
                    format!("restart by {who} refused: the deployment is paused"),
                )
                .await;
            }
            return Err(e);
        }
        if let Err(e) = self.window_refusal(workload, &entry.windows)
            && ask.windows != Windows::Admitted
        {
            if ask.windows == Windows::Enforce {
                self.refused(
                    workload,
                    format!("restart by {who} refused: outside its restart windows"),
                )
                .await;
                return Err(e);
            }
            if reason.is_none() {
                return Err(RestartError::Invalid(
                    "a restart outside the restart windows needs a reason".into(),
                ));
            }
            because = format!(
                " outside its restart windows ({}){because}",
                cluster_api::window::describe(&entry.windows)
            );
        }

        let now = self.clock.now();
        let restarted_at = restart_stamp(
            now,
            current
                .template_annotations
                .get(RESTARTED_AT)
                .map(String::as_str),
        );
        let restart_id = match ask.restart_id {
            Some(id) => id.to_string(),
            None => self.new_id(now),
        };
        let request = TakeRequest {
            namespace: &self.config.namespace,
            workload,
            holder: &who.user,
            reason: reason.as_deref(),
            restart_id: &restart_id,
            restarted_at: &restarted_at,
            duration: self.config.lock_duration,
            now,
        };
        let (lock, lease, took_over) =
            match lock::take_observed(self.api.as_ref(), &request, &self.observed)
                .await
                .map_err(RestartError::Cluster)?
            {
                Take::Held(lock, lease) => {
                    // What was just read is at least as new as the cache: a caller that waits
                    // for this restart next must see it held.
                    self.store_lease(workload, *lease);
                    self.refused(
                        workload,
                        format!(
                            "restart by {who} refused: {} is restarting it since {}",
                            lock.holder,
                            seconds(&lock.since)
                        ),
                    )
                    .await;
                    return Err(RestartError::Locked {
                        workload: workload.clone(),
                        lock: Box::new(lock),
                    });
                }
                Take::Unsure(e) => {
                    // The write may have landed; leave no lock behind that nobody will use.
                    let _ = lock::release(
                        self.api.as_ref(),
                        &self.config.namespace,
                        workload,
                        Some(&restart_id),
                        Outcome::Aborted,
                        self.clock.now(),
                    )
                    .await;
                    return Err(RestartError::Cluster(e));
                }
                Take::Taken {
                    lock,
                    lease,
                    took_over,
                } => (lock, *lease, took_over),
                // This very restart happened already (a set's member, started by another driver).
                Take::Done(lease) => {
                    self.store_lease(workload, *lease);
                    return Ok(self.publish_view(workload));
                }
            };
        self.store_lease(workload, lease);
        // The patch goes out the moment the lock is ours, with nothing awaited in between:
        // no transaction spans the Lease and the workload, so the shorter the gap, the less a
        // force-unlock can land inside it.

        let patch = [(RESTARTED_AT.to_string(), Some(restarted_at.clone()))]
            .into_iter()
            .collect();
        let patched = match self.api.patch_template_annotations(workload, &patch).await {
            // A timeout or a 5xx may come after the API server applied the patch: the
            // workload says whether it did.
            Err(e @ Error::Unavailable { .. }) => {
                match self.patch_landed(workload, &restarted_at).await {
                    Ok(Some(patched)) => {
                        tracing::info!(%workload, "the restart patch's answer was lost, but it landed");
                        Ok(patched)
                    }
                    Ok(None) => Err(e),
                    Err(_) => {
                        // Perhaps restarted, perhaps not: the lock stays, so that nobody restarts
                        // it again meanwhile, and ends with the rollout if there is one, or when
                        // it runs out.
                        tracing::warn!(%workload, error = %e, "the restart patch's answer was lost and the workload cannot be read back; keeping its lock");
                        return Err(RestartError::Cluster(e));
                    }
                }
            }
            other => other,
        };
        match patched {
            Ok(patched) => self.store_workload(patched),
            Err(e) => {
                tracing::warn!(%workload, error = %e, "restart could not be applied; releasing its lock");
                self.observer.restart_failed(workload);
                self.finish(
                    workload,
                    &lock,
                    Outcome::Aborted,
                    format!("restart by {who} could not be applied: {e}"),
                )
                .await;
                return Err(RestartError::Cluster(e));
            }
        }
        if let Some(old) = took_over {
            self.event(
                workload,
                EventType::Warning,
                "RestartLockTakenOver",
                format!(
                    "{who} took over the restart lock of {} (held since {}, expired)",
                    old.holder,
                    seconds(&old.since)
                ),
            )
            .await;
        }
        self.observer.restarted(workload);
        tracing::info!(%workload, by = %who, reason = reason.as_deref().unwrap_or(""), "workload restarted");
        let message = format!("restarted by {who}{because}");
        self.announce(
            RestartTransition::Started,
            workload,
            &who.user,
            reason.as_deref(),
            &message,
        );
        self.event(workload, EventType::Normal, "Restarted", message)
            .await;
        // Published before returning: whoever subscribes once this returns (restartctl
        // --wait) hears nothing older than the restart.
        let view = self.publish_view(workload);
        self.judge_again(workload);
        Ok(view)
    }

    /// Reads the workload back after a restart patch whose answer was lost: `Some` (the
    /// workload as read) if its template carries `restarted_at` (the patch landed), `None` if
    /// not, `Err` if it cannot be read.
    async fn patch_landed(
        &self,
        workload: &WorkloadRef,
        restarted_at: &str,
    ) -> Result<Option<Workload>, Error> {
        let read = lock::read_back(|| self.api.get_workload(workload)).await?;
        let landed = read
            .template_annotations
            .get(RESTARTED_AT)
            .map(String::as_str)
            == Some(restarted_at);
        Ok(landed.then_some(read))
    }

    pub(super) async fn force_unlock(
        &self,
        workload: &WorkloadRef,
        who: &Identity,
        reason: &str,
    ) -> Result<Option<LockInfo>, RestartError> {
        self.allowed(workload)?;
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
        self.announce(
            RestartTransition::Unlocked,
            workload,
            &who.user,
            Some(&reason),
            &message,
        );
        self.event(
            workload,
            EventType::Warning,
            "RestartLockForceReleased",
            message,
        )
        .await;
        self.judge_again(workload);
        Ok(Some(old))
    }

    fn announce(
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

    pub(super) async fn refused(&self, workload: &WorkloadRef, note: String) {
        tracing::info!(%workload, "{note}");
        self.event(workload, EventType::Warning, "RestartRefused", note)
            .await;
    }

    pub(super) async fn event(
        &self,
        workload: &WorkloadRef,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        self.record(self.regarding(workload), type_, reason, "Restart", note)
            .await;
    }

    /// A workload as the object an Event is about, with its uid when known (`kubectl
    /// describe` shows only Events carrying it).
    pub(super) fn regarding(&self, workload: &WorkloadRef) -> ObjectRef {
        let uid = self.workload(workload).map(|w| w.uid).unwrap_or_default();
        workload.object_ref().with_uid(uid)
    }

    /// Records an Event of ours about `regarding`; a failure is logged, never returned.
    pub(super) async fn record(
        &self,
        regarding: ObjectRef,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = self.recorder.event(regarding, type_, reason, action, note);
        // Marked, so that history can tell it from one anybody else wrote; without the key
        // it is still recorded (for `kubectl describe`), and history will not show it.
        let event = match self.event_key().await {
            Ok(key) => key.sign(event),
            Err(_) => event,
        };
        self.recorder.publish(&event).await;
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
        match lock::release(
            self.api.as_ref(),
            &self.config.namespace,
            workload,
            Some(&lock.restart_id),
            outcome,
            now,
        )
        .await
        {
            Ok(Some((_, lease))) => {
                self.store_lease(workload, lease);
                let took = Duration::try_from(now.duration_since(lock.since)).unwrap_or_default();
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
                    self.announce(
                        transition,
                        workload,
                        &lock.holder,
                        lock.reason.as_deref(),
                        &note,
                    );
                }
                self.event(workload, type_, reason, note).await;
            }
            // Another replica got there first, or the lock was broken.
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%workload, error = %e, "could not release the restart lock; will retry")
            }
        }
    }
}

pub(super) fn clean_reason(reason: Option<&str>) -> Result<Option<String>, RestartError> {
    let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if reason.chars().count() > MAX_REASON_LEN {
        return Err(RestartError::Invalid(format!(
            "the reason is longer than {MAX_REASON_LEN} characters"
        )));
    }
    if let Some(c) = reason
        .chars()
        .find(|c| c.is_control() || is_bidi_control(*c))
    {
        return Err(RestartError::Invalid(format!(
            "the reason contains the control character U+{:04X}; write it on one line, \
             without control or text-direction characters",
            u32::from(c)
        )));
    }
    Ok(Some(reason.to_string()))
}

/// The characters that change the direction text is shown in (the Unicode bidirectional
/// controls): in an Event or a log line they can make a line read differently from what it
/// says.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The `restartedAt` to write at `now`: its second, as kubectl writes it, or the second after
/// the stamp the template carries when that is not earlier. kubectl's stamp within the same
/// second as the last one (or behind a clock that runs late) would change nothing, and
/// nothing would roll out; this one always differs, and stays in kubectl's format.
pub(super) fn restart_stamp(now: Timestamp, current: Option<&str>) -> String {
    let stamp = rfc3339(now);
    match current.and_then(|c| c.parse::<Timestamp>().ok()) {
        Some(last) if last.as_second() >= now.as_second() => last
            .checked_add(jiff::SignedDuration::from_secs(1))
            .map_or(stamp, rfc3339),
        _ => stamp,
    }
}

/// RFC 3339 in UTC with second precision, as kubectl writes `restartedAt`.
pub(super) fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A time for people: to the second.
pub(crate) fn seconds(t: &Timestamp) -> String {
    rfc3339(*t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_always_differs_from_the_templates_and_keeps_kubectls_format() {
        let now: Timestamp = "2026-11-26T17:00:00.700Z".parse().unwrap();
        let stamp = |current: &str| restart_stamp(now, Some(current));
        assert_eq!(restart_stamp(now, None), "2026-11-26T17:00:00Z");
        assert_eq!(stamp("2026-11-26T16:59:59Z"), "2026-11-26T17:00:00Z");
        // The same second, and a clock behind the last writer's (kubectl's own offset form).
        assert_eq!(stamp("2026-11-26T17:00:00Z"), "2026-11-26T17:00:01Z");
        assert_eq!(stamp("2026-11-26T18:00:05+01:00"), "2026-11-26T17:00:06Z");
        // Whatever else someone wrote there is simply replaced.
        assert_eq!(stamp("yesterday"), "2026-11-26T17:00:00Z");
    }
}
