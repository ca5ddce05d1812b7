//! Taking the lock with compare-and-swap, and telling whether a write whose answer was lost
//! landed.

use std::time::Duration;

use cluster_api::lease::{self, Decision, Modified, ModifyError};
use cluster_api::{ClusterApi, Error, Lease, Timestamp, WorkloadRef};

use super::lease::{
    BY_ANNOTATION, ENDED_ANNOTATION, LockInfo, OUTCOME_ANNOTATION, REASON_ANNOTATION, RECENT_IDS,
    RECENT_IDS_ANNOTATION, RESTART_ID_ANNOTATION, RESTARTED_AT_ANNOTATION, WORKLOAD_ANNOTATION,
    lease_name, lock_of, new_lock_lease, recent_ids, took,
};
use super::write::read_back;
use crate::observed::Observations;

/// What taking the lock found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Take {
    /// The lock is ours. `took_over` names a previous holder whose lock had expired.
    Taken {
        /// The lock as written.
        lock: LockInfo,
        /// The Lease as written.
        lease: Box<Lease>,
        /// The expired holder it replaced.
        took_over: Option<LockInfo>,
    },
    /// Someone else holds it and it has not expired; the Lease as read.
    Held(LockInfo, Box<Lease>),
    /// The write failed in a way that may have taken effect (its answer was lost), and the
    /// lock could not be read back to tell. The caller should give it back by its restart id.
    Unsure(Error),
    /// The lock already carries this request's restart id (held or released): that restart
    /// happened, and is not done twice. The Lease as read.
    Done(Box<Lease>),
}

/// A request to take a workload's lock.
#[derive(Debug, Clone)]
pub struct TakeRequest<'a> {
    /// The namespace of the lock Leases.
    pub namespace: &'a str,
    /// The workload whose lock this is (it names the Lease).
    pub workload: &'a WorkloadRef,
    /// The user the lock is held for: `spec.holderIdentity`.
    pub holder: &'a str,
    /// The reason given, kept on the Lease and shown with the lock.
    pub reason: Option<&'a str>,
    /// Identifies the restart.
    pub restart_id: &'a str,
    /// The `restartedAt` value the restart will write.
    pub restarted_at: &'a str,
    /// How long before the lock may be taken over.
    pub duration: Duration,
    /// Now, by this replica's wall clock: the times written into the Lease (and, for
    /// [`take`] only, what expiry is judged against).
    pub now: Timestamp,
}

/// Takes a workload's lock unless someone holds it and it has not expired at `req.now` by
/// the Lease's own times, or it carries `req`'s restart id now: the primitive, for one-shot
/// tools with no history of the Lease. A replica takes with [`take_observed`] instead.
pub async fn take(api: &dyn ClusterApi, req: &TakeRequest<'_>) -> Result<Take, Error> {
    take_judged(
        api,
        req,
        |lease| lease.is_held_at(req.now),
        |lease| {
            lease
                .annotations
                .get(RESTART_ID_ANNOTATION)
                .map(String::as_str)
                == Some(req.restart_id)
        },
    )
    .await
}

/// Takes a workload's lock as a replica does: unless someone holds it and this replica has
/// not yet seen it unchanged for its whole duration ([`Observations`]), so that a replica
/// whose wall clock runs ahead of the holder's cannot take over a live lock; and `Done` if a
/// restart with `req`'s id took it lately ([`took`]), so that a retry under a derived id
/// restarts nothing again even after someone else's restart took the lock since.
pub async fn take_observed(
    api: &dyn ClusterApi,
    req: &TakeRequest<'_>,
    observed: &Observations,
) -> Result<Take, Error> {
    take_judged(
        api,
        req,
        |lease| observed.is_held(lease),
        |lease| took(lease, req.restart_id),
    )
    .await
}

