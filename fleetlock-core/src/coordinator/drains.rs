//! The table of running drains: at most one per node on this replica.

use std::sync::Arc;

use tokio::sync::watch;

use super::cache::GrantNow;
use super::drainer::Drainer;
use super::{DrainTask, Inner};
use crate::drain::{DrainPhase, DrainStatus};
use crate::group::{Holder, HolderPhase};

// === impl Inner: drains ===

impl Inner {
    /// The running drain of this holder's node, started if there is none.
    pub(super) fn ensure_drain(
        self: &Arc<Self>,
        group: &str,
        holder: &Holder,
    ) -> watch::Receiver<DrainStatus> {
        let mut drains = self.drains.lock();
        if let Some(task) = drains.get(&holder.node)
            && task.grant.same_grant(holder)
            && !task.handle.is_finished()
            && !*task.stop.borrow()
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
            skipped: Vec::new(),
            overdue: false,
            message: format!("draining {}: starting", holder.node),
            summary: format!("draining {}: starting", holder.node),
        });
        let this = self.clone();
        let (group, job) = (group.to_string(), holder.clone());
        let (stop, stop_rx) = watch::channel(false);
        let drainer = Drainer::new(this, group.clone(), job, tx, stop_rx);
        let handle = self.tasks.spawn(drainer.run());
        if let Some(old) = drains.insert(
            holder.node.clone(),
            DrainTask {
                grant: holder.clone(),
                group,
                status: rx.clone(),
                handle,
                stop,
            },
        ) {
            // A drain of an earlier grant of the node, superseded: cancelled outright, as
            // the release that ended its grant tidied the node already.
            old.handle.abort();
        }
        rx
    }

    /// Asks every drain whose grant is no longer draining (as the lock cache now says: given
    /// back, approved, recovering or granted again) to stop. The drain itself tidies up: it
    /// may have to undo a cordon that landed after a release. A finished drain stays in the
    /// table (the fleet view shows how it went) only while its grant holds its slot.
    pub(super) fn stop_orphaned_drains(&self) {
        #[cfg(feature = "sabotage")]
        if self.sabotage == Some(super::Sabotage::IgnoreRemoteReleases) {
            return;
        }
        let running: Vec<(String, Holder)> = {
            let drains = self.drains.lock();
            drains
                .values()
                .map(|t| (t.group.clone(), t.grant.clone()))
                .collect()
        };
        if running.is_empty() {
            return;
        }
        let moved_on: Vec<(Holder, GrantNow)> = self.groups.read(|groups| {
            running
                .into_iter()
                .map(|(group, grant)| {
                    let now = groups
                        .get(&group)
                        .map_or(GrantNow::Released, |g| GrantNow::of(g, &grant));
                    (grant, now)
                })
                .filter(|(_, now)| *now != GrantNow::Held(HolderPhase::Draining))
                .collect()
        });
        let mut drains = self.drains.lock();
        drains.retain(|_, task| {
            let Some((_, now)) = moved_on.iter().find(|(g, _)| task.grant.same_grant(g)) else {
                return true;
            };
            task.stop.send_replace(true);
            let held = matches!(now, GrantNow::Held(_));
            held || !task.handle.is_finished()
        });
    }

    /// Stops the drain of `grant` (its slot was given back) outright: the release tidies the
    /// node. A drain of a later grant of the node, which may have started while the release
    /// was being told, goes on.
    pub(super) fn stop_drain(&self, grant: &Holder) {
        let mut drains = self.drains.lock();
        if drains
            .get(&grant.node)
            .is_some_and(|t| t.grant.same_grant(grant))
            && let Some(task) = drains.remove(&grant.node)
        {
            task.handle.abort();
        }
    }

    /// Removes the drain of `grant` from the table without aborting it (the drain itself is
    /// finishing); a drain of another grant of the node stays.
    pub(super) fn forget_drain(&self, grant: &Holder) {
        let mut drains = self.drains.lock();
        if drains
            .get(&grant.node)
            .is_some_and(|t| t.grant.same_grant(grant))
        {
            drains.remove(&grant.node);
        }
    }

    /// The status of the drain of this grant, running or finished, if this replica has one.
    pub(super) fn drain_status(&self, grant: &Holder) -> Option<DrainStatus> {
        let drains = self.drains.lock();
        drains
            .get(&grant.node)
            .filter(|t| t.grant.same_grant(grant))
            .map(|t| t.status.borrow().clone())
    }
}
