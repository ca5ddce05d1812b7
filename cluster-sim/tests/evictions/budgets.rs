//! The Eviction API and PodDisruptionBudgets: what goes, what waits, what is replaced.

use super::*;

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
