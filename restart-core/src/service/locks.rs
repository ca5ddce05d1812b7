//! The allowlisted workloads' lock Leases as this replica knows them, and how long it has
//! watched each unchanged ([`crate::observed`]).

use std::collections::HashMap;

use cluster_api::{CacheHealth, Lease, Store, WorkloadRef};

use crate::allowlist::Allowlist;
use crate::lock;
use crate::observed::Observations;

/// The lock Leases by workload.
pub(super) struct Locks {
    /// Allowlisted workloads by the name of their lock Lease.
    by_lease: HashMap<String, WorkloadRef>,
    leases: Store<WorkloadRef, Lease>,
    pub(super) health: CacheHealth,
    observed: Observations,
}

impl Locks {
    pub(super) fn new(allowlist: &Allowlist) -> Self {
        let by_lease = allowlist
            .iter()
            .map(|a| (lock::lease_name(&a.workload), a.workload.clone()))
            .collect();
        Locks {
            by_lease,
            leases: Store::new(),
            health: CacheHealth::new("restart lock"),
            observed: Observations::new(),
        }
    }

    /// The allowlisted workload whose lock Lease this is.
    pub(super) fn workload_of(&self, lease: &str) -> Option<&WorkloadRef> {
        self.by_lease.get(lease)
    }

    /// `r`'s lock Lease as last seen.
    pub(super) fn get(&self, r: &WorkloadRef) -> Option<Lease> {
        self.leases.get(r)
    }

    /// Keeps `lease` as `r`'s if it is newer than what is held; whether it was.
    pub(super) fn insert(&self, r: &WorkloadRef, lease: Lease) -> bool {
        // Seen only when newer than what is held: an older copy is no change.
        let seen = lease.clone();
        let newer = self.leases.insert(r.clone(), lease);
        if newer {
            self.observed.unchanged_for(&seen);
        }
        newer
    }

    /// Replaces every lock with a full list of Leases; the workloads whose lock changed or
    /// went, and then those listed.
    pub(super) fn reset(&self, all: Vec<Lease>) -> Vec<WorkloadRef> {
        let all: Vec<(WorkloadRef, Lease)> = all
            .into_iter()
            .filter_map(|l| Some((self.by_lease.get(&l.name)?.clone(), l)))
            .inspect(|(_, l)| {
                self.observed.unchanged_for(l);
            })
            .collect();
        let listed: Vec<WorkloadRef> = all.iter().map(|(r, _)| r.clone()).collect();
        let mut changed = self.leases.reset(all);
        changed.extend(listed);
        changed
    }

    /// Forgets the lock of the workload whose Lease this is; that workload, if it was held.
    pub(super) fn remove(&self, lease: &str) -> Option<&WorkloadRef> {
        let r = self.by_lease.get(lease)?;
        self.leases.remove(r).then_some(r)
    }

    /// Whether this replica has not yet watched `lease` unchanged for its whole duration.
    pub(super) fn is_held(&self, lease: &Lease) -> bool {
        self.observed.is_held(lease)
    }

    /// The observations a lock is taken with ([`lock::take_observed`]).
    pub(super) fn observations(&self) -> &Observations {
        &self.observed
    }
}
