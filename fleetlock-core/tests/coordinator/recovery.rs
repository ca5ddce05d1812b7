//! After a steady-state: the slot kept, `recovering`, until the node and the workloads its drain
//! evicted are back; `minGap` from the return; what an unchanged bootID means.

use cluster_api::LabelSelector;
use cluster_sim::{Budget, IntOrPercent};
use fleetlock_core::UnchangedBootId;
use fleetlock_core::group::GroupState;

use super::*;

/// The shared test config, with the default `unchangedBootId: recover` these tests are about.
pub(super) fn config() -> fleetlock_core::FleetLockConfig {
    let mut config = super::config();
    config.group_defaults.recovery.unchanged_boot_id = UnchangedBootId::Recover;
    for group in config.groups.values_mut() {
        group.recovery.unchanged_boot_id = UnchangedBootId::Recover;
    }
    config
}

pub(super) fn holder_phase(sim: &cluster_sim::SimCluster) -> Option<HolderPhase> {
    let lease = sim.lease(NS, "fleetlock-default")?;
    GroupState::from_lease(&lease)
        .unwrap()
        .holders
        .first()
        .map(|h| h.phase)
}

/// Three nodes and `shop/web`, three replicas (one per node) under a budget allowing one
/// unavailable, whose new pods take `start_secs` to pass readiness.
pub(super) fn web_under_budget(start_secs: u64) -> cluster_sim::SimCluster {
    let sim = fleet(3);
    sim.add_workload(
        WorkloadSpec::deployment("shop", "web")
            .replicas(3)
            .pod_start_secs(start_secs)
            .grace_period(5),
    )
    .unwrap();
    sim.add_budget(Budget::max_unavailable(
        "shop",
        "web",
        LabelSelector::eq("app", "web"),
        IntOrPercent::Int(1),
    ));
    assert_eq!(sim.pods_on("n1").len(), 1, "a web pod runs on n1");
    sim
}

/// The case: a rebooted node whose evicted workload has not recovered keeps its slot,
/// and the next node waits until it has.
#[tokio::test(start_paused = true)]
async fn the_next_node_waits_until_the_evicted_workload_is_available_again() {
    // The replacement of n1's web pod takes 10 minutes to become ready.
    let sim = web_under_budget(600);
    let (c, _run) = replica(&sim, config(), "a").await;
    let (n1, n2) = (zincati("n1", "default"), zincati("n2", "default"));
    c.pre_reboot(&n1).await.unwrap();
    let granted = &c.snapshot().groups[0].holders[0];
    assert_eq!(granted.evicts, ["PodDisruptionBudget shop/web"]);

    sim.reboot_node("n1").unwrap();
    advance(Duration::from_secs(60)).await;
    settle().await;
    assert!(sim.node("n1").unwrap().ready);
    c.steady_state(&n1).await.unwrap();

    // Answered 200 and uncordoned, but the slot stays: the budget is one pod short.
    let node = sim.node("n1").unwrap();
    assert!(
        !node.unschedulable,
        "our cordon is undone at the steady-state"
    );
    assert_eq!(node.annotations[STATE_ANNOTATION], "recovering");
    assert_eq!(holder_phase(&sim), Some(HolderPhase::Recovering));
    let holder = c.snapshot().groups[0].holders[0].clone();
    assert_eq!(
        holder.waiting_for,
        ["PodDisruptionBudget shop/web to be available again"]
    );
    assert!(holder.returned_at.is_some());
    assert_eq!(c.pre_reboot(&n2).await.unwrap_err().kind, Kind::LockHeld);
    let again = c.pre_reboot(&n1).await.unwrap_err();
    assert_eq!(again.kind, Kind::NodeRecovering);
    assert!(
        again.value.contains("PodDisruptionBudget shop/web"),
        "{again}"
    );
    // Steady-state again (Zincati restarted, say) is still a 200 and changes nothing.
    c.steady_state(&n1).await.unwrap();
    assert_eq!(holder_phase(&sim), Some(HolderPhase::Recovering));

    // Maintenance looks again and again; the slot stays while the budget is short.
    advance(Duration::from_secs(400)).await;
    settle().await;
    assert_eq!(holder_phase(&sim), Some(HolderPhase::Recovering));

    // The replacement passes readiness; the next look gives the slot back.
    advance(Duration::from_secs(230)).await;
    settle().await;
    assert_eq!(holder_phase(&sim), None, "healed: the slot is free");
    assert_eq!(
        sim.node("n1").unwrap().annotations[STATE_ANNOTATION],
        "ready"
    );
    let lease = sim.lease(NS, "fleetlock-default").unwrap();
    assert!(
        GroupState::from_lease(&lease)
            .unwrap()
            .last_return
            .is_some()
    );
    assert!(reasons(&sim, "n1").ends_with(&[
        "NodeRecovering".to_string(),
        "Uncordoned".to_string(),
        "NodeHealed".to_string()
    ]));
    // n2 gets the slot (its drain may wait on the budget like any other).
    let _ = c.pre_reboot(&n2).await;
    assert_eq!(holders(&sim, "default"), ["n2"]);
}

