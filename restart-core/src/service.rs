//! The restart service: restarts, locks, rollout tracking and the status stream.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cluster_api::{
    CacheHealth, Clock, ClusterApi, Error, Event, EventType, Lease, SystemClock, Timestamp,
    UpdateStrategy, WatchEvent, Workload, WorkloadFilter, WorkloadKind, WorkloadRef, follow,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::allowlist::{Allowlist, Identity};
use crate::lock::{self, LastRestart, LockInfo, Outcome, Take, TakeRequest};
use crate::refresh::Refresh;
use crate::rollout::{Verdict, rollout};

/// The pod-template annotation `kubectl rollout restart` sets.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// The `reportingController` of our Events.
pub const CONTROLLER: &str = "restart-manager.io/restart";
/// The longest reason accepted.
pub const MAX_REASON_LEN: usize = 500;
/// How long a cache whose watch is failing still counts as ready (see
/// [`RestarterBuilder::cache_grace`]).
pub const DEFAULT_CACHE_GRACE: Duration = Duration::from_secs(30);
/// The health key of the lock watch.
const LOCKS: &str = "locks";

/// Settings of the restart service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartConfig {
    /// The namespace holding the lock Leases.
    pub namespace: String,
    /// How long a restart holds its lock before anyone may take it over
    /// (`FORCE_UNLOCK_SEC`).
    pub lock_duration: Duration,
    /// How often everything is looked at again besides watch events (`WATCH_INTERVAL`).
    pub resync: Duration,
    /// How many history entries are returned per workload.
    pub history_limit: usize,
}

impl Default for RestartConfig {
    fn default() -> Self {
        RestartConfig {
            namespace: "restart-manager".into(),
            lock_duration: Duration::from_secs(300),
            resync: Duration::from_secs(10),
            history_limit: 20,
        }
    }
}

/// Where an allowlisted workload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Nothing happening; never restarted through us.
    Idle,
    /// Restarted; the controller has not picked the change up yet.
    Restarting,
    /// Pods are being replaced.
    Progressing,
    /// The last restart rolled out.
    Complete,
    /// The rollout failed (progress deadline exceeded).
    Failed,
    /// The lock ran out before the rollout completed.
    TimedOut,
}

/// What the page, the API and the CLI show about one workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// `Deployment`, `StatefulSet` or `DaemonSet`.
    pub kind: WorkloadKind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// From the allowlist.
    pub description: Option<String>,
    /// Whether the workload exists in the cluster.
    pub exists: bool,
    /// Where it is.
    pub phase: Phase,
    /// `kubectl rollout status`'s sentence, or why the workload is missing.
    pub message: String,
    /// Replicas wanted.
    pub desired: i32,
    /// Replicas at the newest template.
    pub updated: i32,
    /// Replicas ready.
    pub ready: i32,
    /// Replicas available.
    pub available: i32,
    /// A paused Deployment (cannot be restarted).
    pub paused: bool,
    /// Who restarts it now.
    pub lock: Option<LockInfo>,
    /// The last restart through us.
    pub last_restart: Option<LastRestart>,
}

impl ServiceStatus {
    /// Which workload this is.
    pub fn workload(&self) -> WorkloadRef {
        WorkloadRef::new(self.kind, self.namespace.clone(), self.name.clone())
    }
}

/// One entry of a workload's restart history (its Events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// When.
    pub time: Option<Timestamp>,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: EventType,
    /// `Restarted`, `RestartRefused`, `RolloutComplete`, ...
    pub reason: String,
    /// Who and why.
    pub message: String,
    /// How many times it happened in a row (identical repeats are counted, not repeated);
    /// `time` is the last.
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// Why a restart, unlock or lookup was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestartError {
    /// Not in the allowlist.
    #[error("{0} is not in the allowlist")]
    NotAllowlisted(WorkloadRef),
    /// The caller may not restart it.
    #[error("{who} may not restart {workload}")]
    Forbidden {
        /// The caller.
        who: String,
        /// The workload.
        workload: WorkloadRef,
    },
    /// Allowlisted but not in the cluster.
    #[error("{0} does not exist in the cluster")]
    NotFound(WorkloadRef),
    /// Someone else is restarting it.
    #[error("{workload} is being restarted by {} since {}", .lock.holder, seconds(&.lock.since))]
    Locked {
        /// The workload.
        workload: WorkloadRef,
        /// Who holds it.
        lock: Box<LockInfo>,
    },
    /// A paused Deployment, which `kubectl rollout restart` refuses too.
    #[error("can't restart paused deployment {0} (run `kubectl rollout resume` first)")]
    Paused(WorkloadRef),
    /// A strategy under which a restart changes nothing by itself.
    #[error(
        "{0} uses the OnDelete update strategy: a restart would replace no pod until someone deletes them"
    )]
    OnDelete(WorkloadRef),
    /// The request itself is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The cluster failed.
    #[error("{0}")]
    Cluster(Error),
}

