//! The schedules of the allowlist and the sets, and their Leases as this replica knows them:
//! each records the last due time acted on and what became of it.

use cluster_api::{CacheHealth, Lease, Store, Timestamp, WatchCache};

use crate::allowlist::Allowlist;
use crate::schedule::{LastDue, Schedule, ScheduleStatus, Target};
use crate::sets::RestartSet;

/// Who scheduled restarts are recorded as.
pub const SCHEDULE_USER: &str = "schedule";

/// Every schedule, with the Leases of their due times by name.
pub(super) struct Schedules {
    /// The workloads' in allowlist order, then the sets'.
    all: Vec<(Target, Schedule)>,
    leases: Store<String, Lease>,
    health: CacheHealth,
}

impl Schedules {
    pub(super) fn new(allowlist: &Allowlist, sets: &[RestartSet]) -> Self {
        let workloads = allowlist.iter().filter_map(|a| {
            let s = a.schedule.as_ref()?;
            Some((Target::Workload(a.workload.clone()), s.clone()))
        });
        let sets = sets.iter().filter_map(|set| {
            let s = set.schedule.as_ref()?;
            Some((Target::Set(set.name.clone()), s.clone()))
        });
        Schedules {
            all: workloads.chain(sets).collect(),
            leases: Store::new(),
            health: CacheHealth::new("restart schedule"),
        }
    }

    pub(super) fn all(&self) -> &[(Target, Schedule)] {
        &self.all
    }

    pub(super) fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// The schedules' watch health; none without schedules (nothing is watched).
    pub(super) fn health(&self) -> Option<&CacheHealth> {
        (!self.is_empty()).then_some(&self.health)
    }

    pub(super) fn watch_health(&self) -> &CacheHealth {
        &self.health
    }

    /// The last due time acted on for `target`, as last seen.
    pub(super) fn last_due(&self, target: &Target) -> Option<LastDue> {
        self.leases
            .get(&target.lease_name())
            .and_then(|l| LastDue::of(&l))
    }

    /// What to show about a target's schedule at `now`.
    pub(super) fn status(&self, target: &Target, s: &Schedule, now: Timestamp) -> ScheduleStatus {
        ScheduleStatus {
            cron: s.cron.to_string(),
            next: s.cron.next_after(now),
            last: self.last_due(target),
        }
    }

    /// Keeps a schedule Lease as just read or written.
    pub(super) fn insert(&self, lease: Lease) {
        self.leases.insert(lease.name.clone(), lease);
    }
}

/// The schedule Leases as their watch sees them, by name.
impl WatchCache<Lease> for Schedules {
    fn reset(&self, all: Vec<Lease>) {
        let all: Vec<(String, Lease)> = all.into_iter().map(|l| (l.name.clone(), l)).collect();
        self.leases.reset(all);
    }

    fn apply(&self, lease: Lease) {
        self.insert(lease);
    }

    fn delete(&self, lease: Lease) {
        self.leases.remove(&lease.name);
    }
}
