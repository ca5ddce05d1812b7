//! The restart, top to bottom: admit ([`super::admission`]), lock (the workload's Lease),
//! act (the pod template's `restartedAt`, as `kubectl rollout restart`), announce (Events,
//! notices, the status).

use cluster_api::{Error, EventType, Timestamp, Workload, WorkloadRef};

use super::admission::{Candidate, Overridden, Refused};
use super::ask::Ask;
use super::core::Core;
use super::settings::RESTARTED_AT;
use crate::allowlist::Identity;
use crate::error::RestartError;
use crate::lock::{self, LockInfo, Outcome, Take, TakeRequest};
use crate::notices::RestartTransition;
use crate::status::{ServiceStatus, rfc3339, seconds};

/// A restart admitted: what its lock and Events say.
struct Admitted {
    /// The reason, trimmed.
    reason: Option<String>,
    /// What follows `restarted by WHO` in the Event: on whose behalf, outside which windows,
    /// and the reason.
    because: String,
    /// The workload as read on admission.
    current: Workload,
}

impl Admitted {
    fn new(candidate: Candidate<'_>, overridden: Option<Overridden>, ask: &Ask<'_>) -> Self {
        let reason = candidate.reason;
        let mut because = reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        if let Some(via) = ask.on_behalf_of {
            because = format!(" ({via}){because}");
        }
        if let Some(Overridden(windows)) = overridden {
            because = format!(" outside its restart windows ({windows}){because}");
        }
        Admitted {
            reason,
            because,
            current: candidate.current,
        }
    }
}

/// What taking the lock came to.
enum Locked {
    /// The lock is ours: the restart goes on.
    Ours {
        lock: Box<LockInfo>,
        /// The `restartedAt` to write.
        restarted_at: String,
        /// An expired holder it replaced.
        took_over: Option<LockInfo>,
    },
    /// This very restart happened already (a set's member, started by another driver).
    Done,
}

impl Core {
    /// Restarts `workload` for `who`, as `ask` says.
    pub(super) async fn restart(
        &self,
        workload: &WorkloadRef,
        who: &Identity,
        reason: Option<&str>,
        ask: Ask<'_>,
    ) -> Result<ServiceStatus, RestartError> {
        let admitted = self.admit(workload, who, reason, &ask).await?;
        let Locked::Ours {
            lock,
            restarted_at,
            took_over,
        } = self.lock(workload, who, &admitted, &ask).await?
        else {
            return Ok(self.publish_view(workload));
        };
        // The patch goes out the moment the lock is ours, with nothing awaited in between:
        // no transaction spans the Lease and the workload, so the shorter the gap, the less a
        // force-unlock can land inside it.
        self.act(workload, who, &lock, &restarted_at).await?;
        Ok(self
            .announce_restart(workload, who, admitted, took_over)
            .await)
    }

    /// Admission, as a dry run makes it, reading the workload on the service's own budget;
    /// refusals that are the caller's business are recorded. A set's member or a schedule
    /// was admitted by the configuration.
    async fn admit(
        &self,
        workload: &WorkloadRef,
        who: &Identity,
        reason: Option<&str>,
        ask: &Ask<'_>,
    ) -> Result<Admitted, RestartError> {
        let admission = &self.admission;
        let gate = admission.gate(self.api.as_ref(), workload, who, reason, ask);
        let refused = match gate.await {
            Ok(candidate) => match admission.judge(workload, who, &candidate, ask.windows) {
                Ok(overridden) => return Ok(Admitted::new(candidate, overridden, ask)),
                Err(refused) => refused,
            },
            Err(refused) => refused,
        };
        let Refused { error, note } = *refused;
        if let Some(note) = note {
            self.refused(workload, note).await;
        }
        Err(error)
    }

    /// Takes the workload's lock for this restart.
    async fn lock(
        &self,
        workload: &WorkloadRef,
        who: &Identity,
        admitted: &Admitted,
        ask: &Ask<'_>,
    ) -> Result<Locked, RestartError> {
        let now = self.clock.now();
        let current = admitted.current.template_annotations.get(RESTARTED_AT);
        let restarted_at = restart_stamp(now, current.map(String::as_str));
        let restart_id = match ask.restart_id {
            Some(id) => id.to_string(),
            None => self.new_id(now),
        };
        let request = TakeRequest {
            namespace: &self.config.namespace,
            workload,
            holder: &who.user,
            reason: admitted.reason.as_deref(),
            restart_id: &restart_id,
            restarted_at: &restarted_at,
            duration: self.config.lock_duration,
            now,
        };
        let observations = self.locks.observations();
        let taken = lock::take_observed(self.api.as_ref(), &request, observations).await;
        match taken.map_err(RestartError::Cluster)? {
            Take::Held(lock, lease) => {
                // What was just read is at least as new as the cache: a caller that waits
                // for this restart next must see it held.
                self.store_lease(workload, *lease);
                let note = format!(
                    "restart by {who} refused: {} is restarting it since {}",
                    lock.holder,
                    seconds(&lock.since)
                );
                self.refused(workload, note).await;
                Err(RestartError::Locked {
                    workload: workload.clone(),
                    lock: Box::new(lock),
                })
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
                Err(RestartError::Cluster(e))
            }
            Take::Taken {
                lock,
                lease,
                took_over,
            } => {
                self.store_lease(workload, *lease);
                Ok(Locked::Ours {
                    lock: Box::new(lock),
                    restarted_at,
                    took_over,
                })
            }
            Take::Done(lease) => {
                self.store_lease(workload, *lease);
                Ok(Locked::Done)
            }
        }
    }

