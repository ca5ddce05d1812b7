//! The restart lock: one Lease per workload, shared by every replica and by `restartctl`.
//!
//! The Lease `restart.<kind>.<namespace>.<name>` in the server's namespace says who restarts
//! the workload (`spec.holderIdentity`), since when (`acquireTime`) and for how long
//! (`leaseDurationSeconds`, the seed's `FORCE_UNLOCK_SEC`). It is taken and released only by
//! compare-and-swap. Released, it keeps the last restart's who, why and outcome in its
//! annotations, so every replica shows the same "last restarted by".

use std::time::Duration;

use cluster_api::lease::{self, Decision, Modified, ModifyError};
use cluster_api::{ClusterApi, Error, LabelSelector, Lease, Timestamp, WorkloadRef};
use serde::{Deserialize, Serialize};

use crate::observed::Observations;

/// Label on every restart lock.
pub const LOCK_LABEL: &str = "restart-manager.io/lock";
/// The value of [`LOCK_LABEL`] on restart locks.
pub const LOCK_LABEL_VALUE: &str = "restart";
/// Annotation naming the workload (`Deployment/shop/web`).
pub const WORKLOAD_ANNOTATION: &str = "restart-manager.io/workload";
/// Annotation with the reason given.
pub const REASON_ANNOTATION: &str = "restart-manager.io/reason";
/// Annotation identifying one restart, so that only it releases its lock.
pub const RESTART_ID_ANNOTATION: &str = "restart-manager.io/restart-id";
/// Annotation with the restart ids of the latest restarts that took the lock (the current one
/// included), a JSON list, newest last: a retry under an id derived from a set's run, a
/// due time or a configuration finds its restart done even after another restart took the
/// lock since.
pub const RECENT_IDS_ANNOTATION: &str = "restart-manager.io/recent-restart-ids";
/// How many restart ids [`RECENT_IDS_ANNOTATION`] keeps.
pub const RECENT_IDS: usize = 16;
/// Annotation with the `restartedAt` value the restart wrote into the pod template, by which
/// the workload's rollout is recognised as this restart's.
pub const RESTARTED_AT_ANNOTATION: &str = "restart-manager.io/restarted-at";
/// Annotation with how the last restart ended.
pub const OUTCOME_ANNOTATION: &str = "restart-manager.io/outcome";
/// Annotation with who started the last restart (kept after release).
pub const BY_ANNOTATION: &str = "restart-manager.io/restarted-by";
/// Annotation with when the last restart ended.
pub const ENDED_ANNOTATION: &str = "restart-manager.io/ended";

/// How many times a lock whose write may have landed is read back before giving up.
pub const CONFIRM_ATTEMPTS: usize = 3;

/// Who holds a workload's restart lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LockInfo {
    /// Who restarts it.
    pub holder: String,
    /// Since when.
    pub since: Timestamp,
    /// When the lock may be taken over if nobody released it.
    pub expires: Option<Timestamp>,
    /// Why.
    pub reason: Option<String>,
    /// Identifies the restart.
    pub restart_id: String,
    /// The `restartedAt` value this restart writes into the pod template.
    pub restarted_at: Option<String>,
}

/// How a restart ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// The rollout completed.
    Complete,
    /// The rollout failed (progress deadline exceeded).
    Failed,
    /// The lock ran out before the rollout completed.
    TimedOut,
    /// An operator broke the lock.
    Unlocked,
    /// The restart could not be applied.
    Aborted,
}

/// The last restart of a workload, as its Lease remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LastRestart {
    /// Who restarted it.
    pub by: String,
    /// When.
    pub at: Timestamp,
    /// Why.
    pub reason: Option<String>,
    /// How it ended; `None` while it runs.
    pub outcome: Option<Outcome>,
    /// When it ended.
    pub ended: Option<Timestamp>,
}

// === impl Outcome ===