/// A reboot longer than the node controller's grace period: the node is NotReady when
/// Zincati says steady-state, and keeps its slot until its kubelet reports Ready.
#[tokio::test(start_paused = true)]
async fn a_node_that_stays_not_ready_keeps_its_slot_until_ready() {
    let sim_config = cluster_sim::SimConfig {
        reboot_duration: Duration::from_secs(120),
        ..cluster_sim::SimConfig::default()
    };
    let sim = cluster_sim::SimCluster::with_config(sim_config.clone());
    sim.add_fleet(2);
    let (c, _run) = replica(&sim, config(), "a").await;
    let n1 = zincati("n1", "default");
    c.pre_reboot(&n1).await.unwrap();
    sim.reboot_node("n1").unwrap();
    advance(sim_config.reboot_duration).await;
    settle().await;
    assert!(!sim.node("n1").unwrap().ready);
    // Zincati says steady-state before the kubelet reports Ready.
    c.steady_state(&n1).await.unwrap();
    assert_eq!(holder_phase(&sim), Some(HolderPhase::Recovering));
    let waiting = c.snapshot().groups[0].holders[0].waiting_for.clone();
    assert_eq!(waiting.len(), 2, "{waiting:?}");
    assert!(waiting[0].contains("kubelet to report"), "{waiting:?}");
    assert_eq!(waiting[1], "the node to be Ready");
    // The kubelet reports (after its start time): the node's change is looked at at once,
    // without waiting for the next maintenance pass.
    advance(sim_config.kubelet_start).await;
    settle().await;
    assert_eq!(holder_phase(&sim), None);
    assert_eq!(reasons(&sim, "n1").last().unwrap(), "NodeHealed");
}

/// Zincati stops saying steady-state at its first 200. A replica whose lock and node watches
/// both lag (one slow connection carries both) answers that 200 from caches that do not yet
/// show the grant, and changes nothing: the node, back from its reboot, would keep its slot
/// and our cordon for good. Once it has been back for `steadyStateWait` without a steady-state
/// that did something, it is taken as returned.
#[tokio::test(start_paused = true)]
async fn a_node_back_without_a_steady_state_that_counted_is_taken_as_returned() {
    use cluster_sim::{HeldWatch, Operation};
    let sim = cluster_sim::SimCluster::new();
    sim.add_fleet(2);
    let mut config = config();
    for group in config.groups.values_mut() {
        group.steady_state_wait = Duration::from_secs(600);
    }
    let (a, _run_a) = replica(&sim, config.clone(), "a").await;
    let lagging = sim.client();
    let (b, _run_b) = replica(&lagging, config, "b").await;
    for op in [Operation::WatchLeases, Operation::WatchNodes] {
        lagging.hold_watches(HeldWatch::all(op), true);
    }
    let n1 = zincati("n1", "default");
    a.pre_reboot(&n1).await.unwrap();
    sim.reboot_node("n1").unwrap();
    while sim.os_up("n1") != Some(true) {
        advance(Duration::from_secs(5)).await;
    }
    b.steady_state(&n1).await.unwrap();
    assert_eq!(
        holder_phase(&sim),
        Some(HolderPhase::Approved),
        "the lagging replica's 200 changed nothing"
    );
    // The kubelet reports the new boot; Zincati says nothing more. Maintenance looks every
    // few seconds.
    let back = sim.now();
    while sim.now().duration_since(back).as_secs() < 500 {
        advance(Duration::from_secs(5)).await;
        settle().await;
    }
    assert_eq!(holder_phase(&sim), Some(HolderPhase::Approved), "not yet");
    while sim.now().duration_since(back).as_secs() < 700 {
        advance(Duration::from_secs(5)).await;
        settle().await;
    }
    assert_eq!(
        holder_phase(&sim),
        None,
        "taken as returned, healed, given back"
    );
    assert!(!sim.node("n1").unwrap().unschedulable, "our cordon undone");
    assert!(
        reasons(&sim, "n1").contains(&"SteadyStateMissing".to_string()),
        "{:?}",
        reasons(&sim, "n1")
    );
}

