//! What one running drain knows: its grant, its view of the node's pods, and what it has
//! tried and reported.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cluster_api::{EvictOptions, Pod, Timestamp};
use jiff::SignedDuration;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::coordinator::Inner;
use crate::coordinator::grants::GrantNow;
use crate::drain::{DrainOptions, DrainPhase, DrainStatus};
use crate::group::Holder;

pub(super) type Key = (String, String);

pub(super) fn key(pod: &Pod) -> Key {
    (pod.namespace.clone(), pod.name.clone())
}

/// What a drain step decided.
pub(super) enum Step {
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
    pub(super) inner: Arc<Inner>,
    pub(super) group: String,
    pub(super) holder: Holder,
    pub(super) status: watch::Sender<DrainStatus>,
    /// Set when this replica's lock cache shows the grant no longer draining.
    pub(super) stop: watch::Receiver<bool>,
    pub(super) options: DrainOptions,
    pub(super) evict_options: EvictOptions,
    /// When the drain overruns `drain.timeout`, counted from the grant.
    pub(super) deadline: Timestamp,
    pub(super) started: Instant,
    /// The node's pods, as the watch reports them; meaningful once `listed`.
    pub(super) pods: BTreeMap<Key, Pod>,
    pub(super) listed: bool,
    /// Whether `pods` is the node as it is: false from a failure of the pod watch until it
    /// has listed the pods again. A pod gone meanwhile may be back elsewhere under the same
    /// name (a StatefulSet's), and an eviction goes by name.
    pub(super) current: bool,
    /// The uids of the pods this drain must see leave.
    pub(super) targets: HashSet<String>,
    /// Whether this drain wrote the cordon (rather than finding it).
    pub(super) cordoned_here: bool,
    /// Per pod: when to try its eviction again, and the backoff that led there.
    pub(super) retry: HashMap<Key, (Instant, Duration)>,
    /// Per pod: why its last eviction was refused.
    pub(super) blocked: BTreeMap<Key, Waiting>,
    pub(super) refusal_reported: Option<String>,
    pub(super) overdue_reported: bool,
    /// The shortest time left before a pod a drain rule waits for is evicted anyway.
    pub(super) wait_left: Option<Duration>,
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

    pub(super) fn node(&self) -> &str {
        &self.holder.node
    }

    /// A phase and a sentence that carries no API error text, for people and the node alike.
    pub(super) fn publish(&self, phase: DrainPhase, message: String) {
        self.publish_apart(phase, message.clone(), message);
    }

    /// A phase, the sentence for people, and the one the node is told ([`DrainStatus::summary`]).
    pub(super) fn publish_apart(&self, phase: DrainPhase, message: String, summary: String) {
        self.status.send_modify(|s| {
            s.phase = phase;
            s.message = message;
            s.summary = summary;
        });
    }

    pub(super) fn is_overdue(&self) -> bool {
        self.inner.clock.now() >= self.deadline
    }

    pub(super) fn is_own(&self, pod: &Pod) -> bool {
        self.options
            .own_pod
            .as_ref()
            .is_some_and(|(ns, name)| &pod.namespace == ns && &pod.name == name)
    }
}
