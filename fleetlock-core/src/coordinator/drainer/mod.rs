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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cluster_api::{
    Error, EventType, EvictOptions, Pod, PodFilter, Timestamp, WatchEvent, WatchStream, whole_lists,
};
use futures::StreamExt;
use jiff::SignedDuration;
use tokio::sync::watch;
use tokio::time::Instant;

use super::Inner;
use super::cache::GrantNow;
use super::policy::humanize;

mod evictions;
mod progress;

use super::writes::Cordon;
use crate::config::OnDrainTimeout;
use crate::drain::{DrainOptions, DrainPhase, DrainPlan, DrainStatus, SkipReason, plan_drain_at};
use crate::group::{Holder, HolderPhase};
use crate::notices::RebootTransition;
use evictions::{Waiting, key};
use progress::skipped;

/// How often a running drain looks again even when nothing was heard.
const RESYNC: Duration = Duration::from_secs(30);

type Key = (String, String);

/// What a drain step decided.
enum Step {
    /// Wait for the next change or retry.
    Wait,
    /// The node is empty.
    Done,
    /// The drain is over without approval (the slot was given back, or it timed out).
    Stop,
    /// The grant is no longer draining, as the cluster says: stop, and tidy accordingly.
    Left(GrantNow),
}

/// The state of one running drain.
pub(super) struct Drainer {
    inner: Arc<Inner>,
    group: String,
    holder: Holder,
    status: watch::Sender<DrainStatus>,
    /// Set when this replica's lock cache shows the grant no longer draining.
    stop: watch::Receiver<bool>,
    options: DrainOptions,
    evict_options: EvictOptions,
    /// When the drain overruns `drain.timeout`, counted from the grant.
    deadline: Timestamp,
    started: Instant,
    /// The node's pods, as the watch reports them; meaningful once `listed`.
    pods: BTreeMap<Key, Pod>,
    listed: bool,
    /// Whether `pods` is the node as it is: false from a failure of the pod watch until it
    /// has listed the pods again. A pod gone meanwhile may be back elsewhere under the same
    /// name (a StatefulSet's), and an eviction goes by name.
    current: bool,
    /// The uids of the pods this drain must see leave.
    targets: HashSet<String>,
    /// Whether this drain wrote the cordon (rather than finding it).
    cordoned_here: bool,
    /// Per pod: when to try its eviction again, and the backoff that led there.
    retry: HashMap<Key, (Instant, Duration)>,
    /// Per pod: why its last eviction was refused.
    blocked: BTreeMap<Key, Waiting>,
    refusal_reported: Option<String>,
    overdue_reported: bool,
    /// The shortest time left before a pod a drain rule waits for is evicted anyway.
    wait_left: Option<Duration>,
}

impl Drainer {
    pub(super) fn new(
        inner: Arc<Inner>,
        group: String,
        holder: Holder,
        status: watch::Sender<DrainStatus>,
        stop: watch::Receiver<bool>,
    ) -> Self {
        let drain = &inner.config.drain;
        let timeout = SignedDuration::try_from(drain.timeout).unwrap_or(SignedDuration::MAX);
        Drainer {
            options: inner.drain_options(),
            evict_options: EvictOptions {
                grace_period_seconds: drain.grace_period_seconds,
                uid: None,
            },
            deadline: holder.since.checked_add(timeout).unwrap_or(holder.since),
            started: Instant::now(),
            pods: BTreeMap::new(),
            listed: false,
            current: false,
            targets: HashSet::new(),
            cordoned_here: false,
            retry: HashMap::new(),
            blocked: BTreeMap::new(),
            refusal_reported: None,
            overdue_reported: false,
            wait_left: None,
            inner,
            group,
            holder,
            status,
            stop,
        }
    }

    fn node(&self) -> &str {
        &self.holder.node
    }

    /// A phase and a sentence that carries no API error text, for people and the node alike.
    fn publish(&self, phase: DrainPhase, message: String) {
        self.publish_apart(phase, message.clone(), message);
    }

