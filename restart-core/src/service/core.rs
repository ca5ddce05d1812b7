//! The parts one replica's service is made of, and the loops that keep them current.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cluster_api::{
    CacheHealth, Clock, ClusterApi, CoreOptions, EventType, ObjectRef, Recorder, Timestamp,
    WorkloadRef,
};
use tokio_util::sync::CancellationToken;

use super::admission::Admission;
use super::board::Board;
use super::config_trigger::ConfigTrigger;
use super::locks::Locks;
use super::observer::RestartObserver;
use super::role::{Only, Role};
use super::schedules::Schedules;
use super::set_runs::SetRuns;
use super::settings::{CONTROLLER, RestartConfig};
use super::signing::EventLog;
use super::workloads::Workloads;
use crate::allowlist::Allowlist;
use crate::refresh::Refresh;
use crate::sets::RestartSet;
use crate::status::ServiceStatus;

/// What the builder hands over.
pub(super) struct Setup {
    pub(super) api: Arc<dyn ClusterApi>,
    pub(super) caller_reads: Arc<dyn ClusterApi>,
    pub(super) allowlist: Allowlist,
    pub(super) config: RestartConfig,
    pub(super) options: CoreOptions,
    pub(super) observer: Arc<dyn RestartObserver>,
    pub(super) only: Option<Only>,
    pub(super) sets: Vec<RestartSet>,
}

/// One replica's service: the parts, each owning its state, and the cluster they act on.
pub(super) struct Core {
    pub(super) api: Arc<dyn ClusterApi>,
    /// Where dry runs and history read what the caches do not hold (see
    /// `RestarterBuilder::caller_reads`).
    pub(super) caller_reads: Arc<dyn ClusterApi>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) config: RestartConfig,
    pub(super) observer: Arc<dyn RestartObserver>,
    pub(super) role: Role,
    pub(super) admission: Admission,
    pub(super) workloads: Workloads,
    pub(super) locks: Locks,
    /// The workloads' statuses as last published.
    pub(super) statuses: Board<WorkloadRef, ServiceStatus>,
    /// Allowlisted workloads to judge again, each at most once.
    pub(super) refresh: Refresh,
    pub(super) sets: SetRuns,
    pub(super) schedules: Schedules,
    pub(super) config_trigger: ConfigTrigger,
    pub(super) events: EventLog,
    instance: String,
    sequence: AtomicU64,
    /// Set by the first [`run`](Core::run).
    running: AtomicBool,
    cache_grace: Duration,
    /// Cancelled to stop: [`run`](Core::run) returns.
    shutdown: CancellationToken,
}

impl Core {
    pub(super) fn new(setup: Setup) -> Self {
        let Setup {
            api,
            caller_reads,
            allowlist,
            config,
            options,
            observer,
            only,
            sets,
        } = setup;
        let recorder = Recorder::new(api.clone(), CONTROLLER, &options);
        let limited = only.is_some();
        Core {
            role: Role::new(options.leadership, only),
            workloads: Workloads::new(&allowlist),
            locks: Locks::new(&allowlist),
            statuses: Board::new(1024),
            refresh: Refresh::default(),
            schedules: Schedules::new(&allowlist, &sets),
            sets: SetRuns::new(sets),
            config_trigger: ConfigTrigger::new(&allowlist, limited),
            events: EventLog::new(api.clone(), config.namespace.clone(), recorder),
            admission: Admission::new(allowlist, options.clock.clone()),
            api,
            caller_reads,
            clock: options.clock,
            config,
            observer,
            instance: options.instance,
            sequence: AtomicU64::new(0),
            running: AtomicBool::new(false),
            cache_grace: options.cache_grace,
            shutdown: options.shutdown,
        }
    }

    pub(super) fn allowlist(&self) -> &Allowlist {
        self.admission.allowlist()
    }

    /// Keeps the caches current, judges rollouts, drives sets, acts on schedules and
    /// configuration changes, until the shutdown signal is given or it is dropped. Its work
    /// is all in this future (it spawns nothing), so it stops at its next await point.
    pub(super) async fn run(&self) {
        if self.running.swap(true, Ordering::AcqRel) {
            tracing::error!("Restarter::run called twice");
            return;
        }
        // The Events' key first, so that neither the first restart nor the first history
        // waits for it (a failure is logged, and asked again when it is needed).
        let _ = self.events.key().await;
        // One watch per kind and namespace of the allowlist: the server reads workloads
        // only where it may restart some, which is all a namespaced Role grants.
        let places = self.workloads.places().iter().map(|p| self.watch_place(p));
        let kinds = futures::future::join_all(places);
        let all = async {
            tokio::join!(
                kinds,
                self.watch_locks(),
                self.watch_runs(),
                self.track_forever(),
                self.resync_forever(),
                self.drive_sets_forever(),
                self.watch_schedules(),
                self.schedule_forever(),
                self.watch_configs(),
                self.config_trigger_forever()
            );
        };
        tokio::select! {
            () = all => {}
            () = self.shutdown.cancelled() => tracing::debug!("restart service stopped"),
        }
    }

    /// Every watch's health: the workload watches in order, then the lock watch, the runs',
    /// the schedules' and the configuration's.
    pub(super) fn healths(&self) -> impl Iterator<Item = &CacheHealth> {
        self.workloads
            .healths()
            .chain([&self.locks.health])
            .chain(self.sets.health())
            .chain(self.schedules.health())
            .chain(self.config_trigger.healths())
    }

    pub(super) fn all_healthy(&self) -> bool {
        self.healths().all(CacheHealth::is_healthy)
    }

    /// Why the caches are not ready, if they are not.
    pub(super) fn readiness_problem(&self) -> Option<String> {
        self.healths().find_map(|h| h.problem(self.cache_grace))
    }

    /// A new, unique restart (or run) id.
    pub(super) fn new_id(&self, now: Timestamp) -> String {
        format!(
            "{}-{}-{}",
            self.instance,
            now.as_millisecond(),
            self.sequence.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A workload as the object an Event is about, with its uid when known (`kubectl
    /// describe` shows only Events carrying it).
    pub(super) fn regarding(&self, workload: &WorkloadRef) -> ObjectRef {
        let uid = self
            .workloads
            .get(workload)
            .map(|w| w.uid)
            .unwrap_or_default();
        workload.object_ref().with_uid(uid)
    }

    /// Records an Event about a workload's restart.
    pub(super) async fn event(
        &self,
        workload: &WorkloadRef,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let regarding = self.regarding(workload);
        self.events
            .record(regarding, type_, reason, "Restart", note)
            .await;
    }

    /// Logs and records a refused restart.
    pub(super) async fn refused(&self, workload: &WorkloadRef, note: String) {
        tracing::info!(%workload, "{note}");
        self.event(workload, EventType::Warning, "RestartRefused", note)
            .await;
    }
}
