//! [`Shared`]: what every handler of the endpoint is given.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::SimCluster;

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) sim: SimCluster,
    pub(crate) token: Arc<str>,
    /// HTTP requests served, of every kind.
    pub(super) requests: Arc<AtomicU64>,
}

impl Shared {
    pub(crate) fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub(crate) fn reset_requests(&self) {
        self.requests.store(0, Ordering::Relaxed);
    }
}