impl Outcome {
    /// The label used in annotations, metrics and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timedOut",
            Outcome::Unlocked => "unlocked",
            Outcome::Aborted => "aborted",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "complete" => Outcome::Complete,
            "failed" => Outcome::Failed,
            "timedOut" => Outcome::TimedOut,
            "unlocked" => Outcome::Unlocked,
            "aborted" => Outcome::Aborted,
            _ => return None,
        })
    }
}

/// The Lease name of a workload's lock: `restart.<kind>.<namespace>.<name>`. Namespaces and
/// kinds contain no dots, so the name maps back to one workload only; names too long for an
/// object name are shortened with a hash.
pub fn lease_name(w: &WorkloadRef) -> String {
    let full = format!(
        "restart.{}.{}.{}",
        w.kind.as_str().to_ascii_lowercase(),
        w.namespace,
        w.name
    );
    if full.len() <= 253 {
        return full;
    }
    let hash = full.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let mut short: String = full.chars().take(240).collect();
    while short.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        short.pop();
    }
    format!("{short}-{hash:08x}")
}

/// The selector that finds every restart lock.
pub fn lease_selector() -> LabelSelector {
    LabelSelector::eq(LOCK_LABEL, LOCK_LABEL_VALUE)
}

/// The lock a Lease describes, if someone holds it (expired or not).
pub fn lock_of(lease: &Lease) -> Option<LockInfo> {
    let holder = lease.holder()?.to_string();
    let since = lease.acquire_time?;
    Some(LockInfo {
        holder,
        since,
        expires: lease.expires_at(),
        reason: lease.annotations.get(REASON_ANNOTATION).cloned(),
        restart_id: lease
            .annotations
            .get(RESTART_ID_ANNOTATION)
            .cloned()
            .unwrap_or_default(),
        restarted_at: lease.annotations.get(RESTARTED_AT_ANNOTATION).cloned(),
    })
}

/// The last restart a Lease remembers.
pub fn last_restart_of(lease: &Lease) -> Option<LastRestart> {
    let by = lease.annotations.get(BY_ANNOTATION)?.clone();
    Some(LastRestart {
        by,
        at: lease.acquire_time?,
        reason: lease.annotations.get(REASON_ANNOTATION).cloned(),
        outcome: lease
            .annotations
            .get(OUTCOME_ANNOTATION)
            .and_then(|o| Outcome::parse(o)),
        ended: lease
            .annotations
            .get(ENDED_ANNOTATION)
            .and_then(|t| t.parse().ok()),
    })
}

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
    /// The workload.
    pub workload: &'a WorkloadRef,
    /// Who.
    pub holder: &'a str,
    /// Why.
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

/// Whether a restart with `restart_id` has taken this lock: it holds it, or held it lately.
pub fn took(lease: &Lease, restart_id: &str) -> bool {
    let a = &lease.annotations;
    a.get(RESTART_ID_ANNOTATION).map(String::as_str) == Some(restart_id)
        || recent_ids(lease).iter().any(|id| id == restart_id)
}

