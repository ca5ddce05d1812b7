//! What the simulated API server remembers of the writes it served, for tests to check
//! invariants against ("no eviction without a slot holder") rather than against the state a
//! test happens to look at afterwards.

use cluster_api::{EvictionOutcome, Timestamp};

/// How many eviction records are kept before the oldest are dropped.
pub(crate) const EVICTION_LIMIT: usize = 100_000;

/// One eviction request the cluster answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvictionRecord {
    /// When it was answered (simulated wall clock).
    pub at: Timestamp,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod's uid, if the pod existed.
    pub uid: Option<String>,
    /// The node the pod was bound to, if it existed and was bound.
    pub node: Option<String>,
    /// What the Eviction API answered.
    pub outcome: EvictionOutcome,
}
