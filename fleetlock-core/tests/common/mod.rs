//! Fixtures shared by the coordinator tests.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::sync::Arc;

use cluster_api::{CoreBuilder, LabelSelector, Pod};
use cluster_sim::{Budget, IntOrPercent, SimCluster, WorkloadSpec, machine_id_for};
use fleetlock_core::{ClientParams, Coordinator, FleetLockConfig, zincati_id};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const NS: &str = "restart-manager";

/// Nodes `n1`..`n<count>`, each with a machine id derived from its name.
pub fn fleet(count: usize) -> SimCluster {
    let sim = SimCluster::new();
    sim.add_fleet(count);
    sim
}

/// The FleetLock params Zincati on `node` would send.
pub fn zincati(node: &str, group: &str) -> ClientParams {
    ClientParams {
        id: zincati_id(&machine_id_for(node)).unwrap(),
        group: group.into(),
    }
}

/// A coordinator replica on the simulated cluster, running; abort the handle to crash it.
pub async fn replica(
    sim: &SimCluster,
    config: FleetLockConfig,
    name: &str,
) -> (Coordinator, JoinHandle<()>) {
    start(sim, config, name, None).await
}

/// A replica, running; with `leadership`, leading only while it says so.
async fn start(
    sim: &SimCluster,
    config: FleetLockConfig,
    name: &str,
    leadership: Option<watch::Receiver<bool>>,
) -> (Coordinator, JoinHandle<()>) {
    config.validate().unwrap();
    let mut builder = Coordinator::builder(Arc::new(sim.clone()), config)
        .clock(Arc::new(sim.clone()))
        .instance(name);
    if let Some(leadership) = leadership {
        builder = builder.leadership(leadership);
    }
    let coordinator = builder.build();
    let handle = tokio::spawn({
        let c = coordinator.clone();
        async move { c.run().await }
    });
    coordinator.wait_ready().await;
    (coordinator, handle)
}

///
/// A steady-state without a reboot gives the slot back at once (`unchangedBootId: release`),
/// so that tests of other things can free a slot without rebooting the node; the default
/// (`recover`, which waits for the kubelet to report) has its own tests.
pub fn config() -> FleetLockConfig {
    let mut config = FleetLockConfig::default();
    config.drain.request_wait = std::time::Duration::from_secs(60);
    config.group_defaults.recovery.unchanged_boot_id = fleetlock_core::UnchangedBootId::Release;
    for group in config.groups.values_mut() {
        group.recovery.unchanged_boot_id = fleetlock_core::UnchangedBootId::Release;
    }
    config
}

/// The Event reasons recorded about a node, in order.
pub fn reasons(sim: &SimCluster, node: &str) -> Vec<String> {
    sim.events()
        .into_iter()
        .filter(|e| e.regarding.name == node)
        .map(|e| e.reason)
        .collect()
}

/// Lets every task that a jump of the paused clock woke run to its next wait.
pub async fn settle() {
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
}

/// Three nodes, and a two-replica Deployment `shop/db` on n1 and n2 under a budget that keeps
/// both: every eviction waits for a replacement to be ready elsewhere (on n3), which the
/// budget never allows until the Deployment is scaled up.
pub fn db_under_a_full_budget(pod_start_secs: u64, grace_secs: i64) -> SimCluster {
    let sim = fleet(3);
    sim.edit_node("n3", |n| n.unschedulable = true).unwrap();
    sim.add_workload(
        WorkloadSpec::deployment("shop", "db")
            .replicas(2)
            .pod_start_secs(pod_start_secs)
            .grace_period(grace_secs),
    )
    .unwrap();
    sim.edit_node("n3", |n| n.unschedulable = false).unwrap();
    sim.add_budget(Budget::min_available(
        "shop",
        "db",
        LabelSelector::eq("app", "db"),
        IntOrPercent::Int(2),
    ));
    sim
}

/// The nodes holding a slot of `group`, as its Lease says (none without a Lease).
pub fn holders(sim: &SimCluster, group: &str) -> Vec<String> {
    sim.lease(NS, &fleetlock_core::group::lease_name(group))
        .map(|lease| {
            fleetlock_core::group::GroupState::from_lease(&lease)
                .unwrap()
                .holders
                .into_iter()
                .map(|h| h.node)
                .collect()
        })
        .unwrap_or_default()
}

/// Evictions the cluster answered for pods on `node` since `since` evictions in all.
pub fn evictions_on(sim: &SimCluster, node: &str, since: usize) -> Vec<String> {
    sim.evictions()
        .into_iter()
        .skip(since)
        .filter(|e| e.node.as_deref() == Some(node))
        .map(|e| format!("{}/{} at {}", e.namespace, e.name, e.at))
        .collect()
}

/// A replica that answers requests but, not leading, runs no background work.
pub async fn follower(
    sim: &SimCluster,
    config: FleetLockConfig,
    name: &str,
) -> (Coordinator, JoinHandle<()>, watch::Sender<bool>) {
    let (tx, rx) = watch::channel(false);
    let (c, run) = start(sim, config, name, Some(rx)).await;
    (c, run, tx)
}

/// `nodes` nodes, and a ReplicaSet pod `shop/slow` on n1 whose budget allows no eviction.
pub fn slow_pod_under_a_budget(nodes: usize) -> SimCluster {
    let sim = fleet(nodes);
    add_slow_pod_under_a_budget(&sim);
    sim
}

/// A ReplicaSet pod `shop/slow` on n1 whose budget allows no eviction.
pub fn add_slow_pod_under_a_budget(sim: &SimCluster) {
    sim.add_pod(
        Pod::new("shop", "slow")
            .on("n1")
            .owned_by("ReplicaSet", "slow")
            .label("app", "slow"),
    )
    .unwrap();
    sim.add_budget(Budget::min_available(
        "shop",
        "slow",
        LabelSelector::eq("app", "slow"),
        IntOrPercent::Int(1),
    ));
}
