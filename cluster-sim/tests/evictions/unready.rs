//! Unready, tolerating and finished pods: the budget's exceptions and the cordon's.

use super::*;

/// `unhealthyPodEvictionPolicy: AlwaysAllow`: a running pod that is not Ready goes whatever
/// the budget says; a Ready one still needs a disruption.
#[tokio::test(start_paused = true)]
async fn always_allow_lets_unready_pods_go_whatever_the_budget() {
    let sim = SimCluster::new();
    sim.add_node(Node::new("n1"));
    let pod = |name: &str| {
        Pod::new("shop", name)
            .on("n1")
            .owned_by("ReplicaSet", "one")
            .label("app", "one")
    };
    sim.add_pod(pod("crashing").not_ready()).unwrap();
    // One replica, minAvailable: 1: never a disruption to spend.
    let budget = Budget::min_available(
        "shop",
        "one",
        LabelSelector::eq("app", "one"),
        IntOrPercent::Int(1),
    );
    sim.add_budget(budget.clone());
    let crashing = sim.pod("shop", "crashing").unwrap();
    assert!(matches!(
        evict(&sim, &crashing).await,
        EvictionOutcome::Blocked { .. }
    ));
    sim.add_budget(budget.always_allow_unhealthy());
    assert!(matches!(
        evict(&sim, &crashing).await,
        EvictionOutcome::Evicted
    ));
    sim.add_pod(pod("healthy")).unwrap();
    let healthy = sim.pod("shop", "healthy").unwrap();
    assert!(matches!(
        evict(&sim, &healthy).await,
        EvictionOutcome::Blocked { .. }
    ));
}

/// The Eviction API lets an unready pod go without spending a disruption only while the
/// budget is satisfied and wants at least one healthy pod (`desiredHealthy > 0`). A budget
/// that wants none falls through to `disruptionsAllowed`, which is zero when nothing is
/// healthy: a lone crash-looping pod under `maxUnavailable: 1` cannot be evicted (the API
/// server's IfHealthyBudget policy, kubernetes/kubernetes#72320).
#[tokio::test(start_paused = true)]
async fn unready_pods_go_only_under_a_budget_that_wants_healthy_pods() {
    let sim = SimCluster::new();
    sim.add_node(Node::new("n1"));
    sim.add_pod(
        Pod::new("shop", "lonely")
            .on("n1")
            .owned_by("ReplicaSet", "lonely")
            .label("app", "lonely")
            .not_ready(),
    )
    .unwrap();
    sim.add_budget(Budget::max_unavailable(
        "shop",
        "lonely",
        LabelSelector::eq("app", "lonely"),
        IntOrPercent::Int(1),
    ));
    let status = sim.budget_status("shop", "lonely").unwrap();
    assert_eq!(
        (
            status.desired_healthy,
            status.current_healthy,
            status.disruptions_allowed
        ),
        (0, 0, 0)
    );
    let lonely = sim.pod("shop", "lonely").unwrap();
    let outcome = evict(&sim, &lonely).await;
    assert!(
        matches!(&outcome, EvictionOutcome::Blocked { message, .. } if message.contains("needs 0 healthy pods and has 0 currently")),
        "{outcome:?}"
    );

    // With a healthy sibling the same budget wants one healthy pod and has it: the unready
    // pod may go, and the healthy one still may not.
    sim.add_pod(
        Pod::new("shop", "sibling")
            .on("n1")
            .owned_by("ReplicaSet", "lonely")
            .label("app", "lonely"),
    )
    .unwrap();
    sim.remove_budget("shop", "lonely");
    sim.add_budget(Budget::min_available(
        "shop",
        "lonely",
        LabelSelector::eq("app", "lonely"),
        IntOrPercent::Int(1),
    ));
    let sibling = sim.pod("shop", "sibling").unwrap();
    assert!(matches!(
        evict(&sim, &sibling).await,
        EvictionOutcome::Blocked { .. }
    ));
    assert_eq!(evict(&sim, &lonely).await, EvictionOutcome::Evicted);
}

