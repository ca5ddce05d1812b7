//! The Eviction API, PodDisruptionBudgets, graceful termination, replacement, reboots.

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

#[tokio::test(start_paused = true)]
async fn a_workload_starts_settled_and_spread() {
    let (sim, r) = shop();
    for n in ["n1", "n2", "n3"] {
        assert_eq!(sim.pods_on(n).len(), 1, "one web pod per node");
    }
    let w = sim.workload(&r).unwrap();
    assert_eq!(w.status.ready_replicas, 3);
    assert_eq!(w.status.observed_generation, Some(w.generation));
    let pod = pod_on(&sim, "n1");
    assert_eq!(pod.controller.as_ref().unwrap().kind, "ReplicaSet");
    assert!(pod.controller.as_ref().unwrap().name.starts_with("web-"));
    assert_eq!(
        sim.budget_status("shop", "web")
            .unwrap()
            .disruptions_allowed,
        1
    );
}

#[tokio::test(start_paused = true)]
async fn budget_blocks_then_allows_once_the_replacement_is_ready() {
    let (sim, r) = shop();
    sim.edit_node("n1", |n| n.unschedulable = true).unwrap();
    sim.edit_node("n2", |n| n.unschedulable = true).unwrap();

    let first = pod_on(&sim, "n1");
    assert_eq!(evict(&sim, &first).await, EvictionOutcome::Evicted);
    let terminating = sim.pod("shop", &first.name).unwrap();
    assert!(terminating.is_terminating() && !terminating.ready);

    // The ReplicaSet replaces it at once, on the only schedulable node, not yet ready.
    let replacement: Vec<Pod> = sim
        .pods_of(&r)
        .into_iter()
        .filter(|p| !p.is_terminating() && p.node_name.as_deref() == Some("n3") && !p.ready)
        .collect();
    assert_eq!(replacement.len(), 1, "{:#?}", sim.pods_of(&r));
    assert_eq!(replacement[0].phase, PodPhase::Pending);

    // Two healthy pods left, two needed: the next eviction is refused like the API's 429.
    let second = pod_on(&sim, "n2");
    match evict(&sim, &second).await {
        EvictionOutcome::Blocked { message, .. } => {
            assert!(
                message
                    .contains("Cannot evict pod as it would violate the pod's disruption budget"),
                "{message}"
            );
            assert!(
                message
                    .contains("The disruption budget web needs 2 healthy pods and has 2 currently"),
                "{message}"
            );
        }
        other => panic!("expected a budget refusal, got {other:?}"),
    }
    assert!(
        !sim.pod("shop", &second.name).unwrap().is_terminating(),
        "a refusal changes nothing"
    );

    // The replacement passes readiness after its start-up time; the budget allows one again.
    advance(secs(4)).await;
    assert!(matches!(
        evict(&sim, &second).await,
        EvictionOutcome::Blocked { .. }
    ));
    advance(secs(1)).await;
    assert_eq!(
        sim.budget_status("shop", "web")
            .unwrap()
            .disruptions_allowed,
        1
    );
    assert_eq!(evict(&sim, &second).await, EvictionOutcome::Evicted);
}

#[tokio::test(start_paused = true)]
async fn evicted_pods_terminate_after_their_grace_period() {
    let (sim, _) = shop();
    let pod = pod_on(&sim, "n1");
    evict(&sim, &pod).await;
    advance(secs(9)).await;
    assert!(
        sim.pod("shop", &pod.name).is_some(),
        "still terminating at 9s of 10"
    );
    advance(secs(1)).await;
    assert!(
        sim.pod("shop", &pod.name).is_none(),
        "gone after the 10s grace period"
    );

    // A grace period in the eviction's delete options overrides the pod's.
    let pod = pod_on(&sim, "n2");
    sim.evict_pod(
        "shop",
        &pod.name,
        &EvictOptions {
            grace_period_seconds: Some(0),
            ..EvictOptions::default()
        },
    )
    .await
    .unwrap();
    advance(Duration::ZERO).await;
    assert!(sim.pod("shop", &pod.name).is_none());

    // A uid precondition: only that pod, not another of its name.
    sim.remove_budget("shop", "web");
    let pod = pod_on(&sim, "n3");
    let stale = EvictOptions {
        uid: Some("not-this-pod".into()),
        ..EvictOptions::default()
    };
    assert_eq!(
        sim.evict_pod("shop", &pod.name, &stale).await.unwrap(),
        EvictionOutcome::Gone
    );
    assert!(!sim.pod("shop", &pod.name).unwrap().is_terminating());
    let this = EvictOptions {
        uid: Some(pod.uid.clone()),
        ..EvictOptions::default()
    };
    assert_eq!(
        sim.evict_pod("shop", &pod.name, &this).await.unwrap(),
        EvictionOutcome::Evicted
    );
}

