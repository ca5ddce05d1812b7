//! One node's drain: cordon, evict with bounded parallelism and backoff, wait until the node
//! is empty, approve.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use cluster_api::{
    Error, EventType, EvictOptions, EvictionOutcome, Pod, PodFilter, Result, Timestamp, WatchEvent,
    WatchStream,
};
use futures::StreamExt;
use jiff::SignedDuration;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Inner, humanize};
use crate::config::OnDrainTimeout;
use crate::drain::{DrainOptions, DrainPhase, DrainPlan, DrainStatus, plan_drain};
use crate::group::Holder;

/// How often a running drain looks again even when nothing was heard.
const RESYNC: Duration = Duration::from_secs(30);

type Key = (String, String);

/// What a drain step decided.
enum Step {
    /// Wait for the next change or retry.
    Wait,
    /// The node is empty.
    Done,
    /// The drain is over without approval (the slot was given back).
    Stop,
}

/// The state of one running drain.
pub(super) struct Drainer {
    inner: Arc<Inner>,
    group: String,
    holder: Holder,
    status: watch::Sender<DrainStatus>,
    options: DrainOptions,
    evict_options: EvictOptions,
    /// When the drain overruns `drain.timeout`, counted from the grant.
    deadline: Timestamp,
    started: Instant,
    /// The node's pods, as the watch reports them; meaningful once `listed`.
    pods: BTreeMap<Key, Pod>,
    listed: bool,
    /// Per pod: when to try its eviction again, and the backoff that led there.
    retry: HashMap<Key, (Instant, Duration)>,
    /// Per pod: why its last eviction was refused.
    blocked: BTreeMap<Key, String>,
    refusal_reported: Option<String>,
    overdue_reported: bool,
}

impl Drainer {
    pub(super) fn new(
        inner: Arc<Inner>,
        group: String,
        holder: Holder,
        status: watch::Sender<DrainStatus>,
    ) -> Self {
        let drain = &inner.config.drain;
        let timeout = SignedDuration::try_from(drain.timeout).unwrap_or(SignedDuration::MAX);
        Drainer {
            options: DrainOptions {
                delete_unmanaged: drain.delete_unmanaged,
                delete_empty_dir_data: drain.delete_empty_dir_data,
                own_pod: inner.config.own_pod.clone(),
            },
            evict_options: EvictOptions {
                grace_period_seconds: drain.grace_period_seconds,
            },
            deadline: holder.since.checked_add(timeout).unwrap_or(holder.since),
            started: Instant::now(),
            pods: BTreeMap::new(),
            listed: false,
            retry: HashMap::new(),
            blocked: BTreeMap::new(),
            refusal_reported: None,
            overdue_reported: false,
            inner,
            group,
            holder,
            status,
        }
    }

    fn node(&self) -> &str {
        &self.holder.node
    }

    fn publish(&self, phase: DrainPhase, message: String) {
        self.status.send_modify(|s| {
            s.phase = phase;
            s.message = message;
        });
    }

    /// Cordons, evicts and waits until the node is empty, then approves the reboot.
    pub(super) async fn run(mut self) {
        if !self.cordon().await {
            return;
        }
        let mut stream: Option<WatchStream<Pod>> = None;
        loop {
            let Some(pods) = stream.as_mut() else {
                stream = self.watch().await;
                continue;
            };
            if self.listed {
                match self.step().await {
                    Step::Done => break,
                    Step::Stop => return,
                    Step::Wait => {}
                }
            }
            let wake = tokio::time::sleep_until(self.wake_at());
            tokio::select! {
                event = pods.next() => match event {
                    Some(Ok(event)) => self.apply(event),
                    Some(Err(e)) => {
                        tracing::debug!(node = %self.node(), error = %e, "pod watch ended; re-watching");
                        stream = None;
                    }
                    None => stream = None,
                },
                () = wake => {}
            }
        }
        self.finish().await;
    }