    /// Writes the restart into the pod template; if that fails, the lock is given back.
    async fn act(
        &self,
        workload: &WorkloadRef,
        who: &Identity,
        lock: &LockInfo,
        restarted_at: &str,
    ) -> Result<(), RestartError> {
        match self.patch(workload, restarted_at).await? {
            Ok(patched) => {
                self.store_workload(patched);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(%workload, error = %e, "restart could not be applied; releasing its lock");
                self.observer.restart_failed(workload);
                let note = format!("restart by {who} could not be applied: {e}");
                self.finish(workload, lock, Outcome::Aborted, note).await;
                Err(RestartError::Cluster(e))
            }
        }
    }

    /// Sends the restart patch: the workload as patched, or why it was not. An outer error
    /// when nobody can tell whether it landed: then the lock stays.
    async fn patch(
        &self,
        workload: &WorkloadRef,
        restarted_at: &str,
    ) -> Result<Result<Workload, Error>, RestartError> {
        let patch = [(RESTARTED_AT.to_string(), Some(restarted_at.to_string()))]
            .into_iter()
            .collect();
        match self.api.patch_template_annotations(workload, &patch).await {
            // A timeout or a 5xx may come after the API server applied the patch: the
            // workload says whether it did.
            Err(e @ Error::Unavailable { .. }) => {
                match self.patch_landed(workload, restarted_at).await {
                    Ok(Some(patched)) => {
                        tracing::info!(%workload, "the restart patch's answer was lost, but it landed");
                        Ok(Ok(patched))
                    }
                    Ok(None) => Ok(Err(e)),
                    Err(_) => {
                        // Perhaps restarted, perhaps not: the lock stays, so that nobody restarts
                        // it again meanwhile, and ends with the rollout if there is one, or when
                        // it runs out.
                        tracing::warn!(%workload, error = %e, "the restart patch's answer was lost and the workload cannot be read back; keeping its lock");
                        Err(RestartError::Cluster(e))
                    }
                }
            }
            other => Ok(other),
        }
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

    /// Tells everyone: a taken-over lock's Event, the observer, the notice, the `Restarted`
    /// Event, and the status (published before returning: whoever subscribes once the
    /// restart returns, as `restartctl --wait`, hears nothing older than the restart).
    async fn announce_restart(
        &self,
        workload: &WorkloadRef,
        who: &Identity,
        admitted: Admitted,
        took_over: Option<LockInfo>,
    ) -> ServiceStatus {
        if let Some(old) = took_over {
            let note = format!(
                "{who} took over the restart lock of {} (held since {}, expired)",
                old.holder,
                seconds(&old.since)
            );
            self.event(workload, EventType::Warning, "RestartLockTakenOver", note)
                .await;
        }
        self.observer.restarted(workload);
        let reason = admitted.reason.as_deref();
        tracing::info!(%workload, by = %who, reason = reason.unwrap_or(""), "workload restarted");
        let message = format!("restarted by {who}{}", admitted.because);
        let started = RestartTransition::Started;
        self.announce(started, workload, &who.user, reason, &message);
        self.event(workload, EventType::Normal, "Restarted", message)
            .await;
        let view = self.publish_view(workload);
        self.judge_again(workload);
        view
    }
}

/// The `restartedAt` to write at `now`: its second, as kubectl writes it, or the second after
/// the stamp the template carries when that is not earlier. kubectl's stamp within the same
/// second as the last one (or behind a clock that runs late) would change nothing, and
/// nothing would roll out; this one always differs, and stays in kubectl's format.
fn restart_stamp(now: Timestamp, current: Option<&str>) -> String {
    let stamp = rfc3339(now);
    match current.and_then(|c| c.parse::<Timestamp>().ok()) {
        Some(last) if last.as_second() >= now.as_second() => last
            .checked_add(jiff::SignedDuration::from_secs(1))
            .map_or(stamp, rfc3339),
        _ => stamp,
    }
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
