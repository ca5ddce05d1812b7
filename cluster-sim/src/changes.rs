//! The simulated cluster's history of changes, as etcd and the API server's watch cache keep
//! it: every write of a watchable object with the resourceVersion it got, so that a watch can
//! start from any version still in the window, and one older than the window is told
//! `410 Gone`. Off (and free) until an API endpoint turns it on.

use std::collections::VecDeque;
use std::sync::Arc;

use cluster_api::{Lease, Node, Pod, Workload};
use tokio::sync::broadcast;

/// A watchable object as it was written.
#[derive(Debug, Clone)]
pub enum Object {
    /// A Node.
    Node(Node),
    /// A Pod.
    Pod(Pod),
    /// A Lease.
    Lease(Lease),
    /// A Deployment, StatefulSet or DaemonSet.
    Workload(Workload),
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Deleted; the object is its last state.
    Deleted,
}

/// One write, at the resourceVersion it made.
#[derive(Debug, Clone)]
pub struct Change {
    /// The cluster's resourceVersion after the write.
    pub rv: u64,
    /// What it did.
    pub type_: ChangeType,
    /// The object after the write (before it, for a deletion).
    pub object: Object,
}

/// Announces every change from now on.
#[cfg_attr(not(feature = "apiserver"), allow(dead_code))]
pub(crate) type Feed = broadcast::Receiver<Arc<Change>>;

/// The recent changes, and a channel announcing new ones.
#[derive(Debug, Default)]
pub(crate) struct ChangeLog {
    window: usize,
    entries: VecDeque<Arc<Change>>,
    /// Changes at or below this version are gone from the window.
    compacted: u64,
    live: Option<broadcast::Sender<Arc<Change>>>,
}

// Turned on and read only by the API endpoint.
#[cfg_attr(not(feature = "apiserver"), allow(dead_code))]
impl ChangeLog {
    /// Starts keeping the last `window` changes; `now` is the cluster's current version.
    pub(crate) fn enable(&mut self, window: usize, now: u64) {
        self.window = window.max(1);
        if self.live.is_none() {
            self.compacted = now;
            self.live = Some(broadcast::channel(4096).0);
        }
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.live.is_some()
    }

    pub(crate) fn record(&mut self, rv: u64, type_: ChangeType, object: Object) {
        let Some(live) = &self.live else { return };
        let change = Arc::new(Change { rv, type_, object });
        let _ = live.send(change.clone());
        if self.entries.len() == self.window
            && let Some(oldest) = self.entries.pop_front()
        {
            self.compacted = oldest.rv;
        }
        self.entries.push_back(change);
    }

    /// The changes after `rv` and a receiver for those to come, or `None` if changes after
    /// `rv` have already left the window.
    pub(crate) fn since(&self, rv: u64) -> Option<(Vec<Arc<Change>>, Feed)> {
        let live = self.live.as_ref()?;
        if rv < self.compacted {
            return None;
        }
        let start = self.entries.partition_point(|c| c.rv <= rv);
        Some((
            self.entries.iter().skip(start).cloned().collect(),
            live.subscribe(),
        ))
    }

    /// Ends every watch fed from the log (they hear `410 Gone`) and forgets the history, as
    /// an API server restart with a compacted store does: watches must list again.
    pub(crate) fn break_all(&mut self, now: u64) {
        if self.live.is_some() {
            self.live = Some(broadcast::channel(4096).0);
            self.entries.clear();
            self.compacted = now;
        }
    }

    /// The oldest version a watch can still start from.
    pub(crate) fn oldest(&self) -> u64 {
        self.compacted
    }
}
