//! Admission: the checks a restart passes before it takes a lock, written once for the
//! restart and its dry run (same checks, same refusals, same order), and for a set's run.
//!
//! 1. The gate: allowlisted, a reason that can be recorded, a caller among those the entry
//!    allows (unless the configuration admitted it: a set's member, a schedule), and in the
//!    cluster. A dry run answers a refusal here as an error.
//! 2. The workload as it is: not a paused Deployment, not `OnDelete`, inside its restart
//!    windows (or overridden with a reason). A dry run puts a refusal here in its plan.
//!
//! The lock comes next, and is the restart's (or the plan's) business.

use std::sync::Arc;

use cluster_api::window::{Window, describe, in_any_window, next_opening_text};
use cluster_api::{Clock, ClusterApi, Error, UpdateStrategy, Workload, WorkloadRef};

use super::ask::{Ask, Windows, clean_reason};
use crate::allowlist::{Allowed, Allowlist, Identity};
use crate::error::RestartError;
use crate::sets::RestartSet;

/// The allowlist and the clock the windows are judged by.
pub(super) struct Admission {
    allowlist: Allowlist,
    clock: Arc<dyn Clock>,
}

/// A refusal, with the note of the Event that records it when it is the caller's business.
pub(super) struct Refused {
    pub(super) error: RestartError,
    pub(super) note: Option<String>,
}

impl From<RestartError> for Box<Refused> {
    fn from(error: RestartError) -> Self {
        Box::new(Refused { error, note: None })
    }
}

/// What passed the gate.
pub(super) struct Candidate<'a> {
    pub(super) entry: &'a Allowed,
    /// The reason, trimmed.
    pub(super) reason: Option<String>,
    /// The workload as the cluster has it now.
    pub(super) current: Workload,
}

/// Admitted outside the workload's windows, which the caller may override: their text, for
/// the Event.
pub(super) struct Overridden(pub(super) String);

impl Admission {
    pub(super) fn new(allowlist: Allowlist, clock: Arc<dyn Clock>) -> Self {
        Admission { allowlist, clock }
    }

    pub(super) fn allowlist(&self) -> &Allowlist {
        &self.allowlist
    }

    /// The workload's allowlist entry.
    pub(super) fn entry(&self, workload: &WorkloadRef) -> Result<&Allowed, RestartError> {
        self.allowlist
            .get(workload)
            .ok_or_else(|| RestartError::NotAllowlisted(workload.clone()))
    }

    /// The gate (step 1), reading the workload through `read`.
    pub(super) async fn gate(
        &self,
        read: &dyn ClusterApi,
        workload: &WorkloadRef,
        who: &Identity,
        reason: Option<&str>,
        ask: &Ask<'_>,
    ) -> Result<Candidate<'_>, Box<Refused>> {
        let entry = self.entry(workload)?;
        let reason = clean_reason(reason)?;
        if ask.on_behalf_of.is_none()
            && let Err(error) = may_restart(entry, workload, who)
        {
            let note = format!(
                "restart by {who} refused: not among those allowed ({})",
                entry.allowed.join(", ")
            );
            return Err(Box::new(Refused {
                error,
                note: Some(note),
            }));
        }
        let current = existing(read, workload).await?;
        Ok(Candidate {
            entry,
            reason,
            current,
        })
    }

    /// The workload as it is (step 2): `Some` when it is admitted outside its windows.
    pub(super) fn judge(
        &self,
        workload: &WorkloadRef,
        who: &Identity,
        candidate: &Candidate<'_>,
        windows: Windows,
    ) -> Result<Option<Overridden>, Box<Refused>> {
        if let Err(error) = refusal_for(workload, &candidate.current) {
            let note = matches!(error, RestartError::Paused(_))
                .then(|| format!("restart by {who} refused: the deployment is paused"));
            return Err(Box::new(Refused { error, note }));
        }
        let entry_windows = &candidate.entry.windows;
        let Err(error) = self.window_refusal(workload, entry_windows) else {
            return Ok(None);
        };
        match windows {
            Windows::Admitted => Ok(None),
            Windows::Enforce => Err(Box::new(Refused {
                error,
                note: Some(format!(
                    "restart by {who} refused: outside its restart windows"
                )),
            })),
            Windows::Override if candidate.reason.is_none() => Err(needs_reason().into()),
            Windows::Override => Ok(Some(Overridden(describe(entry_windows)))),
        }
    }

    /// Whether `who` may restart every member of the set (and so start or cancel its runs).
    pub(super) fn may_run(&self, set: &RestartSet, who: &Identity) -> Result<(), RestartError> {
        for w in &set.members {
            may_restart(self.entry(w)?, w, who)?;
        }
        Ok(())
    }

    /// The checks of a set's run, as `ask` says: unless on behalf of a schedule, `who` must
    /// be allowed to restart every member; every member must be inside its windows unless
    /// they are overridden (then with a reason). The reason, trimmed.
    pub(super) fn admit_set(
        &self,
        set: &RestartSet,
        who: &Identity,
        reason: Option<&str>,
        ask: &Ask<'_>,
    ) -> Result<Option<String>, RestartError> {
        if ask.on_behalf_of.is_none() {
            self.may_run(set, who)?;
        }
        let reason = clean_reason(reason)?;
        for w in &set.members {
            let windows = &self.entry(w)?.windows;
            match (self.window_refusal(w, windows), ask.windows) {
                (Err(e), Windows::Enforce) => return Err(e),
                (Err(_), Windows::Override) if reason.is_none() => return Err(needs_reason()),
                _ => {}
            }
        }
        Ok(reason)
    }

    /// Refuses a restart outside the workload's restart windows (none: any time).
    fn window_refusal(
        &self,
        workload: &WorkloadRef,
        windows: &[Window],
    ) -> Result<(), RestartError> {
        let now = self.clock.now();
        if in_any_window(windows, now) {
            return Ok(());
        }
        Err(RestartError::OutsideWindow {
            workload: workload.clone(),
            windows: describe(windows),
            next: next_opening_text(windows, now),
        })
    }
}

fn may_restart(
    entry: &Allowed,
    workload: &WorkloadRef,
    who: &Identity,
) -> Result<(), RestartError> {
    if !entry.allowed.is_empty() && !who.is_any_of(&entry.allowed) {
        return Err(RestartError::Forbidden {
            who: who.user.clone(),
            workload: workload.clone(),
        });
    }
    Ok(())
}

fn needs_reason() -> RestartError {
    RestartError::Invalid("a restart outside the restart windows needs a reason".into())
}

/// The workload as the cluster has it now.
async fn existing(read: &dyn ClusterApi, workload: &WorkloadRef) -> Result<Workload, RestartError> {
    match read.get_workload(workload).await {
        Ok(w) => Ok(w),
        Err(Error::NotFound { .. }) => Err(RestartError::NotFound(workload.clone())),
        Err(e) => Err(RestartError::Cluster(e)),
    }
}

/// Why the workload as it is cannot be restarted at all: a paused Deployment, or a strategy
/// under which a restart replaces nothing.
fn refusal_for(workload: &WorkloadRef, current: &Workload) -> Result<(), RestartError> {
    if current.paused {
        return Err(RestartError::Paused(workload.clone()));
    }
    if current.strategy == UpdateStrategy::OnDelete {
        return Err(RestartError::OnDelete(workload.clone()));
    }
    Ok(())
}
