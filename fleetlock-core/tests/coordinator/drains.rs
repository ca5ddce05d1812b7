//! A reboot cycle on the simulated cluster: grant, cordon, drain through budgets and stuck pods, approval, release.

use super::*;

#[tokio::test(start_paused = true)]
async fn a_full_cycle_drains_approves_and_gives_everything_back() {
    let sim = fleet(3);
    let web = WorkloadSpec::deployment("shop", "web")
        .replicas(3)
        .grace_period(20);
    sim.add_workload(web).unwrap();
    let (c, _run) = replica(&sim, config(), "a").await;
    let n1 = zincati("n1", "default");

    let asked = Instant::now();
    c.pre_reboot(&n1).await.unwrap();
    // Answered once the evicted pod had terminated (grace 20s), not before.
    assert_eq!(asked.elapsed(), Duration::from_secs(20));
    let node = sim.node("n1").unwrap();
    assert!(node.unschedulable);
    assert_eq!(node.annotations[CORDONED_ANNOTATION], "true");
    assert_eq!(node.annotations[STATE_ANNOTATION], "rebooting");
    assert!(sim.pods_on("n1").is_empty());
    let lease = sim.lease(NS, "fleetlock-default").unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some("n1"));

    // The node reboots; the server notices the new bootID.
    sim.reboot_node("n1").unwrap();
    advance(Duration::from_secs(60)).await;
    c.maintain().await;
    assert_eq!(
        sim.node("n1").unwrap().annotations[STATE_ANNOTATION],
        "back"
    );

    c.steady_state(&n1).await.unwrap();
    let node = sim.node("n1").unwrap();
    assert!(!node.unschedulable);
    assert!(!node.annotations.contains_key(CORDONED_ANNOTATION));
    assert_eq!(node.annotations[STATE_ANNOTATION], "ready");
    assert_eq!(
        sim.lease(NS, "fleetlock-default").unwrap().holder_identity,
        None
    );
    assert_eq!(
        reasons(&sim, "n1"),
        [
            "RebootSlotGranted",
            "Cordoned",
            "Draining",
            "RebootApproved",
            "NodeRebooted",
            "NodeRecovering",
            "Uncordoned",
            "NodeHealed"
        ]
    );
    // Every one names the Node by uid too, which is what `kubectl describe node` matches.
    let uid = sim.node("n1").unwrap().uid;
    assert!(
        sim.events()
            .iter()
            .filter(|e| e.regarding.kind == "Node")
            .all(|e| e.regarding.uid.as_deref() == Some(uid.as_str())),
        "{:?}",
        sim.events()
    );
}

#[tokio::test(start_paused = true)]
async fn requests_with_nothing_to_change_make_no_api_calls() {
    let sim = fleet(2);
    let (c, _run) = replica(&sim, config(), "a").await;
    let (n1, n2) = (zincati("n1", "default"), zincati("n2", "default"));
    c.pre_reboot(&n1).await.unwrap();

    sim.reset_calls();
    for _ in 0..10 {
        c.pre_reboot(&n1).await.unwrap(); // a holder asking again
        c.steady_state(&n2).await.unwrap(); // a node holding nothing
        assert_eq!(c.pre_reboot(&n2).await.unwrap_err().kind, Kind::LockHeld); // a busy group
    }
    assert_eq!(sim.calls().total(), 0, "{}", sim.calls());
}