/// The ids [`RECENT_IDS_ANNOTATION`] holds (none, if it cannot be read).
fn recent_ids(lease: &Lease) -> Vec<String> {
    lease
        .annotations
        .get(RECENT_IDS_ANNOTATION)
        .and_then(|ids| serde_json::from_str(ids).ok())
        .unwrap_or_default()
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

/// A lock Lease not created yet: nobody holds it.
fn new_lock_lease(namespace: &str, name: &str) -> Lease {
    Lease::new(namespace, name)
        .label(LOCK_LABEL, LOCK_LABEL_VALUE)
        .label("app.kubernetes.io/managed-by", "restart-manager")
}

/// Sets annotations of a workload's lock Lease (`(key, value)` pairs) with compare-and-swap,
/// creating the Lease (held by nobody) if there is none; the lock itself is left as it is.
/// Returns the Lease as written (or as read, if it already said so).
pub async fn annotate(
    api: &dyn ClusterApi,
    namespace: &str,
    workload: &WorkloadRef,
    pairs: &[(&str, &str)],
) -> Result<Lease, Error> {
    let name = lease_name(workload);
    let modified = lease::modify(api, namespace, &name, |current| {
        let mut lease = current.unwrap_or_else(|| new_lock_lease(namespace, &name));
        let a = &lease.annotations;
        if pairs
            .iter()
            .all(|(key, value)| a.get(*key).map(String::as_str) == Some(*value))
        {
            return Decision::Keep(lease);
        }
        let a = &mut lease.annotations;
        a.insert(WORKLOAD_ANNOTATION.into(), workload.to_string());
        for (key, value) in pairs {
            a.insert((*key).into(), (*value).into());
        }
        Decision::Write(lease, ())
    })
    .await?;
    Ok(match modified {
        Modified::Kept(lease) | Modified::Written(lease, ()) => lease,
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

/// Reads something back after a write whose answer was lost: up to [`CONFIRM_ATTEMPTS`]
/// reads, 200 ms apart and doubling, until one answers; the last error if none does.
pub(crate) async fn read_back<T, F>(mut read: impl FnMut() -> F) -> Result<T, Error>
where
    F: Future<Output = Result<T, Error>>,
{
    let mut wait = Duration::from_millis(200);
    let mut last = None;
    for _ in 0..CONFIRM_ATTEMPTS {
        match read().await {
            Ok(found) => return Ok(found),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
    Err(last.unwrap_or_else(|| Error::unavailable("nothing could be read back")))
}

/// Changes a held lock with compare-and-swap, if `restart_id` (when given) still holds it.
/// Returns the lock as it was and the Lease as written, or `None` if it was not held (by that
/// restart).
pub async fn update(
    api: &dyn ClusterApi,
    namespace: &str,
    workload: &WorkloadRef,
    restart_id: Option<&str>,
    mut change: impl FnMut(&mut Lease),
) -> Result<Option<(LockInfo, Lease)>, Error> {
    let name = lease_name(workload);
    let modified = lease::modify(api, namespace, &name, |current| {
        let Some(mut lease) = current else {
            return Decision::Keep(());
        };
        match lock_of(&lease) {
            Some(held) if restart_id.is_none_or(|id| id == held.restart_id) => {
                change(&mut lease);
                Decision::Write(lease, held)
            }
            _ => Decision::Keep(()),
        }
    })
    .await?;
    Ok(match modified {
        Modified::Written(lease, held) => Some((held, lease)),
        Modified::Kept(()) => None,
    })
}

/// Releases a lock, recording how the restart ended. With `restart_id`, only that restart's
/// lock is released; without, whoever holds it (a forced unlock).
pub async fn release(
    api: &dyn ClusterApi,
    namespace: &str,
    workload: &WorkloadRef,
    restart_id: Option<&str>,
    outcome: Outcome,
    now: Timestamp,
) -> Result<Option<(LockInfo, Lease)>, Error> {
    update(api, namespace, workload, restart_id, |lease| {
        lease.holder_identity = None;
        lease.renew_time = Some(now);
        lease
            .annotations
            .insert(OUTCOME_ANNOTATION.into(), outcome.as_str().into());
        lease
            .annotations
            .insert(ENDED_ANNOTATION.into(), now.to_string());
    })
    .await
}

#[cfg(test)]
mod tests {
    use cluster_api::WorkloadKind;

    use super::*;

    #[test]
    fn lease_names_map_back_to_one_workload() {
        let a = WorkloadRef::new(WorkloadKind::Deployment, "a-b", "c");
        let b = WorkloadRef::new(WorkloadKind::Deployment, "a", "b-c");
        assert_eq!(lease_name(&a), "restart.deployment.a-b.c");
        assert_ne!(lease_name(&a), lease_name(&b));
        let long = WorkloadRef::new(WorkloadKind::StatefulSet, "ns", "x".repeat(250));
        let name = lease_name(&long);
        assert!(name.len() <= 253, "{}", name.len());
        assert_ne!(
            name,
            lease_name(&WorkloadRef::new(
                WorkloadKind::StatefulSet,
                "ns",
                "x".repeat(251)
            ))
        );
    }
}
