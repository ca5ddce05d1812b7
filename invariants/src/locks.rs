//! The checks of restart locks, of the restart patches sent under them, and of set runs.

use std::collections::BTreeMap;

use cluster_api::{Lease, Timestamp, WorkloadRef};
use cluster_sim::ClusterView;
use restart_core::RESTARTED_AT;
use restart_core::lock::{lease_name, lock_of};
use restart_core::sets::{MemberState, SetRun};

use crate::state::{Checks, lock_times};
use crate::violation::{Invariant, Violation};

/// A restart lock changes hands only once its holder's lease has run out.
pub(crate) fn lock_write(
    checks: &mut Checks,
    before: Option<&Lease>,
    after: &Lease,
    now: Timestamp,
) {
    checks.checked.lock_writes += 1;
    let held_before = before.is_some_and(|b| checks.lock_held(b, now));
    if before.is_none_or(|b| lock_times(b) != lock_times(after)) {
        checks.lock_changed.insert(after.name.clone(), now);
    }
    let Some(before) = before else { return };
    let (Some(old), Some(new)) = (lock_of(before), lock_of(after)) else {
        return;
    };
    if old.restart_id != new.restart_id && held_before {
        checks.violations.push(Violation {
            invariant: Invariant::RestartLockStolen,
            at: now,
            detail: format!(
                "{}: {} took the lock from {}, whose lease runs until {}",
                after.name,
                new.holder,
                old.holder,
                before
                    .expires_at()
                    .map_or_else(|| "forever".to_string(), |t| t.to_string())
            ),
        });
    }
}

/// A restart patch is sent only by the holder of the workload's lock, and is remembered so
/// that applying it twice can be told.
pub(crate) fn patch_requested(
    checks: &mut Checks,
    namespace: &str,
    workload: &WorkloadRef,
    changes: &BTreeMap<String, Option<String>>,
    cluster: &ClusterView<'_>,
) {
    let Some(Some(restarted_at)) = changes.get(RESTARTED_AT) else {
        return;
    };
    checks.checked.restarts += 1;
    let now = cluster.now();
    let lease = cluster.lease(namespace, &lease_name(workload));
    let lock = lease.and_then(|l| lock_of(l).map(|lock| (l, lock)));
    if let Some((_, lock)) = &lock
        && lock.restarted_at.as_ref() == Some(restarted_at)
    {
        checks.sent_by.insert(
            (workload.clone(), restarted_at.clone()),
            lock.restart_id.clone(),
        );
    }
    let why = match lock {
        None => "its lock is free".to_string(),
        Some((_, lock)) if lock.restarted_at.as_ref() != Some(restarted_at) => format!(
            "its lock belongs to another restart (by {}, restartedAt {})",
            lock.holder,
            lock.restarted_at.as_deref().unwrap_or("unset")
        ),
        Some((lease, lock)) if !checks.lock_held(lease, now) => {
            format!("its lock, held by {}, has run out", lock.holder)
        }
        Some(_) => return,
    };
    checks.violations.push(Violation {
        invariant: Invariant::RestartWithoutLock,
        at: now,
        detail: format!("{workload} restart sent (restartedAt {restarted_at}), but {why}"),
    });
}

/// A set run never has more members restarting than its concurrency.
pub(crate) fn set_run_write(checks: &mut Checks, lease: &Lease, run: &SetRun, now: Timestamp) {
    checks.checked.set_run_writes += 1;
    let restarting: Vec<&str> = run
        .members
        .iter()
        .filter(|m| m.state == MemberState::Restarting)
        .map(|m| m.workload.as_str())
        .collect();
    if restarting.len() > run.concurrency {
        checks.violations.push(Violation {
            invariant: Invariant::SetConcurrencyExceeded,
            at: now,
            detail: format!(
                "{}: run {} restarts {} at once ({}), its concurrency is {}",
                lease.name,
                run.id,
                restarting.len(),
                restarting.join(", "),
                run.concurrency
            ),
        });
    }
}
