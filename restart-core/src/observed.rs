//! Lease expiry as one replica has watched it, never as its wall clock reads the Lease's times.
//!
//! A restart lock, a set's run and the leader Lease all say when they were taken or renewed in
//! the writer's wall-clock time. Comparing that with this replica's wall clock hands a live
//! lock to any replica whose clock runs ahead (and keeps a dead one from one whose clock runs
//! behind). So expiry is judged as client-go's leader election judges it: a Lease has expired
//! only once this replica has seen its record (holder, acquire and renew times, duration,
//! transitions) stay unchanged for the Lease's whole duration, measured on its own monotonic
//! clock. A replica that has just started (or just seen a change) waits a whole duration
//! before it takes over; annotation-only writes (a set's progress aside, which renews) do not
//! count as renewals.

use std::collections::HashMap;
use std::time::Duration;

use cluster_api::{Lease, Timestamp};
use parking_lot::Mutex;
use tokio::time::Instant;

/// The part of a Lease whose change means "its holder is alive" (client-go's
/// `LeaderElectionRecord`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    holder: Option<String>,
    acquire_time: Option<Timestamp>,
    renew_time: Option<Timestamp>,
    duration: Option<i32>,
    transitions: Option<i32>,
}

impl Record {
    fn of(lease: &Lease) -> Self {
        Record {
            holder: lease.holder().map(str::to_string),
            acquire_time: lease.acquire_time,
            renew_time: lease.renew_time,
            duration: lease.lease_duration_seconds,
            transitions: lease.lease_transitions,
        }
    }
}

/// When this replica saw each Lease's record last change, on its monotonic clock.
#[derive(Debug, Default)]
pub struct Observations {
    seen: Mutex<HashMap<(String, String), (Record, Instant)>>,
}

impl Observations {
    /// Nothing seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes `lease` as seen now, and says how long its record has been seen unchanged
    /// (zero when it has just changed, or is seen for the first time).
    pub fn unchanged_for(&self, lease: &Lease) -> Duration {
        let now = Instant::now();
        let record = Record::of(lease);
        let key = (lease.namespace.clone(), lease.name.clone());
        let mut seen = self.seen.lock();
        let entry = seen.entry(key).or_insert_with(|| (record.clone(), now));
        if entry.0 != record {
            *entry = (record, now);
        }
        now.saturating_duration_since(entry.1)
    }

    /// Whether someone holds `lease` and this replica has not yet seen it unchanged for its
    /// whole duration. A held Lease without a duration never expires.
    pub fn is_held(&self, lease: &Lease) -> bool {
        let unchanged = self.unchanged_for(lease);
        if lease.holder().is_none() {
            return false;
        }
        match lease.lease_duration_seconds {
            None => true,
            Some(secs) => unchanged < Duration::from_secs(u64::from(secs.max(0).unsigned_abs())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(renewed: &str) -> Lease {
        let mut lease = Lease::new("ns", "l");
        lease.holder_identity = Some("a".into());
        lease.lease_duration_seconds = Some(30);
        lease.acquire_time = Some("2026-01-01T00:00:00Z".parse().unwrap());
        lease.renew_time = Some(renewed.parse().unwrap());
        lease
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_expires_only_after_staying_unchanged_for_its_duration_here() {
        let seen = Observations::new();
        // Renewed "a year ago" by its holder's clock: no matter, it was just seen.
        let lease = held("2025-01-01T00:00:00Z");
        assert!(seen.is_held(&lease));
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(seen.is_held(&lease));
        // A renewal (whatever time it writes) starts the count again.
        let renewed = held("2024-01-01T00:00:00Z");
        assert!(seen.is_held(&renewed));
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(seen.is_held(&renewed));
        // An annotation is no renewal.
        let mut annotated = renewed.clone();
        annotated.annotations.insert("x".into(), "y".into());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!seen.is_held(&annotated));
        let mut released = renewed;
        released.holder_identity = Some(String::new());
        assert!(!seen.is_held(&released), "an empty holder is nobody");
    }
}