impl RestartError {
    /// A short, stable label for responses and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            RestartError::NotAllowlisted(_) => "not_allowlisted",
            RestartError::Forbidden { .. } => "forbidden",
            RestartError::NotFound(_) => "workload_not_found",
            RestartError::Locked { .. } => "locked",
            RestartError::Paused(_) => "paused",
            RestartError::OnDelete(_) => "unsupported_strategy",
            RestartError::Invalid(_) => "invalid_request",
            RestartError::Cluster(e) if e.is_transient() => "cluster_unavailable",
            RestartError::Cluster(_) => "cluster_error",
        }
    }

    /// The HTTP status that goes with it.
    pub fn status(&self) -> u16 {
        match self {
            RestartError::NotAllowlisted(_) | RestartError::NotFound(_) => 404,
            RestartError::Forbidden { .. } => 403,
            RestartError::Locked { .. } | RestartError::Paused(_) | RestartError::OnDelete(_) => {
                409
            }
            RestartError::Invalid(_) => 400,
            RestartError::Cluster(e) if e.is_transient() => 503,
            RestartError::Cluster(_) => 500,
        }
    }
}

/// Hooks for metrics; every method has a no-op default.
pub trait RestartObserver: Send + Sync + 'static {
    /// A restart was applied to the workload.
    fn restarted(&self, _workload: &WorkloadRef) {}
    /// A restart failed: it could not be applied, its rollout failed, or it timed out.
    fn restart_failed(&self, _workload: &WorkloadRef) {}
    /// A restart's rollout ended, after `took` since the restart.
    fn rollout_finished(&self, _workload: &WorkloadRef, _outcome: Outcome, _took: Duration) {}
}

/// A [`RestartObserver`] that records nothing.
#[derive(Debug, Default)]
pub struct NoopRestartObserver;

impl RestartObserver for NoopRestartObserver {}

/// Restarts allowlisted workloads and tracks their rollouts, for one replica.
///
/// Cheap to clone. [`run`](Restarter::run) keeps its caches current from watches and
/// releases locks when rollouts end; [`restart`](Restarter::restart) starts one.
#[derive(Clone)]
pub struct Restarter {
    inner: Arc<Inner>,
}

/// Builds a [`Restarter`].
pub struct RestarterBuilder {
    api: Arc<dyn ClusterApi>,
    allowlist: Allowlist,
    config: RestartConfig,
    clock: Arc<dyn Clock>,
    instance: String,
    observer: Arc<dyn RestartObserver>,
    leadership: Option<watch::Receiver<bool>>,
    cache_grace: Duration,
}

struct Inner {
    api: Arc<dyn ClusterApi>,
    clock: Arc<dyn Clock>,
    allowlist: Allowlist,
    config: RestartConfig,
    instance: String,
    observer: Arc<dyn RestartObserver>,
    /// Allowlisted workloads by the name of their lock Lease.
    by_lease: HashMap<String, WorkloadRef>,
    workloads: RwLock<HashMap<WorkloadRef, Workload>>,
    leases: RwLock<HashMap<WorkloadRef, Lease>>,
    views: RwLock<HashMap<WorkloadRef, ServiceStatus>>,
    updates: broadcast::Sender<ServiceStatus>,
    /// Allowlisted workloads to judge again, each at most once.
    refresh: Refresh,
    /// Set by the first [`Restarter::run`].
    running: AtomicBool,
    /// One per watch: the lock Leases, and each kind in each namespace of the allowlist
    /// (`Deployment/shop`); ordered, so readiness names the same problem first every time.
    health: BTreeMap<String, CacheHealth>,
    cache_grace: Duration,
    sequence: AtomicU64,
    leadership: Option<watch::Receiver<bool>>,
}

// === impl RestarterBuilder ===

impl RestarterBuilder {
    /// Settings (namespace, lock duration, resync).
    pub fn config(mut self, config: RestartConfig) -> Self {
        self.config = config;
        self
    }

    /// The wall clock (tests pass the simulated cluster).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// This replica's name, on Events.
    pub fn instance(mut self, name: impl Into<String>) -> Self {
        self.instance = name.into();
        self
    }

