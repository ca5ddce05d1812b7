//! What the checks remember between writes ([`Checks`]), and how they tell the locks apart.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use cluster_api::{Lease, Timestamp, WorkloadRef};
use fleetlock_core::RateLimit;
use fleetlock_core::group::{LOCK_LABEL, LOCK_LABEL_VALUE};
use restart_core::lock::{self, lock_of};

use crate::violation::{Checked, Invariant, Violation};

/// Everything the checker keeps: the slots, what it found, and what it needs to judge later
/// writes by earlier ones.
#[derive(Default)]
pub(crate) struct Checks {
    pub(crate) slots: HashMap<String, u32>,
    pub(crate) default_slots: u32,
    /// With `stuck.release` on: how long a holder holds its slot before it may be taken.
    pub(crate) stuck_release: Option<Duration>,
    /// Every group's rate, and how far the replicas' clocks may disagree.
    pub(crate) rate: Option<(RateLimit, Duration)>,
    /// Per group: when (simulated time) each grant was written, oldest first.
    pub(crate) grants: HashMap<String, Vec<Timestamp>>,
    pub(crate) violations: Vec<Violation>,
    pub(crate) checked: Checked,
    /// The restart id each restart patch was sent under, by workload and `restartedAt`.
    pub(crate) sent_by: HashMap<(WorkloadRef, String), String>,
    /// Every restart id whose patch was applied.
    pub(crate) applied: HashSet<String>,
    /// Per restart lock Lease: when (simulated time) its holder, times or duration last
    /// changed. A lock is held until its duration has passed since then: the replicas judge
    /// expiry by watching it unchanged, since the times it carries are the writer's clock.
    pub(crate) lock_changed: HashMap<String, Timestamp>,
}

/// What a lock Lease's holder renews: holder, times, duration, transitions.
pub(crate) fn lock_times(l: &Lease) -> impl PartialEq + use<'_> {
    (
        &l.holder_identity,
        l.acquire_time,
        l.renew_time,
        l.lease_duration_seconds,
        l.lease_transitions,
    )
}

impl Checks {
    /// The slots `group` has now: as last set, or the default.
    pub(crate) fn slots(&self, group: &str) -> u32 {
        self.slots.get(group).copied().unwrap_or(self.default_slots)
    }

    /// Records a violation seen at `at`.
    pub(crate) fn violation(&mut self, invariant: Invariant, at: Timestamp, detail: String) {
        self.violations.push(Violation {
            invariant,
            at,
            detail,
        });
    }

    /// Whether the lock `lease` (as it stands) is still held at `now`, by the simulation's
    /// clock: its duration not yet over since it last changed. A lock never seen to change
    /// is judged by its own times.
    pub(crate) fn lock_held(&self, lease: &Lease, now: Timestamp) -> bool {
        if lease.holder_identity.is_none() {
            return false;
        }
        match (
            self.lock_changed.get(&lease.name),
            lease.lease_duration_seconds,
        ) {
            (Some(at), Some(seconds)) => {
                now < *at + jiff::SignedDuration::from_secs(i64::from(seconds))
            }
            _ => lease.is_held_at(now),
        }
    }
}

/// Whether `lease` is a reboot group's lock.
pub(crate) fn is_group_lock(lease: &Lease) -> bool {
    lease.labels.get(LOCK_LABEL).map(String::as_str) == Some(LOCK_LABEL_VALUE)
}

/// Whether `lease` is a workload's restart lock.
pub(crate) fn is_restart_lock(lease: &Lease) -> bool {
    lease.labels.get(lock::LOCK_LABEL).map(String::as_str) == Some(lock::LOCK_LABEL_VALUE)
}

/// The lock a restart lock Lease holds at `now`, if it is one and its lease has not run out.
pub(crate) fn held_restart_lock(lease: &Lease, now: Timestamp) -> Option<restart_core::LockInfo> {
    if !is_restart_lock(lease) || !lease.is_held_at(now) {
        return None;
    }
    lock_of(lease)
}

/// Names joined with commas, for a violation's detail.
pub(crate) fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}
