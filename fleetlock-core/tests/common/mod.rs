//! Fixtures shared by the coordinator tests.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::sync::Arc;

use cluster_api::Node;
use cluster_sim::{SimCluster, machine_id_for};
use fleetlock_core::{ClientParams, Coordinator, FleetLockConfig, zincati_id};
use tokio::task::JoinHandle;

pub const NS: &str = "restart-manager";

/// Nodes `n1`..`n<count>`, each with a machine id derived from its name.
pub fn fleet(count: usize) -> SimCluster {
    let sim = SimCluster::new();
    for i in 1..=count {
        let name = format!("n{i}");
        sim.add_node(Node::new(&name).machine_id(machine_id_for(&name)));
    }
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
    config.validate().unwrap();
    let coordinator = Coordinator::builder(Arc::new(sim.clone()), config)
        .clock(Arc::new(sim.clone()))
        .instance(name)
        .build();
    let handle = tokio::spawn({
        let c = coordinator.clone();
        async move { c.run().await }
    });
    coordinator.wait_ready().await;
    (coordinator, handle)
}

pub fn config() -> FleetLockConfig {
    let mut config = FleetLockConfig::default();
    config.drain.request_wait = std::time::Duration::from_secs(60);
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