    /// Cordons the node (retrying), and says the drain has begun. False if the node is gone.
    async fn cordon(&self) -> bool {
        let drain = &self.inner.config.drain;
        let mut retry = drain.retry_initial;
        loop {
            match self.inner.cordon(self.node()).await {
                Ok(()) => break,
                Err(Error::NotFound { .. }) => {
                    self.publish(
                        DrainPhase::Cancelled,
                        format!("node {} no longer exists", self.node()),
                    );
                    return false;
                }
                Err(e) => {
                    self.publish(
                        DrainPhase::Running,
                        format!("draining {}: cannot cordon yet: {e}", self.node()),
                    );
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(drain.retry_max);
                }
            }
        }
        let announced = self.inner.node_state(self.node()).as_deref() == Some("draining");
        if !announced {
            self.inner.annotate(self.node(), "draining", &[]).await;
            self.inner
                .event(
                    self.node(),
                    EventType::Normal,
                    "Draining",
                    "Drain",
                    format!("evicting pods for a reboot in group {}", self.group),
                )
                .await;
        }
        true
    }

    async fn watch(&self) -> Option<WatchStream<Pod>> {
        match self
            .inner
            .api
            .watch_pods(&PodFilter::on_node(self.node()))
            .await
        {
            Ok(stream) => Some(stream),
            Err(e) => {
                self.publish(
                    DrainPhase::Running,
                    format!("draining {}: cannot watch its pods: {e}", self.node()),
                );
                tokio::time::sleep(self.inner.config.drain.retry_initial).await;
                None
            }
        }
    }

    fn apply(&mut self, event: WatchEvent<Pod>) {
        match event {
            WatchEvent::Restarted(all) => {
                self.pods = all.into_iter().map(|p| (key(&p), p)).collect();
                self.listed = true;
            }
            WatchEvent::Applied(pod) if pod.node_name.as_deref() == Some(self.node()) => {
                self.pods.insert(key(&pod), pod);
            }
            WatchEvent::Applied(pod) | WatchEvent::Deleted(pod) => {
                let k = key(&pod);
                self.pods.remove(&k);
                self.retry.remove(&k);
                self.blocked.remove(&k);
            }
        }
    }

    /// Looks at the node's pods and does what is due.
    async fn step(&mut self) -> Step {
        let plan = plan_drain(self.pods.values(), &self.options);
        if let Some(message) = plan.refusal_message() {
            self.report_refusal(format!(
                "drain of {} needs an operator: {message}",
                self.node()
            ))
            .await;
            return Step::Wait;
        }
        if plan.is_done() {
            return Step::Done;
        }
        let overdue = self.inner.clock.now() >= self.deadline;
        if overdue && !self.on_overdue().await {
            return Step::Stop;
        }
        self.evict_due(&plan).await;
        self.publish_progress(&plan, overdue);
        Step::Wait
    }

    async fn report_refusal(&mut self, message: String) {
        if self.refusal_reported.as_ref() != Some(&message) {
            tracing::warn!(node = %self.node(), %message, "drain blocked");
            self.inner
                .event(
                    self.node(),
                    EventType::Warning,
                    "DrainBlocked",
                    "Drain",
                    message.clone(),
                )
                .await;
            self.refusal_reported = Some(message.clone());
        }
        self.publish(DrainPhase::Blocked, message);
    }

    /// The drain is past its timeout: apply the policy. False if the drain ends here.
    async fn on_overdue(&mut self) -> bool {
        let took = humanize(self.inner.config.drain.timeout);
        match self.inner.config.drain.on_timeout {
            OnDrainTimeout::Release => {
                let message = format!(
                    "drain of {} did not finish within {took}; slot given back",
                    self.node()
                );
                tracing::warn!(node = %self.node(), group = %self.group, "{message}");
                self.inner
                    .event(
                        self.node(),
                        EventType::Warning,
                        "DrainTimedOut",
                        "Release",
                        message.clone(),
                    )
                    .await;
                self.inner.observer.drain_finished(
                    &self.group,
                    "timed_out",
                    self.started.elapsed(),
                );
                self.publish(DrainPhase::TimedOut, message);
                // Detach first, so the release does not abort this task halfway through.
                self.inner.forget_drain(self.node(), &self.holder.id);
                if let Err(e) = self
                    .inner
                    .release(&self.group, &self.holder.id, "drain timed out")
                    .await
                {
                    tracing::warn!(error = %e, "could not release after drain timeout");
                }
                false
            }
            OnDrainTimeout::KeepWaiting => {
                if !self.overdue_reported {
                    let message = format!(
                        "drain of {} has taken longer than {took}; still waiting",
                        self.node()
                    );
                    tracing::warn!(node = %self.node(), group = %self.group, "{message}");
                    self.inner
                        .event(
                            self.node(),
                            EventType::Warning,
                            "DrainOverdue",
                            "Drain",
                            message,
                        )
                        .await;
                    self.overdue_reported = true;
                }
                true
            }
        }
    }

