//! Evicting a drain's pods: each due pod once its backoff is over, after confirming the slot,
//! with bounded parallelism; what each answer means for the next try.

use cluster_api::{Error, EvictOptions, EvictionOutcome, Pod, Result};
use futures::StreamExt;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::state::{Drainer, Waiting, key};
use crate::coordinator::grants::GrantNow;
use crate::drain::DrainPlan;
use crate::group::HolderPhase;

// === impl Drainer: evictions ===

impl Drainer {
    /// Evicts every pod that is due: not already leaving, not waiting out a backoff, and the
    /// server's own pod only once it is the last one left. Each eviction is sent only while
    /// the grant is confirmed draining in the cluster: the round's confirmation covers the
    /// evictions sent at once with it (up to `parallelism`); each later one, sent when an
    /// earlier one is answered (which may take a while), confirms again. Once the grant is
    /// found elsewhere, nothing more is sent, and where it stands is returned.
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
        let (inner, group, holder) = (&self.inner, &self.group, &self.holder);
        let options = &self.evict_options;
        // Where the grant stands once it is found elsewhere.
        let left: Mutex<Option<GrantNow>> = Mutex::new(None);
        let confirm = || async {
            if left.lock().is_some() {
                return Err(Evicted::NotSent);
            }
            match inner.grant_now(group, holder).await {
                Ok(GrantNow::Held(HolderPhase::Draining)) => Ok(()),
                Ok(now) => {
                    left.lock().get_or_insert(now);
                    Err(Evicted::NotSent)
                }
                Err(e) => Err(Evicted::Unconfirmed(e)),
            }
        };
        if let Err(not) = confirm().await {
            if let Evicted::Unconfirmed(e) = &not {
                for pod in &due {
                    self.postpone_unconfirmed(pod, now, e);
                }
            }
            return left.into_inner();
        }
        let parallelism = self.inner.config.drain.parallelism;
        let results: Vec<(Pod, Evicted)> = futures::stream::iter(due.into_iter().enumerate())
            .map(|(i, pod)| async move {
                // The first `parallelism` go at once, on the round's confirmation.
                if i >= parallelism
                    && let Err(not) = confirm().await
                {
                    return (pod, not);
                }
                // This pod, by uid: one of its name made since, elsewhere (a StatefulSet's
                // replacement), is not ours to evict, whatever our view of the node says.
                let options = EvictOptions {
                    uid: Some(pod.uid.clone()),
                    ..options.clone()
                };
                let result = inner
                    .api
                    .evict_pod(&pod.namespace, &pod.name, &options)
                    .await;
                (pod, Evicted::Sent(result))
            })
            .buffer_unordered(parallelism)
            .collect()
            .await;
        for (pod, evicted) in results {
            match evicted {
                Evicted::Sent(result) => self.record(&pod, result, now),
                Evicted::Unconfirmed(e) => self.postpone_unconfirmed(&pod, now, &e),
                Evicted::NotSent => {}
            }
        }
        left.into_inner()
    }

    /// Not sure the slot is still ours: evict nothing, look again later.
    fn postpone_unconfirmed(&mut self, pod: &Pod, now: Instant, e: &Error) {
        self.postpone(
            pod,
            now,
            format!("cannot confirm the reboot slot: {e}"),
            "the reboot slot is being confirmed",
        );
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

/// What became of one due pod's eviction.
enum Evicted {
    /// Sent; the answer.
    Sent(Result<EvictionOutcome>),
    /// Not sent: the grant could not be confirmed.
    Unconfirmed(Error),
    /// Not sent: the grant is no longer draining.
    NotSent,
}
