//! The table of running drains: at most one per node on this replica.

use std::sync::Arc;

use tokio::sync::watch;

use super::drainer::Drainer;
use super::{DrainTask, Inner};
use crate::drain::{DrainPhase, DrainStatus};
use crate::group::Holder;

// === impl Inner: drains ===

impl Inner {
    /// The running drain of this holder's node, started if there is none.
    pub(super) fn ensure_drain(
        self: &Arc<Self>,
        group: &str,
        holder: &Holder,
    ) -> watch::Receiver<DrainStatus> {
        let mut drains = self.drains.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(task) = drains.get(&holder.node)
            && task.id == holder.id
            && !task.handle.is_finished()
        {
            return task.status.clone();
        }
        let (tx, rx) = watch::channel(DrainStatus {
            node: holder.node.clone(),
            phase: DrainPhase::Running,
            started: holder.since,
            pods_left: 0,
            waiting_for: Vec::new(),
            blocked: Vec::new(),
            overdue: false,
            message: format!("draining {}: starting", holder.node),
        });
        let this = self.clone();
        let (group, job) = (group.to_string(), holder.clone());
        let handle = tokio::spawn(Drainer::new(this, group, job, tx).run()).abort_handle();
        drains.insert(
            holder.node.clone(),
            DrainTask {
                id: holder.id.clone(),
                status: rx.clone(),
                handle,
            },
        );
        rx
    }

    pub(super) fn stop_drain(&self, node: &str, id: &str) {
        let mut drains = self.drains.lock().unwrap_or_else(|e| e.into_inner());
        if drains.get(node).is_some_and(|t| t.id == id)
            && let Some(task) = drains.remove(node)
        {
            task.handle.abort();
        }
    }

    /// Removes a drain from the table without aborting it (the drain itself is finishing).
    pub(super) fn forget_drain(&self, node: &str, id: &str) {
        let mut drains = self.drains.lock().unwrap_or_else(|e| e.into_inner());
        if drains.get(node).is_some_and(|t| t.id == id) {
            drains.remove(node);
        }
    }

    pub(super) fn drain_status(&self, node: &str) -> Option<DrainStatus> {
        let drains = self.drains.lock().unwrap_or_else(|e| e.into_inner());
        drains.get(node).map(|t| t.status.borrow().clone())
    }
}