    /// Where to report restarts and rollouts.
    pub fn observer(mut self, observer: Arc<dyn RestartObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Judge rollouts and release finished restarts' locks only while this says `true`: with
    /// several replicas, only the elected leader does. Restarts and status are served
    /// regardless. Without it, this replica always does.
    pub fn leadership(mut self, leader: watch::Receiver<bool>) -> Self {
        self.leadership = Some(leader);
        self
    }

    /// How long a watch may fail before [`Restarter::is_ready`] says no
    /// ([`DEFAULT_CACHE_GRACE`] unless set).
    pub fn cache_grace(mut self, grace: Duration) -> Self {
        self.cache_grace = grace;
        self
    }

    /// The service.
    pub fn build(self) -> Restarter {
        let by_lease = self
            .allowlist
            .iter()
            .map(|a| (lock::lease_name(&a.workload), a.workload.clone()))
            .collect();
        let mut health = BTreeMap::new();
        health.insert(LOCKS.to_string(), CacheHealth::new("restart lock"));
        for (kind, namespace) in places(&self.allowlist) {
            health.insert(
                place_key(kind, &namespace),
                CacheHealth::new(format!("{} in {namespace}", kind.resource())),
            );
        }
        Restarter {
            inner: Arc::new(Inner {
                api: self.api,
                clock: self.clock,
                allowlist: self.allowlist,
                config: self.config,
                instance: self.instance,
                observer: self.observer,
                by_lease,
                workloads: RwLock::default(),
                leases: RwLock::default(),
                views: RwLock::default(),
                updates: broadcast::channel(1024).0,
                refresh: Refresh::default(),
                running: AtomicBool::new(false),
                health,
                cache_grace: self.cache_grace,
                sequence: AtomicU64::new(0),
                leadership: self.leadership,
            }),
        }
    }
}

// === impl Restarter ===

impl Restarter {
    /// Starts building the service over a cluster and an allowlist.
    pub fn builder(api: Arc<dyn ClusterApi>, allowlist: Allowlist) -> RestarterBuilder {
        RestarterBuilder {
            api,
            allowlist,
            config: RestartConfig::default(),
            clock: Arc::new(SystemClock),
            instance: "restart-manager".into(),
            observer: Arc::new(NoopRestartObserver),
            leadership: None,
            cache_grace: DEFAULT_CACHE_GRACE,
        }
    }

    /// The allowlist.
    pub fn allowlist(&self) -> &Allowlist {
        &self.inner.allowlist
    }

    /// The settings.
    pub fn config(&self) -> &RestartConfig {
        &self.inner.config
    }

    /// Keeps the caches current, judges rollouts and releases finished restarts' locks, until
    /// dropped. Run it once per `Restarter`.
    pub async fn run(&self) {
        if self.inner.running.swap(true, Ordering::AcqRel) {
            tracing::error!("Restarter::run called twice");
            return;
        }
        let inner = &self.inner;
        // One watch per kind and namespace of the allowlist: the server reads workloads
        // only where it may restart some, which is all a namespaced Role grants.
        let places = places(&inner.allowlist);
        let kinds = futures::future::join_all(
            places
                .iter()
                .map(|(kind, namespace)| inner.watch_kind(*kind, namespace)),
        );
        tokio::join!(
            kinds,
            inner.watch_locks(),
            inner.track_forever(),
            inner.resync_forever()
        );
    }

    /// Whether every watch has delivered its first full list and none has been failing for
    /// longer than the grace time.
    pub fn is_ready(&self) -> bool {
        self.readiness_problem().is_none()
    }

    /// Why [`is_ready`](Self::is_ready) says no, for a readiness probe.
    pub fn readiness_problem(&self) -> Option<String> {
        let grace = self.inner.cache_grace;
        self.inner.health.values().find_map(|h| h.problem(grace))
    }

    /// Waits until every watch has delivered its first full list.
    pub async fn wait_ready(&self) {
        for health in self.inner.health.values() {
            health.wait_synced().await;
        }
    }

    /// Every allowlisted workload's status, in allowlist order.
    pub fn statuses(&self) -> Vec<ServiceStatus> {
        self.inner
            .allowlist
            .iter()
            .map(|a| self.inner.view(&a.workload))
            .collect()
    }

    /// One workload's status.
    pub fn status(&self, workload: &WorkloadRef) -> Result<ServiceStatus, RestartError> {
        self.inner.allowed(workload)?;
        Ok(self.inner.view(workload))
    }

