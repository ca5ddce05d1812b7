//! The restart sets and their runs' Leases as this replica knows them, the statuses shown of
//! them, and the wake-up of the driver that moves the runs on.

use std::time::Duration;

use cluster_api::{CacheHealth, Lease, Store};
use tokio::sync::{Notify, broadcast};

use super::board::Board;
use crate::error::RestartError;
use crate::observed::Observations;
use crate::sets::{RestartSet, SetStatus};

/// The sets, in configuration order, and their runs' Leases by set name.
pub(super) struct SetRuns {
    sets: Vec<RestartSet>,
    runs: Store<String, Lease>,
    health: CacheHealth,
    observed: Observations,
    statuses: Board<String, SetStatus>,
    /// Wakes the driver: a run or a member's lock changed.
    wake: Notify,
}

impl SetRuns {
    pub(super) fn new(sets: Vec<RestartSet>) -> Self {
        SetRuns {
            sets,
            runs: Store::new(),
            health: CacheHealth::new("restart set"),
            observed: Observations::new(),
            statuses: Board::new(256),
            wake: Notify::new(),
        }
    }

    pub(super) fn all(&self) -> &[RestartSet] {
        &self.sets
    }

    pub(super) fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    pub(super) fn get(&self, name: &str) -> Result<&RestartSet, RestartError> {
        self.sets
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| RestartError::UnknownSet(name.to_string()))
    }

    /// The configured set whose run Lease this is.
    pub(super) fn set_of_lease(&self, lease: &str) -> Option<String> {
        let name = lease.strip_prefix("restart-set.")?;
        self.sets
            .iter()
            .any(|s| s.name == name)
            .then(|| name.to_string())
    }

    /// The set's run Lease as last seen.
    pub(super) fn lease(&self, set: &str) -> Option<Lease> {
        self.runs.get(set)
    }

    /// Keeps a run's Lease if it is newer than what is held; whether it was.
    pub(super) fn insert(&self, set: &str, lease: Lease) -> bool {
        // Seen only when newer than what is held: an older copy is no change.
        let seen = lease.clone();
        let newer = self.runs.insert(set.to_string(), lease);
        if newer {
            self.observed.unchanged_for(&seen);
        }
        newer
    }

    /// Replaces every run with a full list of Leases; the sets whose run changed or went,
    /// and then those listed.
    pub(super) fn reset(&self, all: Vec<Lease>) -> Vec<String> {
        let all: Vec<(String, Lease)> = all
            .into_iter()
            .filter_map(|l| Some((self.set_of_lease(&l.name)?, l)))
            .inspect(|(_, l)| {
                self.observed.unchanged_for(l);
            })
            .collect();
        let listed: Vec<String> = all.iter().map(|(s, _)| s.clone()).collect();
        let mut changed = self.runs.reset(all);
        changed.extend(listed);
        changed
    }

    /// Forgets the run of the set whose Lease this is; that set, if it was held.
    pub(super) fn remove(&self, lease: &str) -> Option<String> {
        let set = self.set_of_lease(lease)?;
        self.runs.remove(&set).then_some(set)
    }

    /// Whether this replica has not yet watched the run's Lease unchanged for its duration.
    pub(super) fn is_held(&self, lease: &Lease) -> bool {
        self.observed.is_held(lease)
    }

    /// How long this replica has watched the run's Lease unchanged.
    pub(super) fn unchanged_for(&self, lease: &Lease) -> Duration {
        self.observed.unchanged_for(lease)
    }

    /// The runs' watch health; none without sets (nothing is watched).
    pub(super) fn health(&self) -> Option<&CacheHealth> {
        (!self.sets.is_empty()).then_some(&self.health)
    }

    pub(super) fn watch_health(&self) -> &CacheHealth {
        &self.health
    }

    pub(super) fn statuses(&self) -> &Board<String, SetStatus> {
        &self.statuses
    }

    pub(super) fn subscribe(&self) -> broadcast::Receiver<SetStatus> {
        self.statuses.subscribe()
    }

    /// Lets the driver look.
    pub(super) fn wake(&self) {
        self.wake.notify_one();
    }

    pub(super) async fn woken(&self) {
        self.wake.notified().await;
    }
}
