//! The restart service: restarts, locks, rollout tracking and the status stream.
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | [`Restarter`], its builder and settings, the shared state |
//! | `requests.rs` | restart and force-unlock, and the Events that record them |
//! | `caches.rs` | the watches, the resync, judging rollouts, publishing statuses |
//! | `signing.rs` | the Lease holding the key our Events are marked with |

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cluster_api::{
    CacheHealth, Clock, ClusterApi, CoreBuilder, CoreOptions, Lease, Recorder, Store, WorkloadRef,
};
use parking_lot::RwLock;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::allowlist::{Allowlist, Identity};
use crate::error::RestartError;
use crate::lock::{self, LockInfo, Outcome};
use crate::refresh::Refresh;
use crate::sets::{RestartSet, SetStatus};
use crate::status::{HistoryEntry, Phase, ServiceStatus};

mod caches;
mod config_trigger;
mod dry_run;
mod requests;
mod schedules;
mod sets;
mod signing;

use caches::Place;
pub use config_trigger::CONFIG_CHANGE_USER;
pub use dry_run::{GoverningBudget, PlanRefusal, PodToReplace, RestartPlan};
pub(crate) use requests::seconds;
use requests::{Ask, Windows};
pub use schedules::SCHEDULE_USER;
pub use signing::{KEY_ENTRY, KEY_SECRET, LEGACY_KEY_ANNOTATION};

/// The pod-template annotation `kubectl rollout restart` sets.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// The `reportingController` of our Events.
pub const CONTROLLER: &str = "restart-manager.io/restart";
/// The longest reason accepted.
pub const MAX_REASON_LEN: usize = 500;
/// How long a cache whose watch is failing still counts as ready (see
/// [`CoreBuilder::cache_grace`]).
pub use cluster_api::DEFAULT_CACHE_GRACE;

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