    /// Every status change from now on. A receiver that falls behind gets
    /// [`broadcast::error::RecvError::Lagged`] and should start over from
    /// [`statuses`](Self::statuses).
    pub fn subscribe(&self) -> broadcast::Receiver<ServiceStatus> {
        self.inner.updates.subscribe()
    }

    /// Restarts a workload exactly as `kubectl rollout restart` does, holding its lock until
    /// the rollout ends.
    pub async fn restart(
        &self,
        workload: &WorkloadRef,
        who: &Identity,
        reason: Option<&str>,
    ) -> Result<ServiceStatus, RestartError> {
        self.inner.restart(workload, who, reason).await
    }

    /// Breaks a workload's lock, whoever holds it. Returns the lock that was broken, if any.
    pub async fn force_unlock(
        &self,
        workload: &WorkloadRef,
        who: &Identity,
        reason: &str,
    ) -> Result<Option<LockInfo>, RestartError> {
        self.inner.force_unlock(workload, who, reason).await
    }

    /// A workload's recent restarts, refusals and rollouts, newest first.
    pub async fn history(&self, workload: &WorkloadRef) -> Result<Vec<HistoryEntry>, RestartError> {
        let inner = &self.inner;
        inner.allowed(workload)?;
        let events = inner
            .api
            .list_events(&workload.object_ref())
            .await
            .map_err(RestartError::Cluster)?;
        let mut entries: Vec<HistoryEntry> = events
            .into_iter()
            .filter(|e| e.reporting_controller == CONTROLLER)
            .map(|e| HistoryEntry {
                time: e.time,
                type_: e.type_,
                reason: e.reason,
                message: e.note,
                count: e.count,
            })
            .collect();
        entries.reverse();
        entries.truncate(inner.config.history_limit);
        Ok(entries)
    }

    /// Waits until the workload's current restart has ended (or none is running) and its
    /// rollout has settled, and returns its status then. `progress` sees every change on the
    /// way.
    ///
    /// The lock is released by whichever replica sees the rollout complete; this replica's
    /// workload cache may lag that by a moment, so a released lock alone does not end the
    /// wait while the rollout still looks in progress here.
    pub async fn wait(
        &self,
        workload: &WorkloadRef,
        mut progress: impl FnMut(&ServiceStatus),
    ) -> ServiceStatus {
        let mut updates = self.subscribe();
        loop {
            let status = self.inner.view(workload);
            progress(&status);
            if status.lock.is_none()
                && !matches!(status.phase, Phase::Restarting | Phase::Progressing)
            {
                return status;
            }
            match updates.recv().await {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return status,
            }
        }
    }
}

// === impl Inner: requests ===

impl Inner {
    fn allowed(&self, workload: &WorkloadRef) -> Result<&crate::allowlist::Allowed, RestartError> {
        self.allowlist
            .get(workload)
            .ok_or_else(|| RestartError::NotAllowlisted(workload.clone()))
    }

