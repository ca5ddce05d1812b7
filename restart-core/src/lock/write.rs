//! Writing a lock that is taken: annotations, changes, the release.

use std::time::Duration;

use cluster_api::lease::{self, Decision, Modified};
use cluster_api::{ClusterApi, Error, Lease, Timestamp, WorkloadRef};

use super::lease::{
    CONFIRM_ATTEMPTS, ENDED_ANNOTATION, LockInfo, OUTCOME_ANNOTATION, Outcome, WORKLOAD_ANNOTATION,
    lease_name, lock_of, new_lock_lease,
};

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