    /// A phase, the sentence for people, and the one the node is told ([`DrainStatus::summary`]).
    fn publish_apart(&self, phase: DrainPhase, message: String, summary: String) {
        self.status.send_modify(|s| {
            s.phase = phase;
            s.message = message;
            s.summary = summary;
        });
    }

    /// Cordons, evicts and waits until the pods it must move are gone, then approves.
    pub(super) async fn run(mut self) {
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

    /// Cordons the node (retrying, under the timeout policy), and says the drain has begun.
    /// `Wait` to go on; `Stop` if the node is gone or the drain timed out; `Left` if the grant
    /// stopped draining while it cordoned.
    async fn cordon(&mut self) -> Step {
        let drain = &self.inner.config.drain;
        let mut retry = drain.retry_initial;
        loop {
            match self
                .inner
                .cordon(self.node(), &self.group, &self.holder)
                .await
            {
                Ok(Cordon::Wrote) => {
                    self.cordoned_here = true;
                    break;
                }
                Ok(Cordon::Found) => break,
                // Started from a cache that lagged: the grant has moved on (given back,
                // approved, recovering after its steady-state uncordoned the node, or
                // replaced by a later one).
                Ok(Cordon::MovedOn(now)) => return Step::Left(now),
                Err(Error::NotFound { .. }) => {
                    self.publish(
                        DrainPhase::Cancelled,
                        format!("node {} no longer exists", self.node()),
                    );
                    return Step::Stop;
                }
                Err(e) => {
                    self.publish_apart(
                        DrainPhase::Running,
                        format!("draining {}: cannot cordon yet: {e}", self.node()),
                        format!("cannot cordon {} yet; ask again", self.node()),
                    );
                    if self.is_overdue() && !self.on_overdue().await {
                        return Step::Stop;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(retry) => {}
                        () = self.inner.shutdown.cancelled() => return Step::Stop,
                    }
                    retry = (retry * 2).min(self.inner.config.drain.retry_max);
                }
            }
        }
        // A release or a steady-state that raced the cordon: whoever released, or answered
        // the steady-state, may have uncordoned before our cordon landed, so it is ours to
        // undo.
        if self.cordoned_here {
            match self.inner.grant_now(&self.group, &self.holder).await {
                Ok(GrantNow::Held(HolderPhase::Recovering)) => {
                    tracing::info!(node = %self.node(), "the node is recovering; undoing a late cordon");
                    // On failure (logged) the recovery's next look undoes it.
                    let _ = self.inner.finish_node(self.node(), "recovering", &[]).await;
                    return Step::Left(GrantNow::Held(HolderPhase::Recovering));
                }
                Ok(GrantNow::Held(HolderPhase::Draining)) | Err(_) => {}
                Ok(now) => return Step::Left(now),
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
        Step::Wait
    }

    async fn watch(&self) -> Option<WatchStream<Pod>> {
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
    async fn still_empty(&mut self) -> bool {
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
    async fn stalled(&mut self) -> Step {
        if self.is_overdue() && !self.on_overdue().await {
            return Step::Stop;
        }
        Step::Wait
    }

    /// Undoes the cordon this drain wrote if the node holds no slot any more (`now`, or asked
    /// afresh): whoever released may have uncordoned before our cordon landed. A later grant
    /// of the node needs the cordon; a held one is tidied by its recovery.
    async fn undo_our_cordon(&self, now: Option<GrantNow>) {
        if !self.cordoned_here {
            return;
        }
        let now = match now {
            Some(now) => Some(now),
            None => self.inner.grant_now(&self.group, &self.holder).await.ok(),
        };
        if now == Some(GrantNow::Released) {
            // On failure (logged) the node's next steady-state tidies it.
            let _ = self
                .inner
                .finish_node(self.node(), "ready", std::slice::from_ref(&self.holder))
                .await;
        }
    }

    /// The grant is no longer draining (`now`; `None` when the cluster could not say): stop,
    /// telling a waiting request what became of it, and undo our cordon if the slot is gone.
    async fn leave(&self, now: Option<GrantNow>) {
        let node = self.node();
        let (phase, message) = match now {
            Some(GrantNow::Held(HolderPhase::Approved)) => (
                DrainPhase::Done,
                format!("{node} is drained; reboot approved"),
            ),
            Some(GrantNow::Held(HolderPhase::Recovering)) => (
                DrainPhase::Cancelled,
                format!("{node} is already back from its reboot"),
            ),
            Some(GrantNow::Replaced) => (
                DrainPhase::Cancelled,
                format!("the reboot slot of {node} was given back and granted again; ask again"),
            ),
            Some(GrantNow::Released | GrantNow::Held(HolderPhase::Draining)) | None => (
                DrainPhase::Cancelled,
                format!("the reboot slot of {node} was given back while draining; ask again"),
            ),
        };
        let grant = match now {
            Some(GrantNow::Held(phase)) => phase.as_str(),
            Some(GrantNow::Released) => "released",
            Some(GrantNow::Replaced) => "granted again",
            None => "unknown",
        };
        tracing::info!(node, group = %self.group, grant, "the grant is no longer draining; drain stopped");
        self.undo_our_cordon(now).await;
        self.inner.forget_drain(&self.holder);
        // The replica that approved counts the drain as completed.
        if phase != DrainPhase::Done {
            self.inner
                .observer
                .drain_finished(&self.group, "cancelled", self.started.elapsed());
        }
        self.publish(phase, message);
    }

    fn apply(&mut self, event: WatchEvent<Pod>) {
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

    fn is_overdue(&self) -> bool {
        self.inner.clock.now() >= self.deadline
    }

    /// Looks at the node's pods and does what is due.
    async fn step(&mut self) -> Step {
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
    fn plan(&self) -> DrainPlan {
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

    /// The drain is past its timeout: apply the policy. False if the drain ends here.
    async fn on_overdue(&mut self) -> bool {
        let took = humanize(self.inner.config.drain.timeout);
        match self.inner.config.drain.on_timeout {
            OnDrainTimeout::Release => {
                // Only out of draining, in the compare-and-swap that gives the slot back: a
                // grant that has moved on (approved by another replica, its node perhaps
                // rebooting; given back; granted again) is not this drain's to time out, and
                // when the cluster cannot say, nothing is given back: the next look tries again.
                let released = match self.inner.time_out(&self.group, &self.holder).await {
                    Ok(Ok(released)) => released,
                    Ok(Err(now)) => {
                        self.leave(Some(now)).await;
                        return false;
                    }
                    Err(e) => {
                        tracing::warn!(node = %self.node(), group = %self.group, error = %e, "drain timed out, but its slot could not be given back yet");
                        return true;
                    }
                };
                // Detach before anything awaits, so the tidying does not abort this task.
                self.inner.forget_drain(&self.holder);
                let message = format!(
                    "drain of {} did not finish within {took}; slot given back",
                    self.node()
                );
                tracing::warn!(node = %self.node(), group = %self.group, "{message}");
                // This replica's write made the transition: no claim needed.
                self.inner.announce(
                    RebootTransition::Overdue,
                    self.node(),
                    &self.group,
                    &message,
                );
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
                if let Err(e) = self
                    .inner
                    .after_release(&self.group, &released, &[], "drain timed out", false, false)
                    .await
                {
                    tracing::warn!(error = %e, "could not tidy the node after a drain timeout");
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
                    self.warn(RebootTransition::Overdue, "DrainOverdue", "Drain", message)
                        .await;
                    self.overdue_reported = true;
                }
                true
            }
        }
    }

    /// The next pod change wakes the drain too; this is when to look anyway: the next retry,
    /// the deadline, or a periodic resync (soon, while the pod watch is down).
    fn wake_at(&self, watching: bool) -> Instant {
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

    fn is_own(&self, pod: &Pod) -> bool {
        self.options
            .own_pod
            .as_ref()
            .is_some_and(|(ns, name)| &pod.namespace == ns && &pod.name == name)
    }
}
