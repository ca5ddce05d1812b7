//! [`Restarter`]: what embedders call. Every method hands over to the parts (`core.rs`).

use std::sync::Arc;

use cluster_api::WorkloadRef;
use tokio::sync::broadcast;

use super::ask::Ask;
use super::core::Core;
use super::dry_run::RestartPlan;
use super::settings::{CONTROLLER, RestartConfig};
use crate::allowlist::{Allowlist, Identity};
use crate::error::RestartError;
use crate::lock::LockInfo;
use crate::sets::{RestartSet, SetStatus};
use crate::status::{HistoryEntry, Phase, ServiceStatus};

/// Restarts allowlisted workloads and tracks their rollouts, for one replica.
///
/// Cheap to clone. [`run`](Restarter::run) keeps its caches current from watches and
/// releases locks when rollouts end; [`restart`](Restarter::restart) starts one.
#[derive(Clone)]
pub struct Restarter {
    pub(super) core: Arc<Core>,
}

impl Restarter {
    /// The allowlist it was built with; it does not change while the restarter lives.
    pub fn allowlist(&self) -> &Allowlist {
        self.core.allowlist()
    }

    /// The settings.
    pub fn config(&self) -> &RestartConfig {
        &self.core.config
    }

    /// Keeps the caches current, judges rollouts and releases finished restarts' locks, until
    /// the shutdown signal ([`CoreBuilder::shutdown`](cluster_api::CoreBuilder::shutdown)) is given or it is dropped. Its work is
    /// all in this future (it spawns nothing), so it stops at its next await point; every
    /// write it makes is a compare-and-swap that another replica, or the next start, picks up
    /// from. Run it once per `Restarter`.
    pub async fn run(&self) {
        self.core.run().await;
    }

    /// Whether every watch has delivered its first full list and none has been failing for
    /// longer than the grace time.
    pub fn is_ready(&self) -> bool {
        self.readiness_problem().is_none()
    }

    /// Why [`is_ready`](Self::is_ready) says no, for a readiness probe.
    pub fn readiness_problem(&self) -> Option<String> {
        self.core.readiness_problem()
    }

    /// Waits until every watch has delivered its first full list.
    pub async fn wait_ready(&self) {
        for health in self.core.healths() {
            health.wait_synced().await;
        }
    }

    /// Every allowlisted workload's status, in allowlist order.
    pub fn statuses(&self) -> Vec<ServiceStatus> {
        let allowlist = self.core.allowlist().iter();
        allowlist.map(|a| self.core.view(&a.workload)).collect()
    }

    /// One workload's status.
    pub fn status(&self, workload: &WorkloadRef) -> Result<ServiceStatus, RestartError> {
        self.core.admission.entry(workload)?;
        Ok(self.core.view(workload))
    }

    /// Every status change from now on. A receiver that falls behind gets
    /// [`broadcast::error::RecvError::Lagged`] and should start over from
    /// [`statuses`](Self::statuses).
    pub fn subscribe(&self) -> broadcast::Receiver<ServiceStatus> {
        self.core.statuses.subscribe()
    }

    /// Restarts a workload exactly as `kubectl rollout restart` does, holding its lock until
    /// the rollout ends.
    pub async fn restart(
        &self,
        workload: &WorkloadRef,
        who: &Identity,
        reason: Option<&str>,
    ) -> Result<ServiceStatus, RestartError> {
        let ask = Ask::default();
        self.core.restart(workload, who, reason, ask).await
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
        let ask = Ask::outside_windows();
        self.core.restart(workload, who, Some(reason), ask).await
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
        self.core.dry_run(workload, who, reason).await
    }

    /// Breaks a workload's lock, whoever holds it. Returns the lock that was broken, if any.
    pub async fn force_unlock(
        &self,
        workload: &WorkloadRef,
        who: &Identity,
        reason: &str,
    ) -> Result<Option<LockInfo>, RestartError> {
        self.core.force_unlock(workload, who, reason).await
    }

    /// A workload's recent restarts, refusals and rollouts, newest first: the Events this
    /// service wrote, and only those. One that merely names our controller (anyone who may
    /// create Events in the namespace can write that) without our mark is left out.
    pub async fn history(&self, workload: &WorkloadRef) -> Result<Vec<HistoryEntry>, RestartError> {
        let core = &self.core;
        core.admission.entry(workload)?;
        let key = core.events.key().await.map_err(RestartError::Cluster)?;
        let events = core
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
        entries.truncate(core.config.history_limit);
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
            let status = self.core.view(workload);
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
        self.core.sets.all()
    }

    /// Every set's status, in configuration order.
    pub fn set_statuses(&self) -> Vec<SetStatus> {
        let sets = self.core.sets.all().iter();
        sets.map(|s| self.core.set_view(s)).collect()
    }

    /// One set's status.
    pub fn set_status(&self, name: &str) -> Result<SetStatus, RestartError> {
        Ok(self.core.set_view(self.core.sets.get(name)?))
    }

    /// Every set status change from now on (as [`subscribe`](Self::subscribe) for
    /// workloads).
    pub fn subscribe_sets(&self) -> broadcast::Receiver<SetStatus> {
        self.core.sets.subscribe()
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
        let ask = Ask::default();
        self.core.start_set(name, who, reason, ask).await
    }

    /// [`start_set`](Self::start_set) outside the members' windows too, for a caller the
    /// embedder has found may override them; the reason is required.
    pub async fn start_set_outside_windows(
        &self,
        name: &str,
        who: &Identity,
        reason: &str,
    ) -> Result<SetStatus, RestartError> {
        let ask = Ask::outside_windows();
        self.core.start_set(name, who, Some(reason), ask).await
    }

    /// Cancels a set's run: no further member starts, those restarting finish, the rest are
    /// skipped. Returns the set's status, or `None` if no run was going on.
    pub async fn cancel_set(
        &self,
        name: &str,
        who: &Identity,
    ) -> Result<Option<SetStatus>, RestartError> {
        self.core.cancel_set(name, who).await
    }

    /// Waits until the set's run (the one going on now, if any) has ended, and returns its
    /// status then; `progress` sees every change on the way.
    pub async fn wait_set(
        &self,
        name: &str,
        mut progress: impl FnMut(&SetStatus),
    ) -> Result<SetStatus, RestartError> {
        let set = self.core.sets.get(name)?;
        let mut updates = self.subscribe_sets();
        loop {
            let status = self.core.set_view(set);
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
