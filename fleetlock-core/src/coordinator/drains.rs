//! The table of this replica's drains, at most one per node, and the tasks it spawned for
//! them (and for recovery timers), so that a shutdown can wait for them all.
//!
//! A drain asked to stop ([`Drains::stop_orphaned`]) stops at its next safe point and tidies
//! up itself: it may have to undo a cordon that landed after a release. `abort()` is kept for
//! drains whose release has tidied the node already (superseded, or stopped by the release
//! itself), and for a run dropped without a shutdown, which must stop them as a crash would.

use std::collections::HashMap;
use std::future::Future;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use super::caches::Caches;
use super::grants::GrantNow;
use crate::drain::{DrainPhase, DrainStatus};
use crate::group::{Holder, HolderPhase};

#[derive(Default)]
pub(super) struct Drains {
    table: Mutex<HashMap<String, DrainTask>>,
    tasks: TaskTracker,
}

struct DrainTask {
    /// The grant it drains for.
    grant: Holder,
    group: String,
    status: watch::Receiver<DrainStatus>,
    handle: JoinHandle<()>,
    /// Asks the drain to stop and tidy up (its grant is no longer draining).
    stop: watch::Sender<bool>,
}

impl Drains {
    /// The running drain of this holder's node, started with `start` (given the status to
    /// publish and the stop signal to heed) if there is none.
    pub(super) fn ensure<F>(
        &self,
        group: &str,
        holder: &Holder,
        start: impl FnOnce(watch::Sender<DrainStatus>, watch::Receiver<bool>) -> F,
    ) -> watch::Receiver<DrainStatus>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut table = self.table.lock();
        if let Some(task) = table.get(&holder.node)
            && task.grant.same_grant(holder)
            && !task.handle.is_finished()
            && !*task.stop.borrow()
        {
            return task.status.clone();
        }
        let (tx, rx) = watch::channel(starting(holder));
        let (stop, stop_rx) = watch::channel(false);
        let handle = self.tasks.spawn(start(tx, stop_rx));
        let task = DrainTask {
            grant: holder.clone(),
            group: group.to_string(),
            status: rx.clone(),
            handle,
            stop,
        };
        if let Some(old) = table.insert(holder.node.clone(), task) {
            // A drain of an earlier grant of the node, superseded: cancelled outright, as
            // the release that ended its grant tidied the node already.
            old.handle.abort();
        }
        rx
    }

    /// Asks every drain whose grant is no longer draining (as `caches` now say: given back,
    /// approved, recovering or granted again) to stop. A finished drain stays in the table
    /// (the fleet view shows how it went) only while its grant holds its slot.
    pub(super) fn stop_orphaned(&self, caches: &Caches) {
        let running: Vec<(String, Holder)> = {
            let table = self.table.lock();
            table
                .values()
                .map(|t| (t.group.clone(), t.grant.clone()))
                .collect()
        };
        if running.is_empty() {
            return;
        }
        let moved_on: Vec<(Holder, GrantNow)> = caches
            .grants_now(running)
            .into_iter()
            .filter(|(_, now)| *now != GrantNow::Held(HolderPhase::Draining))
            .collect();
        let mut table = self.table.lock();
        table.retain(|_, task| {
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
    pub(super) fn stop(&self, grant: &Holder) {
        let mut table = self.table.lock();
        if table
            .get(&grant.node)
            .is_some_and(|t| t.grant.same_grant(grant))
            && let Some(task) = table.remove(&grant.node)
        {
            task.handle.abort();
        }
    }

    /// Removes the drain of `grant` from the table without aborting it (the drain itself is
    /// finishing); a drain of another grant of the node stays.
    pub(super) fn forget(&self, grant: &Holder) {
        let mut table = self.table.lock();
        if table
            .get(&grant.node)
            .is_some_and(|t| t.grant.same_grant(grant))
        {
            table.remove(&grant.node);
        }
    }

    /// The status of the drain of this grant, running or finished, if this replica has one.
    pub(super) fn status(&self, grant: &Holder) -> Option<DrainStatus> {
        let table = self.table.lock();
        table
            .get(&grant.node)
            .filter(|t| t.grant.same_grant(grant))
            .map(|t| t.status.borrow().clone())
    }

    /// Spawns a timer (or other short task) a shutdown waits for; it must heed the shutdown
    /// signal itself.
    pub(super) fn spawn_timer(&self, timer: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(timer);
    }

    /// Waits, once the shutdown signal is given, for every drain and timer to stop at its
    /// next safe point; the table is empty after.
    pub(super) async fn wait_stopped(&self) {
        self.tasks.close();
        self.tasks.wait().await;
        self.table.lock().clear();
    }

    /// Stops every drain at once, as a crash would (a run dropped without a shutdown).
    pub(super) fn abort_all(&self) {
        for (_, task) in self.table.lock().drain() {
            task.handle.abort();
        }
    }
}

fn starting(holder: &Holder) -> DrainStatus {
    DrainStatus {
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
    }
}