#[tokio::test(start_paused = true)]
async fn evicting_a_pod_that_is_gone_is_a_404_and_evicting_twice_is_harmless() {
    let (sim, _) = shop();
    let outcome = sim
        .evict_pod("shop", "no-such-pod", &EvictOptions::default())
        .await
        .unwrap();
    assert_eq!(outcome, EvictionOutcome::Gone);

    let pod = pod_on(&sim, "n1");
    assert_eq!(evict(&sim, &pod).await, EvictionOutcome::Evicted);
    // Terminating pods disrupt nothing more: no budget check, no new deletion timestamp.
    let first = sim.pod("shop", &pod.name).unwrap().deletion_timestamp;
    advance(secs(2)).await;
    assert_eq!(evict(&sim, &pod).await, EvictionOutcome::Evicted);
    assert_eq!(
        sim.pod("shop", &pod.name).unwrap().deletion_timestamp,
        first
    );
}

#[tokio::test(start_paused = true)]
async fn two_budgets_over_one_pod_is_the_apis_500() {
    let (sim, _) = shop();
    sim.add_budget(Budget::max_unavailable(
        "shop",
        "web-too",
        LabelSelector::eq("app", "web"),
        IntOrPercent::Int(1),
    ));
    let pod = pod_on(&sim, "n1");
    match evict(&sim, &pod).await {
        EvictionOutcome::Failed { message } => assert_eq!(
            message,
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
        ),
        other => panic!("expected the multiple-budgets failure, got {other:?}"),
    }
    assert!(!sim.pod("shop", &pod.name).unwrap().is_terminating());
}

