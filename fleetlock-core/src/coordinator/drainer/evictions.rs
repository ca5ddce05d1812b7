//! Evicting a drain's pods: each due pod once its backoff is over, after confirming the slot,
//! with bounded parallelism; what each answer means for the next try.

use cluster_api::{Error, EvictionOutcome, Pod, Result};
use futures::StreamExt;
use tokio::time::Instant;

use super::{Drainer, Key};
use crate::coordinator::cache::GrantNow;
use crate::drain::DrainPlan;
use crate::group::HolderPhase;

// === impl Drainer: evictions ===

impl Drainer {
    /// Evicts every pod that is due: not already leaving, not waiting out a backoff, and the
    /// server's own pod only once it is the last one left. First confirms in the cluster that
    /// the grant is still draining; where it stands if it is not.
    pub(super) async fn evict_due(&mut self, plan: &DrainPlan) -> Option<GrantNow> {
        let now = Instant::now();
        let others_left = plan.evict.iter().any(|p| !self.is_own(p));
        // Only the highest eviction priority left goes now; the next once it has gone.
        let due: Vec<Pod> = plan.evict[..plan.first_tier]
            .iter()
            .filter(|p| !p.is_terminating())
            .filter(|p| !self.is_own(p) || !others_left)
            .filter(|p| self.retry.get(&key(p)).is_none_or(|(at, _)| *at <= now))
            .cloned()
            .collect();
        if due.is_empty() {
            return None;
        }
        match self.inner.grant_now(&self.group, &self.holder).await {
            Ok(GrantNow::Held(HolderPhase::Draining)) => {}
            Ok(now) => return Some(now),
            Err(e) => {
                // Not sure the slot is still ours: evict nothing, look again later.
                let why = format!("cannot confirm the reboot slot: {e}");
                for pod in &due {
                    self.postpone(pod, now, why.clone(), "the reboot slot is being confirmed");
                }
                return None;
            }
        }
        let api = self.inner.api.clone();
        let options = self.evict_options.clone();
        let results: Vec<(Pod, Result<EvictionOutcome>)> = futures::stream::iter(due)
            .map(|pod| {
                let (api, options) = (api.clone(), options.clone());
                async move {
                    let result = api.evict_pod(&pod.namespace, &pod.name, &options).await;
                    (pod, result)
                }
            })
            .buffer_unordered(self.inner.config.drain.parallelism)
            .collect()
            .await;
        for (pod, result) in results {
            self.record(&pod, result, now);
        }
        None
    }

    /// Tries a pod again after the next backoff, saying why it waits.
    fn postpone(&mut self, pod: &Pod, now: Instant, why: String, public: &'static str) {
        let drain = &self.inner.config.drain;
        let k = key(pod);
        let wait = self
            .retry
            .get(&k)
            .map_or(drain.retry_initial, |(_, d)| (*d * 2).min(drain.retry_max));
        self.retry.insert(k.clone(), (now + wait, wait));
        self.blocked.insert(k, Waiting::new(pod, why, public));
    }

    /// Notes an eviction's answer: done, or when to try again and why not yet.
    pub(super) fn record(&mut self, pod: &Pod, result: Result<EvictionOutcome>, now: Instant) {
        let drain = &self.inner.config.drain;
        let k = key(pod);
        let backoff = self
            .retry
            .get(&k)
            .map_or(drain.retry_initial, |(_, d)| (*d * 2).min(drain.retry_max));
        let (outcome, wait, why) = match result {
            Ok(EvictionOutcome::Evicted) => ("evicted", None, None),
            Ok(EvictionOutcome::Gone) => ("gone", None, None),
            // A budget's refusal is no error: asked again soon, the next pod goes as soon as
            // the budget allows it.
            Ok(EvictionOutcome::Blocked {
                message,
                retry_after,
            }) => (
                "blocked",
                Some(drain.budget_retry.max(retry_after.unwrap_or_default())),
                Some((message, "its disruption budget allows no eviction yet")),
            ),
            Ok(EvictionOutcome::Failed { message }) => (
                "failed",
                Some(drain.retry_max),
                Some((message, "the eviction failed")),
            ),
            // Throttled: wait at least as long as the API server asked.
            Err(e @ Error::TooManyRequests { .. }) => (
                "throttled",
                Some(backoff.max(e.retry_after().unwrap_or_default())),
                Some((
                    format!("throttled by the API server: {e}"),
                    "the API server is throttling evictions",
                )),
            ),
            Err(e) => {
                let wait = if e.is_transient() {
                    backoff.max(e.retry_after().unwrap_or_default())
                } else {
                    drain.retry_max
                };
                (
                    "error",
                    Some(wait),
                    Some((e.to_string(), "the eviction got an API error")),
                )
            }
        };
        self.inner.observer.eviction(outcome);
        match (wait, why) {
            (Some(wait), Some((why, public))) => {
                self.retry.insert(k.clone(), (now + wait, wait));
                self.blocked.insert(k, Waiting::new(pod, why, public));
            }
            _ => {
                self.retry.remove(&k);
                self.blocked.remove(&k);
            }
        }
    }
}

pub(super) fn key(pod: &Pod) -> Key {
    (pod.namespace.clone(), pod.name.clone())
}

/// Why one pod has not been evicted yet.
#[derive(Debug, Clone)]
pub(super) struct Waiting {
    /// For people: `shop/web-1: <the API server's words>`.
    pub(super) detail: String,
    /// For the node: `shop/web-1: <a category>`, no API text.
    pub(super) public: String,
}

impl Waiting {
    pub(super) fn new(pod: &Pod, why: String, public: &str) -> Self {
        Waiting {
            detail: format!("{pod}: {why}"),
            public: format!("{pod}: {public}"),
        }
    }
}
