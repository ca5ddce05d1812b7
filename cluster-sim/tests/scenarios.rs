//! Scenario files describe a cluster in YAML.

use cluster_api::{ClusterApi, EvictOptions, EvictionOutcome, WorkloadKind, WorkloadRef};
use cluster_sim::{Scenario, ScenarioError, SimCluster};

const SHOP: &str = r#"
startTime: 2026-03-02T08:00:00Z
nodes:
  - name: worker
    count: 3
    labels:
      fleetlock.coreos.com/group: workers
  - name: cp
    machineID: 0123456789abcdef0123456789abcdef
    unschedulable: true
workloads:
  - kind: Deployment
    namespace: shop
    name: web
    replicas: 3
    podStartSeconds: 5
  - kind: DaemonSet
    namespace: kube-system
    name: agent
  - kind: StatefulSet
    namespace: shop
    name: db
    replicas: 2
budgets:
  - namespace: shop
    name: web
    selector:
      matchLabels: {app: web}
    minAvailable: 2
  - namespace: shop
    name: db
    selector:
      matchLabels: {app: db}
    maxUnavailable: "50%"
pods:
  - namespace: kube-system
    name: etcd-cp
    node: cp
    mirror: true
  - namespace: default
    name: debug
    node: worker-1
    emptyDir: true
  - namespace: batch
    name: report
    node: worker-2
    owner: {kind: Job, name: report}
    phase: Succeeded
"#;

#[tokio::test(start_paused = true)]
async fn a_scenario_builds_the_cluster_it_describes() {
    let sim = SimCluster::from_yaml(SHOP).unwrap();
    assert_eq!(sim.now().to_string(), "2026-03-02T08:00:00Z");
    let names: Vec<String> = sim.nodes().into_iter().map(|n| n.name).collect();
    assert_eq!(names, ["cp", "worker-1", "worker-2", "worker-3"]);
    let cp = sim.node("cp").unwrap();
    assert!(cp.unschedulable);
    assert_eq!(cp.machine_id, "0123456789abcdef0123456789abcdef");
    let w1 = sim.node("worker-1").unwrap();
    assert_eq!(w1.labels["fleetlock.coreos.com/group"], "workers");
    assert_eq!(w1.machine_id.len(), 32);
    assert_ne!(w1.machine_id, sim.node("worker-2").unwrap().machine_id);

    // Workloads are running; the cordoned node only got the DaemonSet's pod.
    let web = sim
        .workload(&WorkloadRef::new(WorkloadKind::Deployment, "shop", "web"))
        .unwrap();
    assert_eq!(web.status.available_replicas, 3);
    let agent = sim
        .workload(&WorkloadRef::new(
            WorkloadKind::DaemonSet,
            "kube-system",
            "agent",
        ))
        .unwrap();
    assert_eq!(agent.status.available_replicas, 4);
    let on_cp: Vec<String> = sim.pods_on("cp").into_iter().map(|p| p.name).collect();
    assert_eq!(on_cp.len(), 2, "{on_cp:?}");
    assert!(on_cp.contains(&"etcd-cp".to_string()));

    let debug = sim.pod("default", "debug").unwrap();
    assert!(debug.empty_dir && debug.controller.is_none());
    assert!(sim.pod("kube-system", "etcd-cp").unwrap().mirror);
    assert!(sim.pod("batch", "report").unwrap().is_finished());

    // The budgets are live: db allows one of two down.
    assert_eq!(
        sim.budget_status("shop", "db").unwrap().disruptions_allowed,
        1
    );
    let db0 = sim
        .evict_pod("shop", "db-0", &EvictOptions::default())
        .await
        .unwrap();
    assert_eq!(db0, EvictionOutcome::Evicted);
    let db1 = sim
        .evict_pod("shop", "db-1", &EvictOptions::default())
        .await
        .unwrap();
    assert!(matches!(db1, EvictionOutcome::Blocked { .. }));
}

fn error_of(yaml: &str) -> String {
    match SimCluster::from_yaml(yaml) {
        Ok(_) => panic!("accepted: {yaml}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(start_paused = true)]
async fn bad_scenarios_say_what_and_where() {
    let err = error_of("nodes:\n  - name: a\n    colour: blue\n");
    assert!(err.contains("colour"), "{err}");
    assert!(err.contains("line 3"), "{err}");

    let err = error_of("workloads:\n  - kind: CronJob\n    namespace: a\n    name: b\n");
    assert!(err.contains("CronJob"), "{err}");

    let err = error_of("nodes:\n  - name: Bad_Name\n");
    assert!(err.contains("\"Bad_Name\" is not a valid name"), "{err}");

    let err = error_of("nodes:\n  - name: a\n  - name: a\n");
    assert!(err.contains("listed twice"), "{err}");

    let err = error_of(
        "budgets:\n  - namespace: a\n    name: b\n    selector: {}\n    minAvailable: \"lots\"\n",
    );
    assert!(err.contains("\"lots\""), "{err}");

    let err = error_of(
        "nodes:\n  - name: n\nworkloads:\n  - kind: DaemonSet\n    namespace: a\n    name: b\n    replicas: 3\n",
    );
    assert!(err.contains("a DaemonSet has no replicas"), "{err}");

    let err = error_of("pods:\n  - namespace: a\n    name: b\n    node: nowhere\n");
    assert!(err.contains("\"nowhere\", which does not exist"), "{err}");

    assert!(matches!(
        Scenario::from_yaml("nodes: [").unwrap_err(),
        ScenarioError::Parse(_)
    ));
}

#[test]
fn an_empty_scenario_is_an_empty_cluster() {
    let scenario = Scenario::from_yaml("{}").unwrap();
    assert!(scenario.nodes.is_empty() && scenario.workloads.is_empty());
}
