//! One node's drain: cordon, evict with bounded parallelism and backoff, wait until the pods
//! it set out to move are gone, approve.
//!
//! Like `kubectl drain`, it waits for pods by uid: the ones on the node when it first looks,
//! plus any that arrive later without tolerating the cordon (bound past the scheduler, or
//! scheduled just before the cordon landed). A pod that arrives later and tolerates the
//! cordon would only come straight back if evicted, so it is left, and listed as skipped.
//! A drain belongs to one grant of the slot. Before every eviction it confirms in the
//! cluster that this grant is still draining, and it stops as soon as it is not: the slot
//! given back (then it undoes a cordon it wrote), the grant approved or seen through its
//! reboot by another replica, or the node granted again. Its replica's lock cache says so
//! too, and stops it sooner.

mod cordon;
mod evictions;
mod overdue;
mod pods;
mod progress;
mod state;

use std::sync::Arc;

use cluster_api::{Pod, WatchStream};
use futures::StreamExt;
use tokio::sync::watch;

use super::Inner;
use crate::drain::{DrainPhase, DrainStatus};
use crate::group::Holder;
use progress::skipped;
use state::{Drainer, Step};

impl Inner {
    /// The running drain of this holder's node, started if there is none.
    pub(super) fn ensure_drain(
        self: &Arc<Self>,
        group: &str,
        holder: &Holder,
    ) -> watch::Receiver<DrainStatus> {
        self.drains.ensure(group, holder, |status, stop| {
            Drainer::new(
                self.clone(),
                group.to_string(),
                holder.clone(),
                status,
                stop,
            )
            .run()
        })
    }
}

// === impl Drainer: run ===

impl Drainer {
    /// Cordons, evicts and waits until the pods it must move are gone, then approves.
    async fn run(mut self) {
        match self.cordon().await {
            Step::Wait => {}
            Step::Left(now) => return self.leave(Some(now)).await,
            Step::Done | Step::Stop => return,
        }
        let mut stream: Option<WatchStream<Pod>> = None;
        loop {
            if self.inner.shutdown.is_cancelled() {
                // Another replica, or this one restarted, picks the drain up from the Lease.
                return;
            }
            if *self.stop.borrow() {
                // The cache said so; the cluster says how to leave.
                let now = self.inner.grant_now(&self.group, &self.holder).await.ok();
                return self.leave(now).await;
            }
            if stream.is_none() {
                stream = self.watch().await;
            }
            let step = if self.listed && self.current {
                self.step().await
            } else {
                self.stalled().await
            };
            match step {
                Step::Done if self.still_empty().await => break,
                Step::Done => {}
                Step::Stop => return,
                Step::Left(now) => return self.leave(Some(now)).await,
                Step::Wait => {}
            }
            let wake = tokio::time::sleep_until(self.wake_at(stream.is_some()));
            let mut stop = self.stop.clone();
            let event = async {
                match stream.as_mut() {
                    Some(pods) => pods.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = event => match event {
                    Some(Ok(event)) => self.apply(event),
                    Some(Err(e)) => {
                        tracing::debug!(node = %self.node(), error = %e, "pod watch failed; re-watching");
                        stream = None;
                        self.current = false;
                    }
                    None => {
                        stream = None;
                        self.current = false;
                    }
                },
                _ = stop.changed() => {}
                () = self.inner.shutdown.cancelled() => {}
                () = wake => {}
            }
        }
        self.finish().await;
    }

    async fn finish(&self) {
        let skipped = skipped(&self.plan());
        match self.inner.approve(&self.group, &self.holder).await {
            Ok(()) => {
                self.inner.observer.drain_finished(
                    &self.group,
                    "completed",
                    self.started.elapsed(),
                );
                self.status.send_modify(|s| {
                    s.phase = DrainPhase::Done;
                    s.message = format!("{} is drained; reboot approved", self.holder.node);
                    s.summary = s.message.clone();
                    s.pods_left = 0;
                    s.waiting_for.clear();
                    s.blocked.clear();
                    s.skipped = skipped;
                });
            }
            Err(message) => {
                self.undo_our_cordon(None).await;
                self.inner.observer.drain_finished(
                    &self.group,
                    "cancelled",
                    self.started.elapsed(),
                );
                self.publish(DrainPhase::Cancelled, message);
            }
        }
    }
}