/// Resolves when this replica's leadership changes; never without an election (or once its
/// sender is gone): a loop that acts only while leading wakes at once when it starts to.
async fn leadership_changed(leadership: &mut Option<watch::Receiver<bool>>) {
    let changed = match leadership.as_mut() {
        Some(l) => l.changed().await.is_ok(),
        None => false,
    };
    if !changed {
        std::future::pending::<()>().await;
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
    /// A restart transition, announced once across replicas ([`crate::notices`]). Must not
    /// block.
    fn restart_notice(&self, _notice: &crate::RestartNotice) {}
    /// A scheduled restart of `target` (a workload, or `restart set NAME`) started or was
    /// skipped; reported once across replicas.
    fn scheduled(&self, _target: &str, _state: crate::schedule::DueState) {}
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
///
/// The options it shares with the FleetLock coordinator's builder (clock, instance,
/// leadership, cache grace, shutdown) are set through [`CoreBuilder`].
pub struct RestarterBuilder {
    api: Arc<dyn ClusterApi>,
    caller_reads: Option<Arc<dyn ClusterApi>>,
    allowlist: Allowlist,
    config: RestartConfig,
    options: CoreOptions,
    observer: Arc<dyn RestartObserver>,
    only: Option<Only>,
    sets: Vec<RestartSet>,
}

/// What a process that is no leader does in the background for its own caller (see
/// [`RestarterBuilder::only_for`]).
#[derive(Debug, Clone, Default)]
struct Only {
    /// Workloads whose rollouts it judges (a set's members included).
    workloads: std::collections::HashSet<WorkloadRef>,
    /// Sets whose runs it drives.
    sets: std::collections::HashSet<String>,
}

struct Inner {
    api: Arc<dyn ClusterApi>,
    /// Where dry runs and history read what the caches do not hold (see
    /// [`RestarterBuilder::caller_reads`]).
    caller_reads: Arc<dyn ClusterApi>,
    /// The key our Events are marked with, once read ([`signing`]).
    event_key: tokio::sync::OnceCell<crate::signing::EventKey>,
    clock: Arc<dyn Clock>,
    allowlist: Allowlist,
    config: RestartConfig,
    instance: String,
    observer: Arc<dyn RestartObserver>,
    /// Allowlisted workloads by the name of their lock Lease.
    by_lease: HashMap<String, WorkloadRef>,
    /// One workload watch per kind and namespace of the allowlist, ordered, so readiness
    /// names the same problem first every time.
    places: Vec<Place>,
    /// The allowlisted workloads' lock Leases.
    leases: Store<WorkloadRef, Lease>,
    locks_health: CacheHealth,
    views: RwLock<HashMap<WorkloadRef, ServiceStatus>>,
    updates: broadcast::Sender<ServiceStatus>,
    /// Allowlisted workloads to judge again, each at most once.
    refresh: Refresh,
    /// Set by the first [`Restarter::run`].
    running: AtomicBool,
    cache_grace: Duration,
    sequence: AtomicU64,
    leadership: Option<watch::Receiver<bool>>,
    only: Option<Only>,
    /// The restart sets, and their runs' Leases by set name.
    sets: Vec<RestartSet>,
    runs: Store<String, Lease>,
    runs_health: CacheHealth,
    set_views: RwLock<HashMap<String, SetStatus>>,
    set_updates: broadcast::Sender<SetStatus>,
    /// Wakes the set driver: a run or a member's lock changed.
    sets_wake: tokio::sync::Notify,
    /// The schedule Leases, by name.
    schedule_leases: Store<String, Lease>,
    schedules_health: CacheHealth,
    /// The ConfigMaps and Secrets of the namespaces whose workloads restart on a change.
    config_places: Vec<config_trigger::ConfigPlace>,
    /// Workloads to look at for a configuration change, and when.
    config_due: parking_lot::Mutex<HashMap<WorkloadRef, tokio::time::Instant>>,
    config_wake: tokio::sync::Notify,
    /// Baselines to record before any look: the digests of the moment a workload's template
    /// changed, and that template's fingerprint.
    config_baselines: parking_lot::Mutex<HashMap<WorkloadRef, (crate::trigger::Digests, String)>>,
    /// When this replica saw each lock's and run's Lease last change: their expiry.
    observed: crate::observed::Observations,
    recorder: Recorder,
    /// Cancelled to stop: [`Restarter::run`] returns.
    shutdown: CancellationToken,
}

// === impl RestarterBuilder ===

impl CoreBuilder for RestarterBuilder {
    fn options_mut(&mut self) -> &mut CoreOptions {
        &mut self.options
    }
}

impl RestarterBuilder {
    /// Settings (namespace, lock duration, resync).
    pub fn config(mut self, config: RestartConfig) -> Self {
        self.config = config;
        self
    }

    /// Where to report restarts and rollouts.
    pub fn observer(mut self, observer: Arc<dyn RestartObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Makes this a process that is never the leader but judges the rollouts of `workloads`
    /// (releasing their locks when they end) and drives the runs of `sets` (and judges their
    /// members'), as `restartctl` in direct mode does for what its user asked it to wait
    /// for. It acts on no schedule and no configuration change, and drives no other set.
    /// Overrides [`CoreBuilder::leadership`].
    pub fn only_for(
        mut self,
        workloads: impl IntoIterator<Item = WorkloadRef>,
        sets: impl IntoIterator<Item = String>,
    ) -> Self {
        self.only = Some(Only {
            workloads: workloads.into_iter().collect(),
            sets: sets.into_iter().collect(),
        });
        self
    }

    /// Where dry runs and history read what the caches do not hold (pods, disruption
    /// budgets, Events): a handle on the same cluster with a client-side budget of its own,
    /// so that callers asking for many of them never hold up lock writes and restarts. The
    /// cluster handle the service was built with, unless set.
    pub fn caller_reads(mut self, api: Arc<dyn ClusterApi>) -> Self {
        self.caller_reads = Some(api);
        self
    }

    /// The restart sets (checked against the allowlist by [`crate::sets::check_sets`]).
    pub fn sets(mut self, sets: Vec<RestartSet>) -> Self {
        self.sets = sets;
        self
    }

    /// The service.
    pub fn build(mut self) -> Restarter {
        if let Some(only) = &mut self.only {
            // A set it drives moves on only as its members' rollouts are judged.
            let members = self
                .sets
                .iter()
                .filter(|s| only.sets.contains(&s.name))
                .flat_map(|s| s.members.iter().cloned());
            only.workloads.extend(members.collect::<Vec<_>>());
        }
        let by_lease = self
            .allowlist
            .iter()
            .map(|a| (lock::lease_name(&a.workload), a.workload.clone()))
            .collect();
        let places = Place::all(&self.allowlist);
        // A process that leads nothing restarts on no configuration change: it reads none.
        let config_places = match self.only {
            Some(_) => Vec::new(),
            None => config_trigger::ConfigPlace::all(&self.allowlist),
        };
        Restarter {
            inner: Arc::new(Inner {
                caller_reads: self.caller_reads.unwrap_or_else(|| self.api.clone()),
                event_key: tokio::sync::OnceCell::new(),
                recorder: Recorder::new(self.api.clone(), CONTROLLER, &self.options),
                shutdown: self.options.shutdown.clone(),
                api: self.api,
                clock: self.options.clock,
                allowlist: self.allowlist,
                config: self.config,
                instance: self.options.instance,
                observer: self.observer,
                by_lease,
                places,
                leases: Store::new(),
                locks_health: CacheHealth::new("restart lock"),
                views: RwLock::default(),
                updates: broadcast::channel(1024).0,
                refresh: Refresh::default(),
                running: AtomicBool::new(false),
                cache_grace: self.options.cache_grace,
                sequence: AtomicU64::new(0),
                leadership: self.options.leadership,
                only: self.only,
                sets: self.sets,
                runs: Store::new(),
                runs_health: CacheHealth::new("restart set"),
                set_views: RwLock::default(),
                set_updates: broadcast::channel(256).0,
                sets_wake: tokio::sync::Notify::new(),
                schedule_leases: Store::new(),
                schedules_health: CacheHealth::new("restart schedule"),
                config_places,
                config_due: parking_lot::Mutex::default(),
                config_wake: tokio::sync::Notify::new(),
                config_baselines: parking_lot::Mutex::default(),
                observed: crate::observed::Observations::new(),
            }),
        }
    }
}

// === impl Inner ===

impl Inner {
    /// Whether this replica leads now: it acts on schedules and configuration changes, drives
    /// every set and judges every rollout.
    fn leads(&self) -> bool {
        self.only.is_none() && self.leadership.as_ref().is_none_or(|l| *l.borrow())
    }

    /// Whether this replica judges `r`'s rollout now.
    fn tracks(&self, r: &WorkloadRef) -> bool {
        match &self.only {
            Some(only) => only.workloads.contains(r),
            None => self.leads(),
        }
    }

    /// Whether this replica drives the set's runs now.
    fn drives(&self, set: &str) -> bool {
        match &self.only {
            Some(only) => only.sets.contains(set),
            None => self.leads(),
        }
    }
}

// === impl Restarter ===

impl Restarter {
    /// Starts building the service over a cluster and an allowlist.
    pub fn builder(api: Arc<dyn ClusterApi>, allowlist: Allowlist) -> RestarterBuilder {
        RestarterBuilder {
            api,
            caller_reads: None,
            allowlist,
            config: RestartConfig::default(),
            options: CoreOptions::default(),
            observer: Arc::new(NoopRestartObserver),
            only: None,
            sets: Vec::new(),
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
    /// the shutdown signal ([`CoreBuilder::shutdown`]) is given or it is dropped. Its work is
    /// all in this future (it spawns nothing), so it stops at its next await point; every
    /// write it makes is a compare-and-swap that another replica, or the next start, picks up
    /// from. Run it once per `Restarter`.
    pub async fn run(&self) {
        if self.inner.running.swap(true, Ordering::AcqRel) {
            tracing::error!("Restarter::run called twice");
            return;
        }
        let inner = &self.inner;
        // The Events' key first, so that neither the first restart nor the first history
        // waits for it (a failure is logged, and asked again when it is needed).
        let _ = inner.event_key().await;
        // One watch per kind and namespace of the allowlist: the server reads workloads
        // only where it may restart some, which is all a namespaced Role grants.
        let kinds = futures::future::join_all(inner.places.iter().map(|p| inner.watch_place(p)));
        let all = async {
            tokio::join!(
                kinds,
                inner.watch_locks(),
                inner.watch_runs(),
                inner.track_forever(),
                inner.resync_forever(),
                inner.drive_sets_forever(),
                inner.watch_schedules(),
                inner.schedule_forever(),
                inner.watch_configs(),
                inner.config_trigger_forever()
            );
        };
        tokio::select! {
            () = all => {}
            () = inner.shutdown.cancelled() => tracing::debug!("restart service stopped"),
        }
    }

    /// Whether every watch has delivered its first full list and none has been failing for
    /// longer than the grace time.
    pub fn is_ready(&self) -> bool {
        self.readiness_problem().is_none()
    }

    /// Why [`is_ready`](Self::is_ready) says no, for a readiness probe.
    pub fn readiness_problem(&self) -> Option<String> {
        let grace = self.inner.cache_grace;
        self.inner.healths().find_map(|h| h.problem(grace))
    }

    /// Waits until every watch has delivered its first full list.
    pub async fn wait_ready(&self) {
        for health in self.inner.healths() {
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
        self.inner
            .restart(workload, who, reason, Ask::default())
            .await
    }

    /// [`restart`](Self::restart), also outside the workload's restart windows: for a caller
    /// the embedder has found may override them (the server: the `unlock` right). The reason
    /// is required and recorded with the override.
    pub async fn restart_outside_windows(
        &self,
        workload: &WorkloadRef,
        who: &Identity,
        reason: &str,
    ) -> Result<ServiceStatus, RestartError> {
        self.inner
            .restart(
                workload,
                who,
                Some(reason),
                Ask {
                    windows: Windows::Override,
                    ..Ask::default()
                },
            )
            .await
    }

    /// What a restart by `who` would do now, changing nothing: the same checks in the same
    /// order (the reason's included), the lock, the pods it would replace and the budgets
    /// over them.
    pub async fn dry_run(
        &self,
        workload: &WorkloadRef,
        who: &Identity,
        reason: Option<&str>,
    ) -> Result<RestartPlan, RestartError> {
        self.inner.dry_run(workload, who, reason).await
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

    /// A workload's recent restarts, refusals and rollouts, newest first: the Events this
    /// service wrote, and only those. One that merely names our controller (anyone who may
    /// create Events in the namespace can write that) without our mark is left out.
    pub async fn history(&self, workload: &WorkloadRef) -> Result<Vec<HistoryEntry>, RestartError> {
        let inner = &self.inner;
        inner.allowed(workload)?;
        let key = inner.event_key().await.map_err(RestartError::Cluster)?;
        let events = inner
            .caller_reads
            .list_events(&workload.object_ref())
            .await
            .map_err(RestartError::Cluster)?;
        let mut entries: Vec<HistoryEntry> = events
            .into_iter()
            .filter(|e| e.reporting_controller == CONTROLLER)
            .filter(|e| {
                let ours = key.verify(e);
                if !ours {
                    tracing::warn!(
                        regarding = %e.regarding,
                        reason = %e.reason,
                        instance = %e.reporting_instance,
                        "an Event names restart-manager without its mark: left out of history"
                    );
                }
                ours
            })
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

    /// The restart sets, in configuration order.
    pub fn sets(&self) -> &[RestartSet] {
        &self.inner.sets
    }

    /// Every set's status, in configuration order.
    pub fn set_statuses(&self) -> Vec<SetStatus> {
        self.inner
            .sets
            .iter()
            .map(|s| self.inner.set_view(s))
            .collect()
    }

    /// One set's status.
    pub fn set_status(&self, name: &str) -> Result<SetStatus, RestartError> {
        Ok(self.inner.set_view(self.inner.set(name)?))
    }

    /// Every set status change from now on (as [`subscribe`](Self::subscribe) for
    /// workloads).
    pub fn subscribe_sets(&self) -> broadcast::Receiver<SetStatus> {
        self.inner.set_updates.subscribe()
    }

    /// Starts a run of a restart set for `who`, who must be allowed to restart every member,
    /// inside every member's windows. The run is driven by the replica that judges rollouts
    /// (the leader) and survives any replica's end: it lives in the set's Lease. Refused with
    /// [`RestartError::SetRunning`] while a run goes on.
    pub async fn start_set(
        &self,
        name: &str,
        who: &Identity,
        reason: Option<&str>,
    ) -> Result<SetStatus, RestartError> {
        self.inner
            .start_set(name, who, reason, Ask::default())
            .await
    }

    /// [`start_set`](Self::start_set) outside the members' windows too, for a caller the
    /// embedder has found may override them; the reason is required.
    pub async fn start_set_outside_windows(
        &self,
        name: &str,
        who: &Identity,
        reason: &str,
    ) -> Result<SetStatus, RestartError> {
        let ask = Ask {
            windows: Windows::Override,
            ..Ask::default()
        };
        self.inner.start_set(name, who, Some(reason), ask).await
    }

    /// Cancels a set's run: no further member starts, those restarting finish, the rest are
    /// skipped. Returns the set's status, or `None` if no run was going on.
    pub async fn cancel_set(
        &self,
        name: &str,
        who: &Identity,
    ) -> Result<Option<SetStatus>, RestartError> {
        self.inner.cancel_set(name, who).await
    }

    /// Waits until the set's run (the one going on now, if any) has ended, and returns its
    /// status then; `progress` sees every change on the way.
    pub async fn wait_set(
        &self,
        name: &str,
        mut progress: impl FnMut(&SetStatus),
    ) -> Result<SetStatus, RestartError> {
        let set = self.inner.set(name)?;
        let mut updates = self.subscribe_sets();
        loop {
            let status = self.inner.set_view(set);
            progress(&status);
            if !status.running {
                return Ok(status);
            }
            match updates.recv().await {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return Ok(status),
            }
        }
    }
}