    async fn restart(
        &self,
        workload: &WorkloadRef,
        who: &Identity,
        reason: Option<&str>,
    ) -> Result<ServiceStatus, RestartError> {
        let entry = self.allowed(workload)?;
        let reason = clean_reason(reason)?;
        let because = reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        if !entry.allowed.is_empty() && !who.is_any_of(&entry.allowed) {
            self.refused(
                workload,
                format!(
                    "restart by {who} refused: not among those allowed ({})",
                    entry.allowed.join(", ")
                ),
            )
            .await;
            return Err(RestartError::Forbidden {
                who: who.user.clone(),
                workload: workload.clone(),
            });
        }
        let current = match self.api.get_workload(workload).await {
            Ok(w) => w,
            Err(Error::NotFound { .. }) => return Err(RestartError::NotFound(workload.clone())),
            Err(e) => return Err(RestartError::Cluster(e)),
        };
        if current.paused {
            self.refused(
                workload,
                format!("restart by {who} refused: the deployment is paused"),
            )
            .await;
            return Err(RestartError::Paused(workload.clone()));
        }
        if current.strategy == UpdateStrategy::OnDelete {
            return Err(RestartError::OnDelete(workload.clone()));
        }

        let now = self.clock.now();
        let restarted_at = rfc3339(now);
        let restart_id = format!(
            "{}-{}-{}",
            self.instance,
            now.as_millisecond(),
            self.sequence.fetch_add(1, Ordering::Relaxed)
        );
        let request = TakeRequest {
            namespace: &self.config.namespace,
            workload,
            holder: &who.user,
            reason: reason.as_deref(),
            restart_id: &restart_id,
            restarted_at: &restarted_at,
            duration: self.config.lock_duration,
            now,
        };
        let (lock, lease) = match lock::take(self.api.as_ref(), &request)
            .await
            .map_err(RestartError::Cluster)?
        {
            Take::Held(lock, lease) => {
                // What was just read is at least as new as the cache: a caller that waits
                // for this restart next must see it held.
                self.store_lease(workload, *lease);
                self.refused(
                    workload,
                    format!(
                        "restart by {who} refused: {} is restarting it since {}",
                        lock.holder,
                        seconds(&lock.since)
                    ),
                )
                .await;
                return Err(RestartError::Locked {
                    workload: workload.clone(),
                    lock: Box::new(lock),
                });
            }
            Take::Unsure(e) => {
                // The write may have landed; leave no lock behind that nobody will use.
                let _ = lock::release(
                    self.api.as_ref(),
                    &self.config.namespace,
                    workload,
                    Some(&restart_id),
                    Outcome::Aborted,
                    self.clock.now(),
                )
                .await;
                return Err(RestartError::Cluster(e));
            }
            Take::Taken {
                lock,
                lease,
                took_over,
            } => {
                let lease = *lease;
                if let Some(old) = took_over {
                    self.event(
                        workload,
                        EventType::Warning,
                        "RestartLockTakenOver",
                        format!(
                            "{who} took over the restart lock of {} (held since {}, expired)",
                            old.holder,
                            seconds(&old.since)
                        ),
                    )
                    .await;
                }
                (lock, lease)
            }
        };
        self.store_lease(workload, lease);

        let patch = [(RESTARTED_AT.to_string(), Some(restarted_at.clone()))]
            .into_iter()
            .collect();
        match self.api.patch_template_annotations(workload, &patch).await {
            Ok(patched) => self.store_workload(patched),
            Err(e) => {
                tracing::warn!(%workload, error = %e, "restart could not be applied; releasing its lock");
                self.observer.restart_failed(workload);
                self.finish(
                    workload,
                    &lock,
                    Outcome::Aborted,
                    format!("restart by {who} could not be applied: {e}"),
                )
                .await;
                return Err(RestartError::Cluster(e));
            }
        }
        self.observer.restarted(workload);
        tracing::info!(%workload, by = %who, reason = reason.as_deref().unwrap_or(""), "workload restarted");
        self.event(
            workload,
            EventType::Normal,
            "Restarted",
            format!("restarted by {who}{because}"),
        )
        .await;
        self.judge_again(workload);
        Ok(self.view(workload))
    }

    async fn force_unlock(
        &self,
        workload: &WorkloadRef,
        who: &Identity,
        reason: &str,
    ) -> Result<Option<LockInfo>, RestartError> {
        self.allowed(workload)?;
        let reason = clean_reason(Some(reason))?
            .ok_or_else(|| RestartError::Invalid("a forced unlock needs a reason".into()))?;
        let released = lock::release(
            self.api.as_ref(),
            &self.config.namespace,
            workload,
            None,
            Outcome::Unlocked,
            self.clock.now(),
        )
        .await
        .map_err(RestartError::Cluster)?;
        let Some((old, lease)) = released else {
            return Ok(None);
        };
        self.store_lease(workload, lease);
        tracing::warn!(%workload, by = %who, holder = %old.holder, %reason, "restart lock force-released");
        self.event(
            workload,
            EventType::Warning,
            "RestartLockForceReleased",
            format!(
                "{who} broke the restart lock held by {} since {}: {reason}",
                old.holder,
                seconds(&old.since)
            ),
        )
        .await;
        self.judge_again(workload);
        Ok(Some(old))
    }

    async fn refused(&self, workload: &WorkloadRef, note: String) {
        tracing::info!(%workload, "{note}");
        self.event(workload, EventType::Warning, "RestartRefused", note)
            .await;
    }

    async fn event(&self, workload: &WorkloadRef, type_: EventType, reason: &str, note: String) {
        let uid = self
            .workloads
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(workload)
            .map(|w| w.uid.clone())
            .unwrap_or_default();
        let event = Event {
            regarding: workload.object_ref().with_uid(uid),
            type_,
            reason: reason.into(),
            action: "Restart".into(),
            note,
            reporting_controller: CONTROLLER.into(),
            reporting_instance: self.instance.clone(),
            time: Some(self.clock.now()),
            count: 1,
        };
        if let Err(e) = self.api.record_event(&event).await {
            tracing::warn!(%workload, reason, error = %e, "could not record event");
        }
    }