    /// Evicts every pod that is due: not already leaving, not waiting out a backoff, and the
    /// server's own pod only once it is the last one left.
    async fn evict_due(&mut self, plan: &DrainPlan) {
        let now = Instant::now();
        let others_left = plan.evict.iter().any(|p| !self.is_own(p));
        let due: Vec<Pod> = plan
            .evict
            .iter()
            .filter(|p| !p.is_terminating())
            .filter(|p| !self.is_own(p) || !others_left)
            .filter(|p| self.retry.get(&key(p)).is_none_or(|(at, _)| *at <= now))
            .cloned()
            .collect();
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
    }

    /// Notes an eviction's answer: done, or when to try again and why not yet.
    fn record(&mut self, pod: &Pod, result: Result<EvictionOutcome>, now: Instant) {
        let drain = &self.inner.config.drain;
        let k = key(pod);
        let backoff = self
            .retry
            .get(&k)
            .map_or(drain.retry_initial, |(_, d)| (*d * 2).min(drain.retry_max));
        let (outcome, wait, why) = match result {
            Ok(EvictionOutcome::Evicted) => ("evicted", None, None),
            Ok(EvictionOutcome::Gone) => ("gone", None, None),
            Ok(EvictionOutcome::Blocked {
                message,
                retry_after,
            }) => (
                "blocked",
                Some(backoff.max(retry_after.unwrap_or_default())),
                Some(message),
            ),
            Ok(EvictionOutcome::Failed { message }) => {
                ("failed", Some(drain.retry_max), Some(message))
            }
            Err(e) => {
                let wait = if e.is_transient() {
                    backoff.max(e.retry_after().unwrap_or_default())
                } else {
                    drain.retry_max
                };
                ("error", Some(wait), Some(e.to_string()))
            }
        };
        self.inner.observer.eviction(outcome);
        match (wait, why) {
            (Some(wait), Some(why)) => {
                self.retry.insert(k.clone(), (now + wait, wait));
                self.blocked.insert(k, format!("{pod}: {why}"));
            }
            _ => {
                self.retry.remove(&k);
                self.blocked.remove(&k);
            }
        }
    }

    fn publish_progress(&self, plan: &DrainPlan, overdue: bool) {
        let left = plan.evict.len();
        let mut message = format!(
            "draining {}: {left} pod{} still to leave",
            self.node(),
            if left == 1 { "" } else { "s" }
        );
        if let Some(first) = self.blocked.values().next() {
            message.push_str(&format!(" (waiting on {first})"));
        }
        self.status.send_modify(|s| {
            s.phase = DrainPhase::Running;
            s.message = message;
            s.pods_left = left;
            s.waiting_for = plan.evict.iter().take(10).map(|p| p.to_string()).collect();
            s.blocked = self.blocked.values().take(5).cloned().collect();
            s.overdue = overdue;
        });
    }

    /// The next pod change wakes the drain too; this is when to look anyway: the next retry,
    /// the deadline, or a periodic resync.
    fn wake_at(&self) -> Instant {
        let now = Instant::now();
        let mut wake = now + RESYNC;
        if let Some(at) = self.retry.values().map(|(at, _)| *at).min() {
            wake = wake.min(at);
        }
        if let Ok(left) = Duration::try_from(self.deadline.duration_since(self.inner.clock.now()))
            && !left.is_zero()
        {
            wake = wake.min(now + left);
        }
        wake
    }

    async fn finish(&self) {
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
                    s.pods_left = 0;
                    s.waiting_for.clear();
                    s.blocked.clear();
                });
            }
            Err(message) => {
                self.inner.observer.drain_finished(
                    &self.group,
                    "cancelled",
                    self.started.elapsed(),
                );
                self.publish(DrainPhase::Cancelled, message);
            }
        }
    }

    fn is_own(&self, pod: &Pod) -> bool {
        self.options
            .own_pod
            .as_ref()
            .is_some_and(|(ns, name)| &pod.namespace == ns && &pod.name == name)
    }
}

fn key(pod: &Pod) -> Key {
    (pod.namespace.clone(), pod.name.clone())
}
