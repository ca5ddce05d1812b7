//! End to end: a real restart rolled out to completion, a real FleetLock cycle on a worker
//! node with a budget-protected Deployment, and two replicas sharing one lock. One suite,
//! two targets:
//!
//! - by default, the simulated cluster behind its Kubernetes API endpoint (HTTPS, its own
//!   CA), which `cargo test` runs;
//! - a real cluster when asked for: the genuine control plane on loopback that
//!   `scripts/cluster up` starts (docs/control-plane.md; what `.ci/run` does), or any other:
//!
//! ```sh
//! scripts/cluster up && eval "$(scripts/cluster env)"
//! RESTART_MANAGER_E2E=1 cargo test -p server-bin --test e2e -- --test-threads=1
//! ```
//!
//! The tests of node reboots played by agents (`common/agent.rs`: Zincati over HTTP with
//! restartctl's FleetLock client, the kubelet's stop and start on the real API) need KWOK's
//! fake nodes, so they run only on such a cluster, against the real `restart-manager` binary;
//! elsewhere they say they were skipped and how to run them.
//!
//! Each test works in a namespace of its own and deletes it at the end. The FleetLock tests
//! cordon and drain nodes (and give them back); on a real cluster, run them on a disposable
//! one.

#[path = "../common/mod.rs"]
mod common;

mod drains;
mod reboots;
mod restarts;

use std::sync::Arc;
use std::time::Duration;

use cluster_api::{Clock, ClusterApi, CoreBuilder, Node, SystemClock, WorkloadKind, WorkloadRef};
use cluster_sim::apiserver::{ApiServer, KubeconfigDir, Running};
use cluster_sim::{SimCluster, SimConfig, machine_id_for};
use common::agent::{
    AGENT_DEADLINE, KWOK_LABEL, NodeAgent, Reboot, nodes_running, schedulable_nodes,
};
use common::real::{Scratch, TempFile, approvals, refused_as, slot_holders};
use fleetlock_core::{ClientParams, Coordinator, FleetLockConfig, zincati_id};
use k8s_adapter::{KubeCluster, KubeOptions};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Node as KubeNode;
use kube::api::{Api, ListParams, Patch, PatchParams};
use restart_core::{
    Allowlist, Identity, Phase, RestartConfig, RestartError, Restarter, ServiceEntry,
};
use serde_json::json;

/// The cluster under test, and the simulation behind it when it is simulated.
struct Target {
    kube: KubeCluster,
    _simulated: Option<(SimCluster, Running, KubeconfigDir)>,
}

async fn cluster() -> Target {
    if std::env::var("RESTART_MANAGER_E2E").as_deref() == Ok("1") {
        let kube = KubeCluster::connect(None, None, KubeOptions::default())
            .await
            .expect("a cluster from KUBECONFIG");
        return Target {
            kube,
            _simulated: None,
        };
    }
    // A small cluster like kind's: a control plane and two workers, on the real clock.
    let sim = SimCluster::with_config(SimConfig {
        start_time: jiff::Timestamp::now(),
        ..SimConfig::default()
    });
    sim.add_node(
        Node::new("control-plane")
            .machine_id(machine_id_for("control-plane"))
            .label("node-role.kubernetes.io/control-plane", ""),
    );
    for name in ["worker-1", "worker-2"] {
        sim.add_node(Node::new(name).machine_id(machine_id_for(name)));
    }
    let endpoint = ApiServer::new(sim.clone())
        .serve_on_localhost()
        .await
        .expect("the simulated endpoint");
    let kubeconfig = endpoint.temp_kubeconfig().unwrap();
    let kube = KubeCluster::connect(Some(kubeconfig.path()), None, KubeOptions::default())
        .await
        .expect("the simulated endpoint's kubeconfig");
    Target {
        kube,
        _simulated: Some((sim, endpoint, kubeconfig)),
    }
}

fn restarter(kube: &KubeCluster, w: &WorkloadRef, instance: &str) -> Restarter {
    let allowlist = Allowlist::new(vec![ServiceEntry::new(w.clone())]).unwrap();
    let config = RestartConfig {
        namespace: w.namespace.clone(),
        ..RestartConfig::default()
    };
    let r = Restarter::builder(Arc::new(kube.clone()), allowlist)
        .config(config)
        .instance(instance)
        .build();
    tokio::spawn({
        let r = r.clone();
        async move { r.run().await }
    });
    r
}

async fn wait_available(kube: &KubeCluster, w: &WorkloadRef) {
    for _ in 0..120 {
        let d = kube.get_workload(w).await.unwrap();
        if d.status.available_replicas >= d.replicas.unwrap_or(1) {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("{w} never became available");
}