    /// Releases a restart's lock with its outcome, if it still holds it; reports it once.
    async fn finish(
        &self,
        workload: &WorkloadRef,
        lock: &LockInfo,
        outcome: Outcome,
        note: String,
    ) {
        let now = self.clock.now();
        match lock::release(
            self.api.as_ref(),
            &self.config.namespace,
            workload,
            Some(&lock.restart_id),
            outcome,
            now,
        )
        .await
        {
            Ok(Some((_, lease))) => {
                self.store_lease(workload, lease);
                let took = Duration::try_from(now.duration_since(lock.since)).unwrap_or_default();
                self.observer.rollout_finished(workload, outcome, took);
                if matches!(outcome, Outcome::Failed | Outcome::TimedOut) {
                    self.observer.restart_failed(workload);
                }
                let (type_, reason) = match outcome {
                    Outcome::Complete => (EventType::Normal, "RolloutComplete"),
                    Outcome::Failed => (EventType::Warning, "RolloutFailed"),
                    Outcome::TimedOut => (EventType::Warning, "RestartTimedOut"),
                    Outcome::Unlocked | Outcome::Aborted => (EventType::Warning, "RestartAborted"),
                };
                tracing::info!(%workload, outcome = outcome.as_str(), seconds = took.as_secs(), "restart ended");
                self.event(workload, type_, reason, note).await;
            }
            // Another replica got there first, or the lock was broken.
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%workload, error = %e, "could not release the restart lock; will retry")
            }
        }
    }
}

/// Each kind and namespace the allowlist names, once.
fn places(allowlist: &Allowlist) -> BTreeSet<(WorkloadKind, String)> {
    allowlist
        .iter()
        .map(|a| (a.workload.kind, a.workload.namespace.clone()))
        .collect()
}

/// The health key of one kind's watch in one namespace.
fn place_key(kind: WorkloadKind, namespace: &str) -> String {
    format!("{}/{namespace}", kind.as_str())
}

fn clean_reason(reason: Option<&str>) -> Result<Option<String>, RestartError> {
    let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if reason.chars().count() > MAX_REASON_LEN {
        return Err(RestartError::Invalid(format!(
            "the reason is longer than {MAX_REASON_LEN} characters"
        )));
    }
    if let Some(c) = reason
        .chars()
        .find(|c| c.is_control() || is_bidi_control(*c))
    {
        return Err(RestartError::Invalid(format!(
            "the reason contains the control character U+{:04X}; write it on one line, \
             without control or text-direction characters",
            u32::from(c)
        )));
    }
    Ok(Some(reason.to_string()))
}

/// The characters that change the direction text is shown in (the Unicode bidirectional
/// controls): in an Event or a log line they can make a line read differently from what it
/// says.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// RFC 3339 in UTC with second precision, as kubectl writes `restartedAt`.
fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A time for people: to the second.
fn seconds(t: &Timestamp) -> String {
    rfc3339(*t)
}

// === impl Inner: caches, tracking ===

impl Inner {
    fn store_workload(&self, w: Workload) {
        let r = w.reference();
        if self.allowlist.get(&r).is_none() {
            return;
        }
        let mut workloads = self.workloads.write().unwrap_or_else(|e| e.into_inner());
        let newer = workloads.get(&r).is_none_or(|old| {
            !cluster_api::is_older_version(&w.resource_version, &old.resource_version)
        });
        if newer {
            workloads.insert(r.clone(), w);
            drop(workloads);
            self.judge_again(&r);
        }
    }

    fn store_lease(&self, r: &WorkloadRef, lease: Lease) {
        let mut leases = self.leases.write().unwrap_or_else(|e| e.into_inner());
        let newer = leases.get(r).is_none_or(|old| {
            !cluster_api::is_older_version(&lease.resource_version, &old.resource_version)
        });
        if newer {
            leases.insert(r.clone(), lease);
            drop(leases);
            self.judge_again(r);
        }
    }

    fn health(&self, what: &str) -> Option<&CacheHealth> {
        self.health.get(what)
    }

    fn all_healthy(&self) -> bool {
        self.health.values().all(CacheHealth::is_healthy)
    }

