//! The Eviction API, PodDisruptionBudgets, graceful termination, replacement, reboots.

mod budgets;
mod reboots;
mod unready;

use std::time::Duration;

use cluster_api::{
    ClusterApi, EvictOptions, EvictionOutcome, LabelSelector, Node, Pod, PodFilter, PodPhase,
    WorkloadRef,
};
use cluster_sim::{Budget, IntOrPercent, SimCluster, WorkloadSpec};
use tokio::time::advance;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Three nodes, a 3-replica Deployment `shop/web` (one pod per node), and a budget that keeps
/// two of them available.
fn shop() -> (SimCluster, WorkloadRef) {
    let sim = SimCluster::new();
    for n in ["n1", "n2", "n3"] {
        sim.add_node(Node::new(n));
    }
    let spec = WorkloadSpec::deployment("shop", "web")
        .replicas(3)
        .pod_start_secs(5)
        .grace_period(10);
    let r = spec.reference();
    sim.add_workload(spec).unwrap();
    sim.add_budget(Budget::min_available(
        "shop",
        "web",
        LabelSelector::eq("app", "web"),
        IntOrPercent::Int(2),
    ));
    (sim, r)
}

fn pod_on(sim: &SimCluster, node: &str) -> Pod {
    sim.pods_on(node)
        .into_iter()
        .next()
        .expect("a pod on the node")
}

async fn evict(sim: &SimCluster, pod: &Pod) -> EvictionOutcome {
    sim.evict_pod(&pod.namespace, &pod.name, &EvictOptions::default())
        .await
        .unwrap()
}
