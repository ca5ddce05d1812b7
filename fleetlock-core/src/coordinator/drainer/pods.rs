//! The node's pods as the drain sees them (a watch, listed afresh before approving), and the
//! step that decides what to do about them.

use std::time::Duration;

use cluster_api::{Pod, PodFilter, WatchEvent, WatchStream, whole_lists};
use tokio::time::Instant;

use super::state::{Drainer, Step, key};
use crate::drain::{DrainPhase, DrainPlan, SkipReason, plan_drain_at};

/// How often a running drain looks again even when nothing was heard.
const RESYNC: Duration = Duration::from_secs(30);

// === impl Drainer: pods ===

impl Drainer {
    pub(super) async fn watch(&self) -> Option<WatchStream<Pod>> {
        match self
            .inner
            .api
            .watch_pods(&PodFilter::on_node(self.node()))
            .await
        {
            // The drain decides on a node's pods as one list.
            Ok(stream) => Some(whole_lists(stream)),
            Err(e) => {
                self.publish_apart(
                    DrainPhase::Running,
                    format!("draining {}: cannot watch its pods: {e}", self.node()),
                    format!(
                        "draining {}: cannot see its pods yet; ask again",
                        self.node()
                    ),
                );
                None
            }
        }
    }

    /// Whether the node's pods, listed from the API server now, leave nothing to move. The
    /// watch may lag (a stalled connection, events still on their way): a pod bound before
    /// the cordon, or a replacement, could be on the node while the watch shows only the last
    /// eviction's pod gone. A list that fails is no answer: the drain looks again.
    pub(super) async fn still_empty(&mut self) -> bool {
        match self
            .inner
            .api
            .list_pods(&PodFilter::on_node(self.node()))
            .await
        {
            Ok(pods) => {
                self.apply(WatchEvent::Restarted(pods));
                let plan = self.plan();
                plan.refusal_message().is_none() && plan.is_done()
            }
            Err(e) => {
                tracing::debug!(node = %self.node(), error = %e, "could not list the node's pods before approving; looking again");
                false
            }
        }
    }

    /// The pods are not known as they are now (not listed yet, or not listed again since the
    /// watch failed): only the timeout policy can act.
    pub(super) async fn stalled(&mut self) -> Step {
        if self.is_overdue() && !self.on_overdue().await {
            return Step::Stop;
        }
        Step::Wait
    }

    pub(super) fn apply(&mut self, event: WatchEvent<Pod>) {
        match event {
            WatchEvent::Restarted(all) => {
                let first = !self.listed;
                for pod in &all {
                    if first {
                        self.targets.insert(pod.uid.clone());
                    } else {
                        self.admit(pod);
                    }
                }
                self.pods = all.into_iter().map(|p| (key(&p), p)).collect();
                let pods = &self.pods;
                self.retry.retain(|k, _| pods.contains_key(k));
                self.blocked.retain(|k, _| pods.contains_key(k));
                self.listed = true;
                self.current = true;
            }
            WatchEvent::Applied(pod) if pod.node_name.as_deref() == Some(self.node()) => {
                self.admit(&pod);
                self.pods.insert(key(&pod), pod);
            }
            // `whole_lists` gathers every `Listed` into its `Restarted`.
            WatchEvent::Listed(_) => {}
            WatchEvent::Applied(pod) | WatchEvent::Deleted(pod) => {
                let k = key(&pod);
                self.pods.remove(&k);
                self.retry.remove(&k);
                self.blocked.remove(&k);
            }
        }
    }

    /// A pod that arrived after the first look joins the drain unless it tolerates the
    /// cordon (then evicting it would only bring it back).
    fn admit(&mut self, pod: &Pod) {
        if self.listed && !pod.tolerates_cordon() {
            self.targets.insert(pod.uid.clone());
        }
    }

    /// Looks at the node's pods and does what is due.
    pub(super) async fn step(&mut self) -> Step {
        let plan = self.plan();
        self.wait_left = plan.wait.iter().map(|(_, left)| *left).min();
        let refusal = plan.refusal_message();
        if refusal.is_none() && plan.is_done() {
            return Step::Done;
        }
        let overdue = self.is_overdue();
        if overdue && !self.on_overdue().await {
            return Step::Stop;
        }
        if let Some(message) = refusal {
            self.report_refusal(
                format!("drain of {} needs an operator: {message}", self.node()),
                &plan,
                overdue,
            )
            .await;
            return Step::Wait;
        }
        if let Some(now) = self.evict_due(&plan).await {
            return Step::Left(now);
        }
        self.publish_progress(&plan, overdue);
        Step::Wait
    }

    /// The plan over the pods this drain must move; pods that arrived later and tolerate the
    /// cordon are skipped.
    pub(super) fn plan(&self) -> DrainPlan {
        let (targets, late): (Vec<&Pod>, Vec<&Pod>) = self
            .pods
            .values()
            .partition(|p| self.targets.contains(&p.uid));
        let elapsed = self
            .inner
            .clock
            .now()
            .duration_since(self.holder.since)
            .unsigned_abs();
        let mut plan = plan_drain_at(targets, &self.options, elapsed);
        plan.skip.extend(
            late.into_iter()
                .map(|p| (p.clone(), SkipReason::ToleratesCordon)),
        );
        plan
    }

    /// The next pod change wakes the drain too; this is when to look anyway: the next retry,
    /// the deadline, or a periodic resync (soon, while the pod watch is down).
    pub(super) fn wake_at(&self, watching: bool) -> Instant {
        let now = Instant::now();
        let mut wake = now
            + if watching {
                RESYNC
            } else {
                self.inner.config.drain.retry_initial
            };
        // A retry time already past belongs to a pod the last step did not evict (it is
        // terminating, or is the server's own pod waiting for the others): waking for it
        // again would spin. Its pod's next change wakes the drain.
        if let Some(at) = self
            .retry
            .values()
            .map(|(at, _)| *at)
            .filter(|at| *at > now)
            .min()
        {
            wake = wake.min(at);
        }
        if let Ok(left) = Duration::try_from(self.deadline.duration_since(self.inner.clock.now()))
            && !left.is_zero()
        {
            wake = wake.min(now + left);
        }
        // A pod a rule waits for is evicted when its limit runs out.
        if let Some(left) = self.wait_left {
            wake = wake.min(now + left);
        }
        wake
    }
}