#[tokio::test(start_paused = true)]
async fn a_budget_blocks_then_allows_and_approval_follows_the_last_pod_at_once() {
    // Two replicas that need 30s to start, a budget that keeps both: every eviction waits
    // for a replacement to be ready elsewhere.
    let sim = db_under_a_full_budget(30, 10);
    assert_eq!(sim.pods_on("n1").len(), 1);

    let mut config = config();
    config.drain.budget_retry = Duration::from_secs(1);
    config.drain.request_wait = Duration::from_secs(5);
    // The drain's own handling of a budget that never allows, without the pre-flight that
    // would refuse the reboot before the cordon (`preflight_*` below).
    config.drain.preflight = false;
    let (c, _run) = replica(&sim, config, "a").await;
    let n1 = zincati("n1", "default");

    // Refused by the budget: still draining, and the answer says why.
    let refusal = c.pre_reboot(&n1).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::Draining);
    assert!(
        refusal
            .value
            .contains("its disruption budget allows no eviction yet"),
        "{}",
        refusal.value
    );
    assert_eq!(Kind::Draining.status(), 423);
    assert!(
        sim.calls().get(Operation::EvictPod) > 1,
        "retried: {}",
        sim.calls()
    );

    // Make room: a replacement can start on n3 only after another pod goes, so the budget
    // never allows it. Raise the budget's room by scaling up; the drain then finishes.
    let db = WorkloadSpec::deployment("shop", "db").reference();
    sim.scale(&db, 3).unwrap();
    let leaving = sim.pods_on("n1")[0].name.clone();
    let mut gone_at = None;
    let mut approved_at = None;
    for _ in 0..1000 {
        advance(Duration::from_millis(100)).await;
        if gone_at.is_none() && sim.pod("shop", &leaving).is_none() {
            gone_at = Some(Instant::now());
        }
        let state = sim.lease(NS, "fleetlock-default").unwrap();
        if approved_at.is_none()
            && state.annotations["restart-manager.io/holders"].contains("approved")
        {
            approved_at = Some(Instant::now());
        }
        if approved_at.is_some() {
            break;
        }
    }
    let (gone, approved) = (gone_at.expect("pod left"), approved_at.expect("approved"));
    assert!(
        approved.duration_since(gone) < Duration::from_secs(1),
        "approval {:?} after the last pod left",
        approved.duration_since(gone)
    );
    c.pre_reboot(&n1).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn unmanaged_and_empty_dir_pods_are_refused_by_name_unless_allowed() {
    let sim = fleet(2);
    sim.add_pod(Pod::new("default", "debug-shell").on("n1"))
        .unwrap();
    sim.add_pod(
        Pod::new("shop", "cache-0")
            .on("n1")
            .owned_by("StatefulSet", "cache")
            .with_empty_dir(),
    )
    .unwrap();
    let n1 = zincati("n1", "default");
    let named =
        |value: &str| value.contains("default/debug-shell") && value.contains("shop/cache-0");

    // The pre-flight refuses before anything happens: no slot, no cordon, no eviction.
    let (c, run) = replica(&sim, config(), "a").await;
    let refusal = c.pre_reboot(&n1).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::DrainWouldBlock);
    assert_eq!(refusal.status(), 423);
    assert!(named(&refusal.value), "{}", refusal.value);
    assert!(!sim.node("n1").unwrap().unschedulable, "not cordoned");
    assert_eq!(
        holders(&sim, "default"),
        Vec::<String>::new(),
        "no slot held"
    );
    assert!(sim.pod("default", "debug-shell").is_some());
    assert!(reasons(&sim, "n1").contains(&"DrainWouldBlock".to_string()));
    // Asking again refuses again, and another node of the group is not kept waiting.
    assert_eq!(
        c.pre_reboot(&n1).await.unwrap_err().kind,
        Kind::DrainWouldBlock
    );
    c.pre_reboot(&zincati("n2", "default")).await.unwrap();
    c.steady_state(&zincati("n2", "default")).await.unwrap();
    run.abort();

    // Without the pre-flight the drain itself stops at those pods, by name, holding the slot.
    let mut no_preflight = config();
    no_preflight.drain.preflight = false;
    let (c, run) = replica(&sim, no_preflight, "b").await;
    let refusal = c.pre_reboot(&n1).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::DrainBlocked);
    assert!(named(&refusal.value), "{}", refusal.value);
    assert!(
        sim.pod("default", "debug-shell").is_some(),
        "nothing was evicted"
    );
    assert!(reasons(&sim, "n1").contains(&"DrainBlocked".to_string()));
    run.abort();

    // The operator decides those pods may go.
    let mut config = config();
    config.drain.delete_unmanaged = true;
    config.drain.delete_empty_dir_data = true;
    let (c, _run) = replica(&sim, config, "c").await;
    c.pre_reboot(&n1).await.unwrap();
    assert!(sim.pods_on("n1").is_empty());
}

/// A node with many blocking pods: the `DrainWouldBlock` Event that names them would pass
/// the API server's 1,024-byte limit on Event notes; it is cut, saying how much was left out,
/// rather than refused and lost.
#[tokio::test(start_paused = true)]
async fn a_refusal_naming_many_pods_is_still_recorded() {
    let sim = fleet(2);
    for i in 0..60 {
        sim.add_pod(Pod::new("default", format!("debug-shell-with-a-long-name-{i}")).on("n1"))
            .unwrap();
    }
    let (c, _run) = replica(&sim, config(), "a").await;
    let refusal = c.pre_reboot(&zincati("n1", "default")).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::DrainWouldBlock);
    let event = sim
        .events()
        .into_iter()
        .find(|e| e.reason == "DrainWouldBlock")
        .expect("the refusal is recorded");
    assert!(event.note.len() <= cluster_api::NOTE_LIMIT);
    assert!(event.note.contains("debug-shell-with-a-long-name-0"));
    assert!(event.note.ends_with("more bytes)"), "{}", event.note);
}