#[tokio::test(start_paused = true)]
async fn percentage_budgets_count_against_the_owners_scale() {
    let sim = SimCluster::new();
    for n in ["n1", "n2", "n3", "n4"] {
        sim.add_node(Node::new(n));
    }
    sim.add_workload(WorkloadSpec::deployment("db", "cache").replicas(4))
        .unwrap();
    sim.add_budget(Budget::max_unavailable(
        "db",
        "cache",
        LabelSelector::eq("app", "cache"),
        IntOrPercent::Percent(25),
    ));
    let status = sim.budget_status("db", "cache").unwrap();
    assert_eq!(
        (
            status.expected_pods,
            status.desired_healthy,
            status.disruptions_allowed
        ),
        (4, 3, 1)
    );
    assert_eq!(
        evict(&sim, &pod_on(&sim, "n1")).await,
        EvictionOutcome::Evicted
    );
    assert!(matches!(
        evict(&sim, &pod_on(&sim, "n2")).await,
        EvictionOutcome::Blocked { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn pods_that_do_not_run_skip_the_budget() {
    let sim = SimCluster::new();
    sim.add_node(Node::new("n1"));
    for (name, phase) in [("done", PodPhase::Succeeded), ("crashed", PodPhase::Failed)] {
        sim.add_pod(
            Pod::new("jobs", name)
                .on("n1")
                .label("app", "job")
                .phase(phase),
        )
        .unwrap();
    }
    sim.add_budget(Budget::min_available(
        "jobs",
        "all",
        LabelSelector::eq("app", "job"),
        IntOrPercent::Int(5),
    ));
    for name in ["done", "crashed"] {
        let outcome = sim
            .evict_pod("jobs", name, &EvictOptions::default())
            .await
            .unwrap();
        assert_eq!(outcome, EvictionOutcome::Evicted, "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn unmanaged_pods_are_not_replaced_and_stuck_pods_never_leave() {
    let sim = SimCluster::new();
    sim.add_node(Node::new("n1"));
    sim.add_pod(Pod::new("default", "debug").on("n1")).unwrap();
    sim.add_pod(
        Pod::new("default", "finalized")
            .on("n1")
            .owned_by("Job", "backup"),
    )
    .unwrap();
    sim.set_pod_stuck("default", "finalized", true);

    for name in ["debug", "finalized"] {
        sim.evict_pod("default", name, &EvictOptions::default())
            .await
            .unwrap();
    }
    advance(secs(3600)).await;
    let left: Vec<String> = sim.pods_on("n1").into_iter().map(|p| p.name).collect();
    assert_eq!(
        left,
        ["finalized"],
        "nobody recreates the unmanaged pod; the stuck one stays"
    );
    assert!(sim.pod("default", "finalized").unwrap().is_terminating());

    sim.set_pod_stuck("default", "finalized", false);
    advance(Duration::ZERO).await;
    assert!(sim.pods_on("n1").is_empty());
}

#[tokio::test(start_paused = true)]
async fn replacements_wait_for_a_schedulable_node() {
    let (sim, r) = shop();
    for n in ["n1", "n2", "n3"] {
        sim.edit_node(n, |node| node.unschedulable = true).unwrap();
    }
    sim.remove_budget("shop", "web");
    let pod = pod_on(&sim, "n1");
    evict(&sim, &pod).await;
    let pending: Vec<Pod> = sim
        .pods_of(&r)
        .into_iter()
        .filter(|p| p.node_name.is_none())
        .collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].phase, PodPhase::Pending);

    sim.add_node(Node::new("n4"));
    let placed = sim.pod("shop", &pending[0].name).unwrap();
    assert_eq!(placed.node_name.as_deref(), Some("n4"));
    advance(secs(5)).await;
    assert!(sim.pod("shop", &placed.name).unwrap().ready);
}

#[tokio::test(start_paused = true)]
async fn list_pods_by_node_is_a_field_selector() {
    let (sim, _) = shop();
    sim.add_pod(Pod::new("kube-system", "etcd-n1").on("n1").mirror())
        .unwrap();
    let on_n1 = sim.list_pods(&PodFilter::on_node("n1")).await.unwrap();
    let mut names: Vec<_> = on_n1.iter().map(|p| p.name.clone()).collect();
    names.sort();
    assert_eq!(names.len(), 2);
    assert!(on_n1.iter().any(|p| p.mirror));
    assert!(on_n1.iter().all(|p| p.node_name.as_deref() == Some("n1")));
}

/// A short reboot, as a real cluster shows it: Zincati is up (and says steady-state) before
/// the kubelet has reported, and the Node still shows the old bootID and Ready=True from
/// before, since the node controller's grace period has not run out.
#[tokio::test(start_paused = true)]
async fn a_short_reboot_shows_the_old_status_until_the_kubelet_reports() {
    let config = cluster_sim::SimConfig::default();
    assert!(config.reboot_duration + config.kubelet_start < config.node_monitor_grace_period);
    let sim = SimCluster::new();
    sim.add_node(Node::new("n1"));
    sim.add_workload(WorkloadSpec::daemonset("kube-system", "agent").pod_start_secs(3))
        .unwrap();
    let before = sim.node("n1").unwrap();
    assert!(before.ready && !before.boot_id.is_empty() && before.heartbeat.is_some());

    sim.reboot_node("n1").unwrap();
    assert_eq!(sim.os_up("n1"), Some(false));
    assert_eq!(
        sim.node("n1").unwrap(),
        before,
        "nothing is seen of the reboot yet"
    );

    advance(config.reboot_duration).await;
    assert_eq!(sim.os_up("n1"), Some(true), "Zincati runs again");
    let booted = sim.node("n1").unwrap();
    assert!(booted.ready, "stale Ready from before the reboot");
    assert_eq!(
        booted.boot_id, before.boot_id,
        "the kubelet has not reported"
    );
    assert_eq!(booted.heartbeat, before.heartbeat);
    // A kubelet that is not running reports nothing.
    sim.report_node_status("n1").unwrap();
    assert_eq!(sim.node("n1").unwrap().heartbeat, before.heartbeat);

    advance(config.kubelet_start).await;
    let up = sim.node("n1").unwrap();
    assert!(up.ready);
    assert_ne!(up.boot_id, before.boot_id);
    assert!(up.heartbeat > before.heartbeat);
    assert!(
        sim.pods_on("n1").iter().all(|p| !p.ready),
        "its containers start afresh"
    );
    advance(secs(3)).await;
    assert!(sim.pods_on("n1").iter().all(|p| p.ready));
}

/// With `node_status_report`, every running kubelet posts a fresh heartbeat that often; a
/// rebooting one does not.
#[tokio::test(start_paused = true)]
async fn running_kubelets_report_their_status_periodically() {
    let sim = SimCluster::with_config(cluster_sim::SimConfig {
        node_status_report: Some(secs(300)),
        ..cluster_sim::SimConfig::default()
    });
    sim.add_node(Node::new("n1"));
    sim.add_node(Node::new("n2"));
    let first = sim.node("n1").unwrap().heartbeat.unwrap();
    sim.reboot_node("n2").unwrap();
    let n2 = sim.node("n2").unwrap().heartbeat;
    advance(secs(299)).await;
    assert_eq!(sim.node("n1").unwrap().heartbeat, Some(first));
    advance(secs(1)).await;
    let later = sim.node("n1").unwrap().heartbeat.unwrap();
    assert_eq!(later.duration_since(first).as_secs(), 300);
    // n2 came back at 45 s, and reported then; the periodic one at 300 s too.
    assert!(sim.node("n2").unwrap().heartbeat > n2);
    assert_eq!(sim.node("n2").unwrap().heartbeat, Some(later));
}

/// A reboot longer than the grace period: the node controller marks the node NotReady
/// (Unknown) and its pods NotReady, until the kubelet reports after the boot.
#[tokio::test(start_paused = true)]
async fn a_long_reboot_turns_the_node_not_ready_after_the_grace_period() {
    let config = cluster_sim::SimConfig {
        reboot_duration: secs(120),
        ..cluster_sim::SimConfig::default()
    };
    let sim = SimCluster::with_config(config.clone());
    sim.add_node(Node::new("n1"));
    sim.add_workload(WorkloadSpec::daemonset("kube-system", "agent").pod_start_secs(3))
        .unwrap();
    let before = sim.node("n1").unwrap();
    sim.reboot_node("n1").unwrap();
    advance(config.node_monitor_grace_period - secs(1)).await;
    assert!(sim.node("n1").unwrap().ready);
    advance(secs(1)).await;
    let down = sim.node("n1").unwrap();
    assert!(!down.ready);
    assert_eq!(down.boot_id, before.boot_id);
    assert_eq!(
        down.heartbeat, before.heartbeat,
        "the kubelet posted nothing"
    );
    assert!(
        sim.pods_on("n1").iter().all(|p| !p.ready),
        "pods on a down node are not ready"
    );
    advance(config.reboot_duration + config.kubelet_start - config.node_monitor_grace_period).await;
    let up = sim.node("n1").unwrap();
    assert!(up.ready);
    assert_ne!(up.boot_id, before.boot_id);
    advance(secs(3)).await;
    assert!(sim.pods_on("n1").iter().all(|p| p.ready));
}

#[tokio::test(start_paused = true)]
async fn a_deleted_node_takes_its_pods_with_it() {
    let (sim, r) = shop();
    sim.remove_budget("shop", "web");
    sim.remove_node("n3");
    assert!(sim.pods_on("n3").is_empty());
    assert!(sim.node("n3").is_none());
    let active = sim
        .pods_of(&r)
        .into_iter()
        .filter(|p| !p.is_terminating())
        .count();
    assert_eq!(active, 3, "the ReplicaSet replaced the collected pod");
}

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