/// A heal names the grant it healed, and never moves the group's last return back: a
/// replica whose clock runs ahead may have stamped a later one.
#[tokio::test(start_paused = true)]
async fn a_heal_names_its_grant_and_keeps_a_later_last_return() {
    let sim = cluster_sim::SimCluster::new();
    sim.add_fleet(2);
    let (c, _run) = replica(&sim, config(), "a").await;
    let n1 = zincati("n1", "default");
    c.pre_reboot(&n1).await.unwrap();
    let lease = sim.lease(NS, "fleetlock-default").unwrap();
    let grant = GroupState::from_lease(&lease).unwrap().holders[0].grant();
    assert!(grant.starts_with("n1@"), "{grant}");
    // An earlier heal, stamped by a replica whose clock runs an hour ahead.
    let ahead = sim.now() + jiff::SignedDuration::from_hours(1);
    let mut lease = lease;
    lease.annotations.insert(
        fleetlock_core::group::LAST_RETURN_ANNOTATION.into(),
        ahead.to_string(),
    );
    cluster_api::ClusterApi::replace_lease(&sim, &lease)
        .await
        .unwrap();
    sim.reboot_node("n1").unwrap();
    while sim.os_up("n1") != Some(true) {
        advance(Duration::from_secs(5)).await;
    }
    c.steady_state(&n1).await.unwrap();
    advance(Duration::from_secs(120)).await;
    settle().await;
    assert_eq!(holder_phase(&sim), None, "healed");
    let state = GroupState::from_lease(&sim.lease(NS, "fleetlock-default").unwrap()).unwrap();
    assert_eq!(state.last_healed, Some(grant));
    assert_eq!(state.last_return, Some(ahead));
}

#[tokio::test(start_paused = true)]
async fn min_gap_counts_from_the_return_not_the_approval() {
    let sim = web_under_budget(120);
    let mut config = config();
    config.groups.get_mut("default").unwrap().min_gap = Duration::from_secs(600);
    let (c, _run) = replica(&sim, config, "a").await;
    let (n1, n2) = (zincati("n1", "default"), zincati("n2", "default"));
    c.pre_reboot(&n1).await.unwrap();
    let approved = sim.now();
    sim.reboot_node("n1").unwrap();
    advance(Duration::from_secs(60)).await;
    settle().await;
    c.steady_state(&n1).await.unwrap();
    // The replacement is ready 120s after it was bound; the next look heals the node.
    advance(Duration::from_secs(90)).await;
    settle().await;
    assert_eq!(holder_phase(&sim), None);
    let returned = GroupState::from_lease(&sim.lease(NS, "fleetlock-default").unwrap())
        .unwrap()
        .last_return
        .unwrap();
    assert!(returned > approved);

    // 600s after the approval, but not after the return: too soon.
    let since_approval = sim.now().duration_since(approved).as_secs();
    advance(Duration::from_secs(
        600 - u64::try_from(since_approval).unwrap(),
    ))
    .await;
    let refusal = c.pre_reboot(&n2).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::TooSoon);
    assert!(
        refusal.value.contains("after the last node healed"),
        "{refusal}"
    );
    let left = 600 - sim.now().duration_since(returned).as_secs();
    advance(Duration::from_secs(u64::try_from(left).unwrap())).await;
    let _ = c.pre_reboot(&n2).await;
    assert_eq!(holders(&sim, "default"), ["n2"]);
}