    async fn watch_kind(&self, kind: WorkloadKind, namespace: &str) {
        let filter = WorkloadFilter {
            namespace: Some(namespace.to_string()),
            ..WorkloadFilter::kind(kind)
        };
        let key = place_key(kind, namespace);
        follow(
            kind.resource(),
            || self.api.watch_workloads(&filter),
            |event| match event {
                Ok(WatchEvent::Restarted(all)) => {
                    // A fresh list is the whole truth: what it lacks was deleted meanwhile.
                    let listed: HashSet<WorkloadRef> =
                        all.iter().map(Workload::reference).collect();
                    let gone: Vec<WorkloadRef> = {
                        let mut workloads =
                            self.workloads.write().unwrap_or_else(|e| e.into_inner());
                        let gone: Vec<WorkloadRef> = workloads
                            .keys()
                            .filter(|r| {
                                r.kind == kind && r.namespace == namespace && !listed.contains(*r)
                            })
                            .cloned()
                            .collect();
                        for r in &gone {
                            workloads.remove(r);
                        }
                        gone
                    };
                    for r in gone {
                        self.judge_again(&r);
                    }
                    for w in all {
                        self.store_workload(w);
                    }
                    if let Some(h) = self.health(&key) {
                        h.restarted();
                    }
                }
                Ok(WatchEvent::Applied(w)) => self.store_workload(w),
                Ok(WatchEvent::Deleted(w)) => {
                    let r = w.reference();
                    self.workloads
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&r);
                    self.judge_again(&r);
                }
                Err(e) => {
                    if let Some(h) = self.health(&key) {
                        h.failed(e);
                    }
                }
            },
        )
        .await;
    }

    async fn watch_locks(&self) {
        let selector = lock::lease_selector();
        let open = || self.api.watch_leases(&self.config.namespace, &selector);
        follow("restart lock", open, |event| match event {
            Ok(WatchEvent::Restarted(all)) => {
                let listed: HashSet<&str> = all.iter().map(|l| l.name.as_str()).collect();
                let gone: Vec<WorkloadRef> = {
                    let mut leases = self.leases.write().unwrap_or_else(|e| e.into_inner());
                    let gone: Vec<WorkloadRef> = self
                        .by_lease
                        .iter()
                        .filter(|(name, r)| {
                            !listed.contains(name.as_str()) && leases.contains_key(*r)
                        })
                        .map(|(_, r)| r.clone())
                        .collect();
                    for r in &gone {
                        leases.remove(r);
                    }
                    gone
                };
                for r in gone {
                    self.judge_again(&r);
                }
                for lease in all {
                    if let Some(r) = self.by_lease.get(&lease.name).cloned() {
                        self.store_lease(&r, lease);
                    }
                }
                if let Some(h) = self.health(LOCKS) {
                    h.restarted();
                }
            }
            Ok(WatchEvent::Applied(lease)) => {
                if let Some(r) = self.by_lease.get(&lease.name).cloned() {
                    self.store_lease(&r, lease);
                }
            }
            Ok(WatchEvent::Deleted(lease)) => {
                if let Some(r) = self.by_lease.get(&lease.name).cloned() {
                    self.leases
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&r);
                    self.judge_again(&r);
                }
            }
            Err(e) => {
                if let Some(h) = self.health(LOCKS) {
                    h.failed(e);
                }
            }
        })
        .await;
    }

    /// Every `resync`: look at everything again (lock expiry needs time, not events), and if a
    /// watch is down, read the workloads directly.
    async fn resync_forever(&self) {
        let mut leadership = self.leadership.clone();
        loop {
            let became_leader = async {
                match leadership.as_mut() {
                    Some(l) => {
                        let _ = l.changed().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = tokio::time::sleep(self.config.resync) => {}
                () = became_leader => {}
            }
            if !self.all_healthy() {
                for a in self.allowlist.iter() {
                    match self.api.get_workload(&a.workload).await {
                        Ok(w) => self.store_workload(w),
                        Err(Error::NotFound { .. }) => {
                            self.workloads
                                .write()
                                .unwrap_or_else(|e| e.into_inner())
                                .remove(&a.workload);
                        }
                        Err(e) => {
                            tracing::debug!(workload = %a.workload, error = %e, "resync read failed")
                        }
                    }
                }
            }
            for a in self.allowlist.iter() {
                self.judge_again(&a.workload);
            }
        }
    }

    /// Judges rollouts one workload at a time, so that no two decisions about one workload
    /// race on this replica.
    async fn track_forever(&self) {
        loop {
            let r = self.refresh.next().await;
            if self.leadership.as_ref().is_none_or(|l| *l.borrow()) {
                self.track(&r).await;
            }
            self.publish(&r);
        }
    }

    /// Asks for `r` to be judged again, if it is allowlisted (nothing else is ever judged).
    fn judge_again(&self, r: &WorkloadRef) {
        if self.allowlist.get(r).is_some() {
            self.refresh.push(r);
        }
    }

    async fn track(&self, r: &WorkloadRef) {
        let Some(lease) = self
            .leases
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(r)
            .cloned()
        else {
            return;
        };
        let Some(lock) = lock::lock_of(&lease) else {
            return;
        };
        let workload = self
            .workloads
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(r)
            .cloned();
        let now = self.clock.now();
        let expired = !lease.is_held_at(now);
        // Judge only the rollout this restart caused: the template must carry its timestamp.
        let ours = workload.as_ref().filter(|w| {
            lock.restarted_at.is_some()
                && w.template_annotations.get(RESTARTED_AT) == lock.restarted_at.as_ref()
        });
        let judged = ours.map(rollout);
        let message = judged
            .as_ref()
            .map_or("the change was never observed", |r| r.message.as_str());
        let (outcome, note) = match (judged.as_ref().map(|r| r.verdict), expired) {
            (Some(Verdict::Complete), _) => (
                Outcome::Complete,
                format!("restart by {} rolled out: {message}", lock.holder),
            ),
            (Some(Verdict::Failed), _) => (
                Outcome::Failed,
                format!("restart by {} failed: {message}", lock.holder),
            ),
            (_, true) => (
                Outcome::TimedOut,
                format!(
                    "restart by {} did not finish within {}s: {message}",
                    lock.holder,
                    self.config.lock_duration.as_secs()
                ),
            ),
            _ => return,
        };
        self.finish(r, &lock, outcome, note).await;
    }

    /// Broadcasts the workload's status if it changed.
    fn publish(&self, r: &WorkloadRef) {
        if self.allowlist.get(r).is_none() {
            return;
        }
        let view = self.view(r);
        let mut views = self.views.write().unwrap_or_else(|e| e.into_inner());
        if views.get(r) != Some(&view) {
            views.insert(r.clone(), view.clone());
            drop(views);
            let _ = self.updates.send(view);
        }
    }

    fn view(&self, r: &WorkloadRef) -> ServiceStatus {
        let now = self.clock.now();
        let description = self.allowlist.get(r).and_then(|a| a.description.clone());
        let lease = self
            .leases
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(r)
            .cloned();
        let lock = lease
            .as_ref()
            .filter(|l| l.is_held_at(now))
            .and_then(lock::lock_of);
        let last_restart = lease.as_ref().and_then(lock::last_restart_of);
        let workload = self
            .workloads
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(r)
            .cloned();
        let Some(w) = workload else {
            return ServiceStatus {
                kind: r.kind,
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                description,
                exists: false,
                phase: Phase::Idle,
                message: format!(
                    "{} {}/{} was not found in the cluster",
                    r.kind, r.namespace, r.name
                ),
                desired: 0,
                updated: 0,
                ready: 0,
                available: 0,
                paused: false,
                lock,
                last_restart,
            };
        };
        let ro = rollout(&w);
        let phase = match (&lock, last_restart.as_ref().and_then(|l| l.outcome)) {
            (Some(l), _) => {
                let applied = l.restarted_at.is_some()
                    && w.template_annotations.get(RESTARTED_AT) == l.restarted_at.as_ref();
                let observed = w.status.observed_generation.unwrap_or(0) >= w.generation;
                match ro.verdict {
                    _ if !applied || !observed => Phase::Restarting,
                    Verdict::Progressing => Phase::Progressing,
                    Verdict::Complete => Phase::Complete,
                    Verdict::Failed => Phase::Failed,
                }
            }
            (None, outcome) => match (ro.verdict, outcome) {
                (Verdict::Failed, _) => Phase::Failed,
                (_, Some(Outcome::TimedOut)) => Phase::TimedOut,
                (_, Some(Outcome::Failed)) if ro.verdict != Verdict::Complete => Phase::Failed,
                (Verdict::Progressing, _) => Phase::Progressing,
                (Verdict::Complete, Some(Outcome::Complete)) => Phase::Complete,
                (Verdict::Complete, _) => Phase::Idle,
            },
        };
        ServiceStatus {
            kind: r.kind,
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            description,
            exists: true,
            phase,
            message: ro.message,
            desired: ro.desired,
            updated: ro.updated,
            ready: ro.ready,
            available: ro.available,
            paused: w.paused,
            lock,
            last_restart,
        }
    }
}