/// A cordon keeps new pods away only if they do not tolerate
/// `node.kubernetes.io/unschedulable:NoSchedule`: DaemonSet pods (the controller adds the
/// toleration) and pods with an `operator: Exists` toleration are still placed there.
#[tokio::test(start_paused = true)]
async fn pods_that_tolerate_the_cordon_are_scheduled_onto_cordoned_nodes() {
    let sim = SimCluster::new();
    sim.add_node(Node::new("n1").label("pool", "a"));
    sim.add_node(Node::new("n2").label("pool", "b"));
    sim.edit_node("n1", |n| n.unschedulable = true).unwrap();

    let plain = WorkloadSpec::deployment("shop", "web").on_nodes_labelled("pool", "a");
    sim.add_workload(plain.clone()).unwrap();
    let pending = sim.pods_of(&plain.reference());
    assert_eq!(pending.len(), 1);
    assert_eq!(
        pending[0].node_name, None,
        "a plain pod waits for the cordon to go"
    );

    let agent = WorkloadSpec::deployment("ops", "agent")
        .on_nodes_labelled("pool", "a")
        .tolerate(cluster_api::Toleration::everything());
    sim.add_workload(agent.clone()).unwrap();
    let placed = sim.pods_of(&agent.reference());
    assert_eq!(placed[0].node_name.as_deref(), Some("n1"));
    assert!(placed[0].ready);

    sim.add_workload(WorkloadSpec::daemonset("kube-system", "proxy"))
        .unwrap();
    let proxy = sim
        .pods_on("n1")
        .into_iter()
        .find(|p| p.is_daemonset_pod())
        .expect("a DaemonSet pod on the cordoned node");
    assert!(proxy.tolerates_cordon());

    // Evicted, the tolerating pod's replacement comes straight back to the cordoned node.
    let old = placed[0].clone();
    assert_eq!(evict(&sim, &old).await, EvictionOutcome::Evicted);
    advance(secs(31)).await;
    let now = sim.pods_of(&agent.reference());
    assert_eq!(now.len(), 1);
    assert_ne!(now[0].uid, old.uid);
    assert_eq!(now[0].node_name.as_deref(), Some("n1"));
}

/// Only a kubelet confirms that a deleted pod has stopped, so on a NotReady node an evicted
/// pod stays Terminating past its grace period, until the node is back.
#[tokio::test(start_paused = true)]
async fn pods_on_a_notready_node_stay_terminating_until_it_returns() {
    let (sim, _) = shop();
    let pod = pod_on(&sim, "n1");
    sim.set_node_ready("n1", false).unwrap();
    sim.remove_budget("shop", "web");
    assert_eq!(evict(&sim, &pod).await, EvictionOutcome::Evicted);
    advance(secs(600)).await;
    let still = sim.pod("shop", &pod.name).expect("still there");
    assert!(still.is_terminating());
    sim.set_node_ready("n1", true).unwrap();
    advance(secs(1)).await;
    assert!(sim.pod("shop", &pod.name).is_none());

    let records = sim.evictions();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].node.as_deref(), Some("n1"));
    assert_eq!(records[0].uid.as_deref(), Some(pod.uid.as_str()));
    assert_eq!(records[0].outcome, EvictionOutcome::Evicted);
}

/// A Job's pod that ends its work stays on its node as `Succeeded`, not ready, and a watch
/// sees the change; a drain then leaves it alone.
#[tokio::test(start_paused = true)]
async fn a_finished_pod_stays_on_its_node_as_succeeded() {
    use futures::StreamExt;

    let sim = SimCluster::new();
    sim.add_node(Node::new("n1"));
    sim.add_pod(Pod::new("batch", "etl-1").on("n1").owned_by("Job", "etl"))
        .unwrap();
    let mut watch = sim.watch_pods(&PodFilter::on_node("n1")).await.unwrap();
    let _listed = watch.next().await;

    sim.finish_pod("batch", "etl-1", PodPhase::Succeeded)
        .unwrap();
    let pod = sim.pod("batch", "etl-1").unwrap();
    assert_eq!(pod.phase, PodPhase::Succeeded);
    assert!(!pod.ready);
    assert!(pod.is_finished());
    assert_eq!(pod.node_name.as_deref(), Some("n1"));
    let seen = loop {
        match watch.next().await.unwrap().unwrap() {
            cluster_api::WatchEvent::Applied(p) => break p,
            _ => continue,
        }
    };
    assert_eq!(seen.phase, PodPhase::Succeeded);

    let err = sim
        .finish_pod("batch", "etl-1", PodPhase::Running)
        .unwrap_err();
    assert!(err.to_string().contains("Succeeded or Failed"), "{err}");
    assert!(sim.finish_pod("batch", "nope", PodPhase::Failed).is_err());
}