/// A one-replica workload with `minAvailable: 1` whose pod crash-loops: the API server
/// answers every eviction 429 (the pod is unready, but the budget is not satisfied), so the
/// pre-flight refuses before anything is cordoned; under `unhealthyPodEvictionPolicy:
/// AlwaysAllow` the same drain goes through.
#[tokio::test(start_paused = true)]
async fn preflight_refuses_a_crash_looping_pod_its_budget_never_lets_go() {
    let sim = fleet(2);
    sim.add_pod(
        Pod::new("shop", "solo-0")
            .on("n1")
            .owned_by("StatefulSet", "solo")
            .label("app", "solo")
            .not_ready(),
    )
    .unwrap();
    let budget = cluster_sim::Budget::min_available(
        "shop",
        "solo",
        cluster_api::LabelSelector::eq("app", "solo"),
        cluster_sim::IntOrPercent::Int(1),
    );
    sim.add_budget(budget.clone());
    let (c, _run) = replica(&sim, config(), "a").await;
    let n1 = zincati("n1", "default");
    let refusal = c.pre_reboot(&n1).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::DrainWouldBlock, "{refusal}");
    assert!(
        refusal.value.contains("shop/solo-0 (shop/solo)"),
        "{refusal}"
    );
    assert!(!sim.node("n1").unwrap().unschedulable, "not cordoned");
    assert_eq!(sim.calls().get(Operation::EvictPod), 0);

    sim.add_budget(budget.always_allow_unhealthy());
    let _ = c.pre_reboot(&n1).await;
    assert_eq!(holders(&sim, "default"), ["n1"]);
    assert_eq!(sim.calls().get(Operation::EvictPod), 1);
}

#[tokio::test(start_paused = true)]
async fn preflight_refuses_a_budget_that_never_allows_then_grants_once_it_can() {
    // Two replicas under minAvailable: 2: no eviction can ever happen at this scale.
    let sim = db_under_a_full_budget(1, 10);
    let (c, _run) = replica(&sim, config(), "a").await;
    let n1 = zincati("n1", "default");

    let refusal = c.pre_reboot(&n1).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::DrainWouldBlock);
    assert!(refusal.value.contains("(shop/db)"), "{}", refusal.value);
    assert!(!sim.node("n1").unwrap().unschedulable, "not cordoned");
    assert_eq!(holders(&sim, "default"), Vec::<String>::new());
    assert_eq!(sim.calls().get(Operation::EvictPod), 0);

    // The plan says the same to people, with the budget's numbers.
    let plan = c.plan_node("n1").await.unwrap();
    assert_eq!(plan.budgets.len(), 1);
    assert_eq!(plan.budgets[0].budget, "shop/db");
    assert_eq!(plan.budgets[0].verdict, BudgetVerdict::NeverAllows);
    assert_eq!(
        (
            plan.budgets[0].desired_healthy,
            plan.budgets[0].expected_pods
        ),
        (2, 2)
    );
    assert_eq!(
        c.plan_node("nope").await.unwrap_err().kind,
        Kind::UnknownNode
    );

    // Scaled up, the budget has room once the third replica is ready: granted and drained.
    let db = WorkloadSpec::deployment("shop", "db").reference();
    sim.scale(&db, 3).unwrap();
    advance(Duration::from_secs(2)).await;
    let plan = c.plan_node("n1").await.unwrap();
    assert_eq!(plan.blocked, None, "{plan:?}");
    c.pre_reboot(&n1).await.unwrap();
    assert!(sim.pods_on("n1").is_empty());
}

#[tokio::test(start_paused = true)]
async fn daemonset_mirror_and_finished_pods_stay_without_blocking() {
    let sim = fleet(2);
    sim.add_workload(WorkloadSpec::daemonset("kube-system", "agent"))
        .unwrap();
    sim.add_pod(Pod::new("kube-system", "etcd-n1").on("n1").mirror())
        .unwrap();
    sim.add_pod(
        Pod::new("batch", "report")
            .on("n1")
            .owned_by("Job", "report")
            .phase(cluster_api::PodPhase::Succeeded),
    )
    .unwrap();
    let (c, _run) = replica(&sim, config(), "a").await;
    c.pre_reboot(&zincati("n1", "default")).await.unwrap();
    let mut left: Vec<String> = sim.pods_on("n1").into_iter().map(|p| p.name).collect();
    left.sort();
    assert_eq!(left.len(), 3, "{left:?}");
    assert_eq!(sim.calls().get(Operation::EvictPod), 0);
}

