//! Auditors see every accepted write as it is accepted, with the cluster as it is then.

use std::collections::BTreeMap;
use std::sync::Arc;

use cluster_api::{ClusterApi, EvictOptions, Lease, Node, NodePatch, Timestamp};
use cluster_sim::{Auditor, ClusterView, SimCluster, WorkloadSpec, Write};
use parking_lot::Mutex;

/// Writes one line per accepted write, with what the view showed at that moment.
#[derive(Default)]
struct Log(Mutex<Vec<String>>);

impl Auditor for Log {
    fn audit(&self, write: &Write<'_>, cluster: &ClusterView<'_>) {
        let line = match write {
            Write::Lease { before, after } => format!(
                "lease {} -> {} (namespace holds {})",
                before.map_or("none".into(), |l| l.holder().unwrap_or("-").to_string()),
                after.map_or("none".into(), |l| l.holder().unwrap_or("-").to_string()),
                cluster.leases("locks").count()
            ),
            Write::Node { before, after, by } => format!(
                "node {} unschedulable {} -> {} by {by:?}",
                after.name, before.unschedulable, after.unschedulable
            ),
            Write::EvictionRequested { node, .. } => {
                format!("eviction requested on {}", node.unwrap_or("no node"))
            }
            Write::Eviction(record) => {
                let node = record.node.clone().unwrap_or_default();
                let terminating = cluster
                    .pods_on(&node)
                    .iter()
                    .filter(|p| p.is_terminating())
                    .count();
                format!("eviction on {node}: {terminating} terminating there now")
            }
            Write::WorkloadPatchRequested { workload, changes } => {
                format!(
                    "patch of {} requested: {} changes",
                    workload.name,
                    changes.len()
                )
            }
            Write::Workload { before, after } => format!(
                "workload {} generation {} -> {}",
                after.name, before.generation, after.generation
            ),
            _ => "other".into(),
        };
        self.0.lock().push(line);
    }
}

#[tokio::test(start_paused = true)]
async fn an_auditor_sees_each_accepted_write_with_the_cluster_as_it_was_then() {
    let sim = SimCluster::new();
    sim.add_node(Node::new("n1"));
    let spec = WorkloadSpec::deployment("shop", "web").replicas(1);
    let web = spec.reference();
    sim.add_workload(spec).unwrap();
    let log = Arc::new(Log::default());
    sim.add_auditor(log.clone());

    // A lease taken, then one replace refused for its stale version (not audited), then freed.
    let mut lease = Lease::new("locks", "a");
    lease.holder_identity = Some("alice".into());
    lease.acquire_time = Some(Timestamp::UNIX_EPOCH);
    let created = sim.create_lease(&lease).await.unwrap();
    let mut stale = created.clone();
    stale.resource_version = "1".into();
    assert!(sim.replace_lease(&stale).await.is_err());
    sim.delete_lease("locks", "a", None).await.unwrap();

    // A cordon through the API, and an admin's uncordon by hand.
    let cordon = NodePatch {
        unschedulable: Some(true),
        ..NodePatch::default()
    };
    sim.patch_node("n1", &cordon).await.unwrap();
    // A patch that changes nothing is no write.
    sim.patch_node("n1", &cordon).await.unwrap();
    sim.edit_node("n1", |n| n.unschedulable = false).unwrap();

    let pod = sim.pods_on("n1").remove(0);
    // An eviction whose uid precondition names another pod asks for one that is gone: on no
    // node.
    let stale = EvictOptions {
        uid: Some("an-earlier-pod".into()),
        ..EvictOptions::default()
    };
    sim.evict_pod("shop", &pod.name, &stale).await.unwrap();
    sim.evict_pod("shop", &pod.name, &EvictOptions::default())
        .await
        .unwrap();

    let restart: BTreeMap<String, Option<String>> = [(
        "kubectl.kubernetes.io/restartedAt".to_string(),
        Some("now".to_string()),
    )]
    .into_iter()
    .collect();
    sim.patch_template_annotations(&web, &restart)
        .await
        .unwrap();

    assert_eq!(
        *log.0.lock(),
        [
            "lease none -> alice (namespace holds 1)",
            "lease alice -> none (namespace holds 0)",
            "node n1 unschedulable false -> true by Client",
            "node n1 unschedulable true -> false by Operator",
            "eviction requested on no node",
            "eviction on n1: 0 terminating there now",
            "eviction requested on n1",
            "eviction on n1: 1 terminating there now",
            "patch of web requested: 1 changes",
            "workload web generation 1 -> 2",
        ]
    );
}
