//! What this replica does in the background: everything while it leads, or, in a process
//! that never leads (`restartctl` acting directly), only what its own caller waits for.

use std::collections::HashSet;

use cluster_api::WorkloadRef;
use tokio::sync::watch;

/// What a process that is no leader does in the background for its own caller (see
/// `RestarterBuilder::only_for`).
#[derive(Debug, Clone, Default)]
pub(super) struct Only {
    /// Workloads whose rollouts it judges (a set's members included).
    pub(super) workloads: HashSet<WorkloadRef>,
    /// Sets whose runs it drives.
    pub(super) sets: HashSet<String>,
}

/// This replica's part: led by an election (or always, without one), or limited to [`Only`].
pub(super) struct Role {
    leadership: Option<watch::Receiver<bool>>,
    only: Option<Only>,
}

impl Role {
    pub(super) fn new(leadership: Option<watch::Receiver<bool>>, only: Option<Only>) -> Self {
        Role { leadership, only }
    }

    /// Whether this replica leads now: it acts on schedules and configuration changes, drives
    /// every set and judges every rollout.
    pub(super) fn leads(&self) -> bool {
        self.only.is_none() && self.leadership.as_ref().is_none_or(|l| *l.borrow())
    }

    /// Whether this replica judges `r`'s rollout now.
    pub(super) fn tracks(&self, r: &WorkloadRef) -> bool {
        match &self.only {
            Some(only) => only.workloads.contains(r),
            None => self.leads(),
        }
    }

    /// Whether this replica drives the set's runs now.
    pub(super) fn drives(&self, set: &str) -> bool {
        match &self.only {
            Some(only) => only.sets.contains(set),
            None => self.leads(),
        }
    }

    /// A watch of leadership for one loop, to wait on with [`changed`].
    pub(super) fn watch(&self) -> Option<watch::Receiver<bool>> {
        self.leadership.clone()
    }
}

/// Resolves when this replica's leadership changes; never without an election (or once its
/// sender is gone): a loop that acts only while leading wakes at once when it starts to.
pub(super) async fn changed(leadership: &mut Option<watch::Receiver<bool>>) {
    let changed = match leadership.as_mut() {
        Some(l) => l.changed().await.is_ok(),
        None => false,
    };
    if !changed {
        std::future::pending::<()>().await;
    }
}
