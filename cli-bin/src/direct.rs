//! Direct mode: the cores themselves, on the user's kubeconfig, with the same Leases as the
//! server, so a restart from here and one from the page exclude each other.

use std::sync::Arc;

use async_trait::async_trait;
use cluster_api::{Clock, ClusterApi, CoreBuilder, WorkloadRef};
use fleetlock_core::{Coordinator, FleetSnapshot, NodePlan};
use futures::StreamExt;
use futures::stream::BoxStream;
use manager_config::FileConfig;
use restart_core::{
    Allowlist, HistoryEntry, Identity, LockInfo, RestartConfig, RestartPlan, Restarter,
    ServiceStatus, SetStatus,
};
use tokio::sync::watch;

use crate::backend::{Backend, CliError, Exit};

/// The cores on a cluster.
pub struct Direct {
    restarter: Restarter,
    coordinator: Coordinator,
    identity: Identity,
}

/// What a direct-mode process follows in the background: only what its user waits for. It is
/// never a second leader: it acts on no schedule and no configuration change, drives no other
/// set, and resumes no drain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Follow {
    /// Nothing: it only answers the command.
    #[default]
    Nothing,
    /// This workload's rollout, releasing its lock when it ends (`restart W --wait` with no
    /// server running).
    Workload(WorkloadRef),
    /// This set's run, member by member (`restart set NAME --wait`).
    Set(String),
}

impl Direct {
    /// Starts the cores' caches, following what `follow` says.
    pub fn start(
        api: Arc<dyn ClusterApi>,
        clock: Arc<dyn Clock>,
        config: FileConfig,
        identity: Identity,
        follow: Follow,
    ) -> Result<Self, CliError> {
        let allowlist = Allowlist::new(config.services.clone())
            .map_err(|e| CliError::new(Exit::Usage, format!("the allowlist: {e}")))?;
        let sets = config
            .sets(&allowlist)
            .map_err(|e| CliError::new(Exit::Usage, format!("the restart sets: {e}")))?;
        let namespace = config.fleetlock.namespace.clone();
        let (workloads, driven) = match follow {
            Follow::Nothing => (vec![], vec![]),
            Follow::Workload(w) => (vec![w], vec![]),
            Follow::Set(name) => (vec![], vec![name]),
        };
        let (_, never) = watch::channel(false);
        let restarter = Restarter::builder(api.clone(), allowlist)
            .clock(clock.clone())
            .config(RestartConfig {
                namespace,
                ..RestartConfig::default()
            })
            .instance("restartctl")
            .sets(sets)
            .only_for(workloads, driven)
            .build();
        let coordinator = Coordinator::builder(api, config.fleetlock)
            .clock(clock)
            .instance("restartctl")
            .leadership(never)
            .build();
        tokio::spawn({
            let r = restarter.clone();
            async move { r.run().await }
        });
        Ok(Direct {
            restarter,
            coordinator,
            identity,
        })
    }

    async fn ready(&self) {
        self.restarter.wait_ready().await;
    }

    /// `then`, once the coordinator's caches are synced: they are fed for as long as it
    /// takes, in this task, and stop with it (this process never leads, so the coordinator
    /// runs no drain).
    async fn with_caches<T>(&self, then: impl Future<Output = T>) -> Result<T, CliError> {
        let answer = async {
            self.coordinator.wait_ready().await;
            then.await
        };
        tokio::select! {
            answer = answer => Ok(answer),
            // Only on a shutdown, which nothing here asks for.
            () = self.coordinator.run() => Err(CliError::new(
                Exit::Failure,
                "the node and lock caches stopped before they could answer",
            )),
        }
    }
}

#[async_trait]
impl Backend for Direct {
    async fn statuses(&self) -> Result<Vec<ServiceStatus>, CliError> {
        self.ready().await;
        Ok(self.restarter.statuses())
    }

    async fn status(&self, w: &WorkloadRef) -> Result<ServiceStatus, CliError> {
        self.ready().await;
        Ok(self.restarter.status(w)?)
    }

    async fn restart(
        &self,
        w: &WorkloadRef,
        reason: Option<&str>,
    ) -> Result<ServiceStatus, CliError> {
        self.ready().await;
        Ok(self.restarter.restart(w, &self.identity, reason).await?)
    }

    async fn dry_run(
        &self,
        w: &WorkloadRef,
        reason: Option<&str>,
    ) -> Result<RestartPlan, CliError> {
        self.ready().await;
        Ok(self.restarter.dry_run(w, &self.identity, reason).await?)
    }

    async fn unlock(&self, w: &WorkloadRef, reason: &str) -> Result<Option<LockInfo>, CliError> {
        self.ready().await;
        Ok(self
            .restarter
            .force_unlock(w, &self.identity, reason)
            .await?)
    }

    async fn history(&self, w: &WorkloadRef) -> Result<Vec<HistoryEntry>, CliError> {
        Ok(self.restarter.history(w).await?)
    }

    async fn fleet(&self) -> Result<FleetSnapshot, CliError> {
        self.with_caches(async { self.coordinator.snapshot() })
            .await
    }

    async fn plan(&self, node: &str) -> Result<NodePlan, CliError> {
        Ok(self.with_caches(self.coordinator.plan_node(node)).await??)
    }

    async fn pause(&self, group: &str, paused: bool) -> Result<(), CliError> {
        Ok(self.coordinator.set_paused(group, paused).await?)
    }

    async fn updates(
        &self,
        only: Option<&WorkloadRef>,
    ) -> Result<BoxStream<'static, ServiceStatus>, CliError> {
        self.ready().await;
        let updates = self.restarter.subscribe();
        let now = match only {
            Some(w) => vec![self.restarter.status(w)?],
            None => self.restarter.statuses(),
        };
        let only = only.cloned();
        let changes = tokio_stream_from(updates).filter(move |s| {
            let keep = only
                .as_ref()
                .is_none_or(|w| w.kind == s.kind && w.namespace == s.namespace && w.name == s.name);
            async move { keep }
        });
        Ok(futures::stream::iter(now).chain(changes).boxed())
    }

    async fn sets(&self) -> Result<Vec<SetStatus>, CliError> {
        self.ready().await;
        Ok(self.restarter.set_statuses())
    }

    async fn start_set(&self, name: &str, reason: Option<&str>) -> Result<SetStatus, CliError> {
        self.ready().await;
        Ok(self
            .restarter
            .start_set(name, &self.identity, reason)
            .await?)
    }

    async fn cancel_set(&self, name: &str) -> Result<Option<SetStatus>, CliError> {
        self.ready().await;
        Ok(self.restarter.cancel_set(name, &self.identity).await?)
    }

    async fn set_updates(&self, name: &str) -> Result<BoxStream<'static, SetStatus>, CliError> {
        self.ready().await;
        let updates = self.restarter.subscribe_sets();
        let now = self.restarter.set_status(name)?;
        let name = name.to_string();
        let changes = tokio_stream_from(updates).filter(move |s| {
            let keep = s.set.name == name;
            async move { keep }
        });
        Ok(futures::stream::iter([now]).chain(changes).boxed())
    }
}

/// A broadcast receiver as a stream; a receiver that lags skips ahead.
fn tokio_stream_from<T: Clone + Send + 'static>(
    rx: tokio::sync::broadcast::Receiver<T>,
) -> BoxStream<'static, T> {
    futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(s) => return Some((s, rx)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .boxed()
}
