//! The workloads to look at again, each queued at most once.
//!
//! Watches, resyncs and the service's own writes all ask for a workload to be judged again;
//! asking while it is already waiting adds nothing, so the queue never holds more than one
//! entry per allowlisted workload however often a resync runs or a watch fires.

use std::collections::{HashSet, VecDeque};

use cluster_api::WorkloadRef;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// A first-in, first-out queue of workloads without duplicates, for one consumer.
#[derive(Debug, Default)]
pub(crate) struct Refresh {
    queue: Mutex<Queue>,
    wake: Notify,
}

#[derive(Debug, Default)]
struct Queue {
    order: VecDeque<WorkloadRef>,
    waiting: HashSet<WorkloadRef>,
}

impl Refresh {
    /// Asks for `r` to be looked at; nothing more if it is waiting already.
    pub(crate) fn push(&self, r: &WorkloadRef) {
        let mut queue = self.queue.lock();
        if queue.waiting.insert(r.clone()) {
            queue.order.push_back(r.clone());
            drop(queue);
            self.wake.notify_one();
        }
    }

    /// The next workload to look at, waiting for one if none is queued.
    pub(crate) async fn next(&self) -> WorkloadRef {
        loop {
            {
                let mut queue = self.queue.lock();
                if let Some(r) = queue.order.pop_front() {
                    queue.waiting.remove(&r);
                    return r;
                }
            }
            // A push between the look above and this wait leaves a permit behind: no wake-up
            // is lost.
            self.wake.notified().await;
        }
    }

    /// How many workloads wait.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.lock().order.len()
    }
}

#[cfg(test)]
mod tests {
    use cluster_api::WorkloadKind;

    use super::*;

    #[tokio::test]
    async fn each_workload_waits_once_in_the_order_first_asked() {
        let refresh = Refresh::default();
        let web = WorkloadRef::new(WorkloadKind::Deployment, "shop", "web");
        let db = WorkloadRef::new(WorkloadKind::StatefulSet, "shop", "db");
        for _ in 0..1_000 {
            refresh.push(&web);
            refresh.push(&db);
        }
        assert_eq!(refresh.len(), 2, "a thousand resyncs queue two entries");
        assert_eq!(refresh.next().await, web);
        // Asked again while db waits: web goes behind it.
        refresh.push(&web);
        assert_eq!(refresh.next().await, db);
        assert_eq!(refresh.next().await, web);
        assert_eq!(refresh.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_consumer_wakes_for_a_push() {
        let refresh = std::sync::Arc::new(Refresh::default());
        let consumer = tokio::spawn({
            let refresh = refresh.clone();
            async move { refresh.next().await }
        });
        tokio::task::yield_now().await;
        let web = WorkloadRef::new(WorkloadKind::Deployment, "shop", "web");
        refresh.push(&web);
        assert_eq!(consumer.await.unwrap(), web);
    }
}