#[tokio::test(start_paused = true)]
async fn the_slot_goes_only_after_the_settle_time() {
    let sim = fleet(2);
    let mut config = config();
    config.groups.get_mut("default").unwrap().recovery.settle = Duration::from_secs(120);
    let (c, _run) = replica(&sim, config, "a").await;
    let (n1, n2) = (zincati("n1", "default"), zincati("n2", "default"));
    c.pre_reboot(&n1).await.unwrap();
    sim.reboot_node("n1").unwrap();
    advance(Duration::from_secs(60)).await;
    settle().await;
    c.steady_state(&n1).await.unwrap();
    let holder = c.snapshot().groups[0].holders[0].clone();
    assert_eq!(holder.phase, HolderPhase::Recovering);
    assert!(holder.waiting_for.is_empty(), "{:?}", holder.waiting_for);
    advance(Duration::from_secs(119)).await;
    settle().await;
    assert_eq!(c.pre_reboot(&n2).await.unwrap_err().kind, Kind::LockHeld);
    advance(Duration::from_secs(1)).await;
    settle().await;
    assert_eq!(holder_phase(&sim), None);
    c.pre_reboot(&n2).await.unwrap();
}

/// Zincati says steady-state although the node never rebooted (its update failed to
/// finalize): each policy does what docs/fleetlock.md says.
#[tokio::test(start_paused = true)]
async fn a_steady_state_without_a_reboot_follows_the_policy() {
    for policy in [
        UnchangedBootId::Recover,
        UnchangedBootId::Wait,
        UnchangedBootId::Release,
    ] {
        let sim = fleet(2);
        let mut config = config();
        config
            .groups
            .get_mut("default")
            .unwrap()
            .recovery
            .unchanged_boot_id = policy;
        let (c, run) = replica(&sim, config, "a").await;
        let n1 = zincati("n1", "default");
        c.pre_reboot(&n1).await.unwrap();
        c.steady_state(&n1).await.unwrap();
        assert!(!sim.node("n1").unwrap().unschedulable, "{policy:?}");
        // Released at once, nobody can tell yet whether the node rebooted; otherwise the
        // warning waits for the kubelet to report (it usually shows the new boot).
        let warned = || reasons(&sim, "n1").contains(&"RebootNotObserved".to_string());
        assert_eq!(warned(), policy == UnchangedBootId::Release, "{policy:?}");
        match policy {
            UnchangedBootId::Recover => {
                // Healed once the kubelet has reported since the steady-state.
                advance(Duration::from_secs(10)).await;
                settle().await;
                assert_eq!(holder_phase(&sim), Some(HolderPhase::Recovering));
                sim.report_node_status("n1").unwrap();
                advance(Duration::from_secs(15)).await;
                settle().await;
                assert_eq!(holder_phase(&sim), None);
                assert!(reasons(&sim, "n1").contains(&"NodeHealed".to_string()));
                assert!(warned(), "the kubelet reported the old bootID: no reboot");
            }
            UnchangedBootId::Release => {
                assert_eq!(holder_phase(&sim), None);
                assert!(!reasons(&sim, "n1").contains(&"NodeHealed".to_string()));
            }
            UnchangedBootId::Wait => {
                assert_eq!(holder_phase(&sim), Some(HolderPhase::Recovering));
                let waiting = c.snapshot().groups[0].holders[0].waiting_for.clone();
                assert!(waiting[0].contains("new bootID"), "{waiting:?}");
                // The reboot happens after all; once the node is Ready with its new bootID,
                // it has healed.
                sim.reboot_node("n1").unwrap();
                advance(Duration::from_secs(45)).await;
                settle().await;
                assert_eq!(holder_phase(&sim), None);
            }
        }
        run.abort();
    }
}

/// Recovery off: the slot goes at the steady-state, whatever the workloads are doing.
#[tokio::test(start_paused = true)]
async fn without_recovery_the_slot_goes_at_the_steady_state() {
    let sim = web_under_budget(600);
    let mut config = config();
    config.groups.get_mut("default").unwrap().recovery.enabled = false;
    let (c, _run) = replica(&sim, config, "a").await;
    let (n1, n2) = (zincati("n1", "default"), zincati("n2", "default"));
    c.pre_reboot(&n1).await.unwrap();
    assert!(c.snapshot().groups[0].holders[0].evicts.is_empty());
    sim.reboot_node("n1").unwrap();
    advance(Duration::from_secs(60)).await;
    c.steady_state(&n1).await.unwrap();
    assert_eq!(holder_phase(&sim), None);
    assert_eq!(
        sim.node("n1").unwrap().annotations[STATE_ANNOTATION],
        "ready"
    );
    // The budget is still one pod short, so n2's drain waits; but the slot was free.
    assert_eq!(c.pre_reboot(&n2).await.unwrap_err().kind, Kind::Draining);
}