async fn take_judged(
    api: &dyn ClusterApi,
    req: &TakeRequest<'_>,
    is_held: impl Fn(&Lease) -> bool,
    done: impl Fn(&Lease) -> bool,
) -> Result<Take, Error> {
    let name = lease_name(req.workload);
    // The expired holder the last write would replace, for a write whose answer is lost.
    let mut replacing = None;
    let modified = lease::modify(api, req.namespace, &name, |current| {
        let Some(lease) = current else {
            replacing = None;
            return Decision::Write(locked(new_lock_lease(req.namespace, &name), req), None);
        };
        if done(&lease) {
            return Decision::Keep(Take::Done(Box::new(lease)));
        }
        let held = lock_of(&lease);
        if let Some(held) = &held
            && is_held(&lease)
        {
            return Decision::Keep(Take::Held(held.clone(), Box::new(lease)));
        }
        let mut lease = locked(lease, req);
        if held.is_some() {
            lease.lease_transitions = Some(lease.lease_transitions.unwrap_or(0) + 1);
        }
        replacing.clone_from(&held);
        Decision::Write(lease, held)
    })
    .await;
    match modified {
        Ok(Modified::Kept(found)) => Ok(found),
        Ok(Modified::Written(lease, took_over)) => taken(lease, took_over),
        Err(ModifyError::Write {
            source: e @ Error::Unavailable { .. },
            ..
        }) => {
            // A timeout or a 5xx may come after the API server committed the write.
            match confirm(api, req, &name).await {
                Ok(Confirmed::Landed(lease)) => {
                    tracing::info!(workload = %req.workload, "the lock write's answer was lost, but it landed");
                    taken(lease, replacing)
                }
                Ok(Confirmed::TakenElsewhere(lease)) => {
                    tracing::info!(workload = %req.workload, restart_id = req.restart_id, "the lock write failed; another take of the same restart holds the lock");
                    Ok(Take::Done(Box::new(lease)))
                }
                Ok(Confirmed::NotLanded) => Err(e),
                Err(_) => Ok(Take::Unsure(e)),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// `lease` held for `req`: its holder, times and annotations set, those of an earlier restart
/// removed, its id added to the recent ones.
fn locked(mut lease: Lease, req: &TakeRequest<'_>) -> Lease {
    lease.holder_identity = Some(req.holder.to_string());
    lease.acquire_time = Some(req.now);
    lease.renew_time = Some(req.now);
    lease.lease_duration_seconds = Some(
        i32::try_from(req.duration.as_secs())
            .unwrap_or(i32::MAX)
            .max(1),
    );
    let mut recent = recent_ids(&lease);
    recent.push(req.restart_id.to_string());
    let keep = recent.len().saturating_sub(RECENT_IDS);
    recent.drain(..keep);
    let a = &mut lease.annotations;
    a.insert(
        RECENT_IDS_ANNOTATION.into(),
        serde_json::to_string(&recent).unwrap_or_default(),
    );
    a.insert(WORKLOAD_ANNOTATION.into(), req.workload.to_string());
    a.insert(RESTART_ID_ANNOTATION.into(), req.restart_id.to_string());
    a.insert(BY_ANNOTATION.into(), req.holder.to_string());
    a.insert(RESTARTED_AT_ANNOTATION.into(), req.restarted_at.to_string());
    match req.reason {
        Some(r) => a.insert(REASON_ANNOTATION.into(), r.to_string()),
        None => a.remove(REASON_ANNOTATION),
    };
    for stale in [OUTCOME_ANNOTATION, ENDED_ANNOTATION] {
        a.remove(stale);
    }
    lease
}

fn taken(lease: Lease, took_over: Option<LockInfo>) -> Result<Take, Error> {
    let lock = lock_of(&lease).ok_or_else(|| Error::invalid("the written lock has no holder"))?;
    Ok(Take::Taken {
        lock,
        lease: Box::new(lease),
        took_over,
    })
}

/// What reading a lock back after a write whose answer was lost found.
enum Confirmed {
    /// The lock is held as the write would have left it: the write landed.
    Landed(Lease),
    /// The lock is held under this request's restart id, but not as this write would have
    /// left it (another holder or `restartedAt`): another take of the same restart,
    /// by another driver of a set's run or of a schedule deriving the same id, got there.
    /// That restart is done; applying it again would patch the workload with a
    /// `restartedAt` its lock does not name.
    TakenElsewhere(Lease),
    /// The lock does not carry this request's restart id: the write did not land.
    NotLanded,
}

/// Reads the lock back after a write whose answer was lost, to tell whether it landed (see
/// [`Confirmed`]); `Err` if it cannot be read.
async fn confirm(
    api: &dyn ClusterApi,
    req: &TakeRequest<'_>,
    name: &str,
) -> Result<Confirmed, Error> {
    let read = read_back(|| async {
        match api.get_lease(req.namespace, name).await {
            Err(Error::NotFound { .. }) => Ok(None),
            other => other.map(Some),
        }
    })
    .await?;
    let Some(lease) = read.filter(|lease| {
        lease
            .annotations
            .get(RESTART_ID_ANNOTATION)
            .is_some_and(|id| id == req.restart_id)
            && lease.holder().is_some()
    }) else {
        return Ok(Confirmed::NotLanded);
    };
    // Not the acquire time: the API server keeps it to the microsecond only. Two takes
    // with the same stamp would write the same patch.
    let ours = lease.holder() == Some(req.holder)
        && lease
            .annotations
            .get(RESTARTED_AT_ANNOTATION)
            .map(String::as_str)
            == Some(req.restarted_at);
    Ok(if ours {
        Confirmed::Landed(lease)
    } else {
        Confirmed::TakenElsewhere(lease)
    })
}
