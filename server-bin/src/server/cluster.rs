//! Reaching the cluster: a real one, connected to and checked before anything is served, or
//! the simulated one of `--simulate`.

use std::sync::Arc;

use anyhow::{Result, bail};
use cluster_api::{Clock, ClusterApi, SystemClock};
use k8s_adapter::{KubeCluster, KubeOptions, config_watch_permissions, required_permissions};
use restart_core::Allowlist;

use crate::args::Args;

/// The cluster the server runs on.
pub(super) struct Cluster {
    pub(super) api: Arc<dyn ClusterApi>,
    pub(super) clock: Arc<dyn Clock>,
    /// The real cluster's client, from which elections, reviews and callers' reads get
    /// budgets of their own; `None` on the simulated cluster.
    pub(super) kube: Option<KubeCluster>,
    /// The simulated cluster, which agents and `--sim-api-listen` drive; `None` on a real one.
    #[cfg(feature = "simulate")]
    pub(super) sim: Option<cluster_sim::SimCluster>,
}

// === impl Cluster ===

impl Cluster {
    /// The simulated cluster with `--simulate`, otherwise the real one, [`connect`]ed.
    pub(super) async fn reach(
        args: &Args,
        namespace: &str,
        group_label: &str,
        allowlist: &Allowlist,
    ) -> Result<Self> {
        if args.simulate {
            return Self::simulated(args);
        }
        let kube = connect(args, namespace, group_label, allowlist).await?;
        Ok(Cluster {
            api: Arc::new(kube.clone()),
            clock: Arc::new(SystemClock),
            kube: Some(kube),
            #[cfg(feature = "simulate")]
            sim: None,
        })
    }

    #[cfg(feature = "simulate")]
    fn simulated(args: &Args) -> Result<Self> {
        let sim = crate::simulate::cluster(&args.simulation)?;
        tracing::info!(
            nodes = sim.nodes().len(),
            pods = sim.pods().len(),
            "running on a simulated cluster"
        );
        Ok(Cluster {
            api: Arc::new(sim.clone()),
            clock: Arc::new(sim.clone()),
            kube: None,
            sim: Some(sim),
        })
    }

    #[cfg(not(feature = "simulate"))]
    fn simulated(_: &Args) -> Result<Self> {
        bail!("{}", crate::args::NO_SIMULATE)
    }

    /// A handle on the same cluster whose calls pass a token bucket of their own; on the
    /// simulated cluster, which has no budget to share, the one handle.
    pub(super) fn with_own_budget(&self, qps: f64, burst: u32) -> Arc<dyn ClusterApi> {
        match &self.kube {
            Some(kube) => Arc::new(kube.with_own_budget(qps, burst)),
            None => self.api.clone(),
        }
    }
}

/// The prefix of every Node label and annotation the services read.
pub const NODE_METADATA_PREFIX: &str = "restart-manager.io/";

/// The namespaces of the workloads that restart on configuration changes: where the
/// server watches ConfigMaps and Secrets.
pub fn config_change_namespaces(allowlist: &Allowlist) -> impl Iterator<Item = &str> {
    allowlist
        .iter()
        .filter(|a| a.config_trigger.is_some())
        .map(|a| a.workload.namespace.as_str())
}

/// Connects to the cluster and checks, before serving anything, that it answers and that
/// this identity has every permission the adapter uses.
async fn connect(
    args: &Args,
    namespace: &str,
    group_label: &str,
    allowlist: &Allowlist,
) -> Result<KubeCluster> {
    // The cores read only their own Node labels and annotations, and the group label.
    let mut prefixes = vec![NODE_METADATA_PREFIX.to_string()];
    if !group_label.is_empty() && !group_label.starts_with(NODE_METADATA_PREFIX) {
        prefixes.push(group_label.to_string());
    }
    let options = KubeOptions {
        qps: args.kube.qps,
        burst: args.kube.burst,
        timeout: args.kube.timeout,
        review_qps: args.kube.review_qps,
        review_burst: args.kube.review_burst,
        node_metadata_prefixes: Some(prefixes),
        ..KubeOptions::default()
    };
    let kube = KubeCluster::connect(
        args.kube.kubeconfig.as_deref(),
        args.kube.context.as_deref(),
        options,
    )
    .await?;
    let url = kube.url().unwrap_or("the cluster").to_string();
    let version = kube
        .server_version()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the Kubernetes API at {url}: {e}"))?;
    let mut wanted = required_permissions(namespace, allowlist.iter().map(|a| &a.workload));
    wanted.extend(config_watch_permissions(config_change_namespaces(
        allowlist,
    )));
    let missing = kube
        .missing_permissions(&wanted)
        .await
        .map_err(|e| anyhow::anyhow!("cannot check permissions at {url}: {e}"))?;
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(ToString::to_string).collect();
        bail!(
            "missing permissions at {url}: this identity may not {}; grant the ClusterRole and \
             Role in deploy/, and for the allowlisted workloads (and, with \
             restartOnConfigChange, their namespaces' ConfigMaps and Secrets) the Roles that \
             `restart-manager rbac --config FILE` prints (see docs/operations.md)",
            list.join("; ")
        );
    }
    tracing::info!(%url, %version, "connected to the cluster; permissions complete");
    Ok(kube)
}