#[tokio::test(start_paused = true)]
async fn a_pod_that_never_terminates_keeps_waiting_or_gives_the_slot_back() {
    for policy in [OnDrainTimeout::KeepWaiting, OnDrainTimeout::Release] {
        let sim = fleet(2);
        sim.add_pod(
            Pod::new("shop", "stubborn")
                .on("n1")
                .owned_by("ReplicaSet", "x"),
        )
        .unwrap();
        sim.set_pod_stuck("shop", "stubborn", true);
        let mut config = config();
        config.drain.timeout = Duration::from_secs(600);
        config.drain.on_timeout = policy;
        config.drain.request_wait = Duration::from_secs(30);
        let (c, _run) = replica(&sim, config, "a").await;
        let n1 = zincati("n1", "default");

        assert_eq!(c.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);
        assert!(sim.pod("shop", "stubborn").unwrap().is_terminating());
        advance(Duration::from_secs(600)).await;
        match policy {
            OnDrainTimeout::KeepWaiting => {
                let refusal = c.pre_reboot(&n1).await.unwrap_err();
                assert_eq!(refusal.kind, Kind::Draining);
                assert!(reasons(&sim, "n1").contains(&"DrainOverdue".to_string()));
                let snapshot = c.snapshot();
                let holder = &snapshot.groups[0].holders[0];
                assert!(holder.drain.as_ref().unwrap().overdue);
                assert!(
                    sim.node("n1").unwrap().unschedulable,
                    "still cordoned, still draining"
                );
            }
            OnDrainTimeout::Release => {
                advance(Duration::from_millis(10)).await;
                assert!(reasons(&sim, "n1").contains(&"DrainTimedOut".to_string()));
                assert_eq!(
                    sim.lease(NS, "fleetlock-default").unwrap().holder_identity,
                    None
                );
                assert!(
                    !sim.node("n1").unwrap().unschedulable,
                    "uncordoned when the slot went back"
                );
                // The other node can have the slot now.
                sim.remove_node("n1");
                c.pre_reboot(&zincati("n2", "default")).await.unwrap();
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn injected_api_failures_are_retried() {
    let sim = fleet(3);
    sim.add_workload(
        WorkloadSpec::deployment("shop", "web")
            .replicas(3)
            .grace_period(1),
    )
    .unwrap();
    sim.fail_next(
        Operation::EvictPod,
        3,
        Error::unavailable("etcdserver: leader changed"),
    );
    sim.force_conflicts(Operation::PatchNode, 2);
    sim.force_conflicts(Operation::ReplaceLease, 1);
    sim.force_conflicts(Operation::CreateLease, 1);
    let mut config = config();
    config.drain.retry_initial = Duration::from_secs(1);
    config.drain.request_wait = Duration::from_secs(120);
    let (c, _run) = replica(&sim, config, "a").await;
    c.pre_reboot(&zincati("n1", "default")).await.unwrap();
    assert!(sim.pods_on("n1").is_empty());
    assert!(sim.calls().get(Operation::EvictPod) >= 4);

    // A lock write that keeps failing is a clear refusal, never a grant or a panic.
    sim.fail_always(
        Operation::GetLease,
        Error::unavailable("connection refused"),
    );
    let refusal = c.steady_state(&zincati("n1", "default")).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::ClusterUnavailable);
    assert_eq!(refusal.status(), 503);
    sim.clear_faults();
    c.steady_state(&zincati("n1", "default")).await.unwrap();
    assert!(!sim.node("n1").unwrap().unschedulable);
}

#[tokio::test(start_paused = true)]
async fn an_admins_cordon_is_left_alone() {
    let sim = fleet(2);
    sim.edit_node("n1", |n| n.unschedulable = true).unwrap();
    let (c, _run) = replica(&sim, config(), "a").await;
    let n1 = zincati("n1", "default");
    c.pre_reboot(&n1).await.unwrap();
    assert!(
        !sim.node("n1")
            .unwrap()
            .annotations
            .contains_key(CORDONED_ANNOTATION)
    );
    c.steady_state(&n1).await.unwrap();
    assert!(
        sim.node("n1").unwrap().unschedulable,
        "the admin's cordon survives the cycle"
    );
}
