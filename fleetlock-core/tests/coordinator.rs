//! The coordinator on the simulated cluster: grants, drains, approvals, releases, policies.

mod common;

use std::time::Duration;

use cluster_api::{Error, Pod};
use cluster_sim::{Operation, WorkloadSpec};
use common::*;
use fleetlock_core::nodes::{CORDONED_ANNOTATION, STATE_ANNOTATION};
use fleetlock_core::{GroupConfig, Kind, OnDrainTimeout, UnknownGroups};
use tokio::time::{Instant, advance};

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
            "RebootSlotReleased",
            "Uncordoned"
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
    config.drain.retry_initial = Duration::from_secs(1);
    config.drain.retry_max = Duration::from_secs(1);
    config.drain.request_wait = Duration::from_secs(5);
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
    let (c, run) = replica(&sim, config(), "a").await;
    let n1 = zincati("n1", "default");

    let refusal = c.pre_reboot(&n1).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::DrainBlocked);
    assert!(
        refusal.value.contains("default/debug-shell"),
        "{}",
        refusal.value
    );
    assert!(refusal.value.contains("shop/cache-0"), "{}", refusal.value);
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
    let (c, _run) = replica(&sim, config, "b").await;
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

#[tokio::test(start_paused = true)]
async fn policies_refuse_with_their_own_kind() {
    let sim = fleet(4);
    sim.add_pod(
        Pod::new("ops", "backup")
            .on("n3")
            .owned_by("Job", "backup")
            .label("app", "backup"),
    )
    .unwrap();
    let mut config = config();
    config.groups.insert(
        "night".into(),
        GroupConfig {
            windows: vec![
                fleetlock_core::window::RebootWindow::parse(&[], "01:00", "03:00", None).unwrap(),
            ],
            ..GroupConfig::default()
        },
    );
    config.groups.insert(
        "frozen".into(),
        GroupConfig {
            paused: true,
            ..GroupConfig::default()
        },
    );
    config.groups.insert(
        "careful".into(),
        GroupConfig {
            slots: 5,
            min_gap: Duration::from_secs(600),
            blocking_pods: vec!["app=backup".parse().unwrap()],
            ..GroupConfig::default()
        },
    );
    // The same nodes try every group here: no group label binds them.
    config.group_label = String::new();
    let (c, _run) = replica(&sim, config, "a").await;

    // The simulation starts on a Monday at 09:00 UTC: outside 01:00-03:00.
    let refusal = c.pre_reboot(&zincati("n1", "night")).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::OutsideWindow);
    assert!(
        refusal.value.contains("next opens at 2026-01-06 01:00"),
        "{}",
        refusal.value
    );
    assert_eq!(
        c.pre_reboot(&zincati("n1", "frozen"))
            .await
            .unwrap_err()
            .kind,
        Kind::GroupPaused
    );
    let refusal = c.pre_reboot(&zincati("n3", "careful")).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::BlockedByPods);
    assert!(refusal.value.contains("ops/backup"));

    c.pre_reboot(&zincati("n1", "careful")).await.unwrap();
    let refusal = c.pre_reboot(&zincati("n2", "careful")).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::TooSoon, "{refusal}");
    advance(Duration::from_secs(600)).await;
    c.pre_reboot(&zincati("n2", "careful")).await.unwrap();

    // Runtime pause, for every replica, through the Lease.
    c.set_paused("careful", true).await.unwrap();
    advance(Duration::from_secs(600)).await;
    let refusal = c.pre_reboot(&zincati("n4", "careful")).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::GroupPaused);
    assert!(refusal.value.contains("by an operator"));
    // Holders are not affected by a pause.
    c.pre_reboot(&zincati("n1", "careful")).await.unwrap();
    c.set_paused("careful", false).await.unwrap();
    c.pre_reboot(&zincati("n4", "careful")).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn unknown_groups_and_unknown_nodes() {
    let sim = fleet(1);
    let (c, _run) = replica(&sim, config(), "a").await;
    let refusal = c.pre_reboot(&zincati("n1", "workers")).await.unwrap_err();
    assert_eq!((refusal.kind, refusal.status()), (Kind::UnknownGroup, 400));
    assert!(refusal.value.contains("known: default"));
    let stranger = fleetlock_core::ClientParams {
        id: "ffffffffffffffffffffffffffffffff".into(),
        group: "default".into(),
    };
    let refusal = c.pre_reboot(&stranger).await.unwrap_err();
    assert_eq!((refusal.kind, refusal.status()), (Kind::UnknownNode, 404));
    // steady-state never blocks a node, mapped or not, known group or not; but a known
    // node speaks only for its own group.
    c.steady_state(&stranger).await.unwrap();
    let refusal = c.steady_state(&zincati("n1", "workers")).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::WrongGroup);

    let mut config = config();
    config.unknown_groups = UnknownGroups::Allow;
    sim.edit_node("n1", |n| {
        n.labels
            .insert(fleetlock_core::DEFAULT_GROUP_LABEL.into(), "workers".into());
    })
    .unwrap();
    let (c, _run) = replica(&sim, config, "b").await;
    c.pre_reboot(&zincati("n1", "workers")).await.unwrap();
    assert!(sim.lease(NS, "fleetlock-workers").is_some());
}

#[tokio::test(start_paused = true)]
async fn a_holder_whose_node_was_deleted_frees_its_slot() {
    let sim = fleet(2);
    let (c, _run) = replica(&sim, config(), "a").await;
    c.pre_reboot(&zincati("n1", "default")).await.unwrap();
    assert_eq!(
        c.pre_reboot(&zincati("n2", "default"))
            .await
            .unwrap_err()
            .kind,
        Kind::LockHeld
    );
    sim.remove_node("n1");
    advance(Duration::from_secs(16)).await;
    c.pre_reboot(&zincati("n2", "default")).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn stuck_holders_are_reported_and_released_only_when_enabled() {
    for release in [false, true] {
        let sim = fleet(2);
        let mut config = config();
        config.stuck.after = Duration::from_secs(3600);
        config.stuck.release = release;
        let (c, _run) = replica(&sim, config, "a").await;
        c.pre_reboot(&zincati("n1", "default")).await.unwrap();
        advance(Duration::from_secs(3600)).await;
        c.maintain().await;
        assert!(reasons(&sim, "n1").contains(&"RebootSlotStuck".to_string()));
        let held = sim.lease(NS, "fleetlock-default").unwrap().holder_identity;
        if release {
            assert_eq!(held, None);
            assert!(!sim.node("n1").unwrap().unschedulable);
        } else {
            assert_eq!(held.as_deref(), Some("n1"));
            assert!(c.snapshot().groups[0].holders[0].stuck);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn lowering_the_slot_count_takes_effect_on_stored_state() {
    let sim = fleet(4);
    let mut two = config();
    two.groups.get_mut("default").unwrap().slots = 2;
    let (c, run) = replica(&sim, two, "a").await;
    c.pre_reboot(&zincati("n1", "default")).await.unwrap();
    c.pre_reboot(&zincati("n2", "default")).await.unwrap();
    run.abort();

    // Restarted with one slot: two holders keep theirs, nobody new gets one until both left.
    let (c, _run) = replica(&sim, config(), "b").await;
    assert_eq!(
        c.pre_reboot(&zincati("n3", "default"))
            .await
            .unwrap_err()
            .kind,
        Kind::LockHeld
    );
    c.steady_state(&zincati("n1", "default")).await.unwrap();
    assert_eq!(
        c.pre_reboot(&zincati("n3", "default"))
            .await
            .unwrap_err()
            .kind,
        Kind::LockHeld
    );
    c.steady_state(&zincati("n2", "default")).await.unwrap();
    c.pre_reboot(&zincati("n3", "default")).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn steady_state_mid_drain_gives_up_the_slot_and_uncordons() {
    let sim = fleet(2);
    sim.add_pod(
        Pod::new("shop", "slow")
            .on("n1")
            .owned_by("ReplicaSet", "x"),
    )
    .unwrap();
    sim.set_pod_stuck("shop", "slow", true);
    let mut config = config();
    config.drain.request_wait = Duration::from_secs(1);
    let (c, _run) = replica(&sim, config, "a").await;
    let n1 = zincati("n1", "default");
    assert_eq!(c.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);
    c.steady_state(&n1).await.unwrap();
    assert!(!sim.node("n1").unwrap().unschedulable);
    assert!(c.snapshot().groups[0].holders.is_empty());
    assert_eq!(
        sim.node("n1").unwrap().annotations[STATE_ANNOTATION],
        "ready"
    );
    // The drain stopped: the stuck pod is terminating, nothing else was touched after.
    let evictions = sim.calls().get(Operation::EvictPod);
    advance(Duration::from_secs(600)).await;
    assert_eq!(sim.calls().get(Operation::EvictPod), evictions);
}

#[tokio::test(start_paused = true)]
async fn the_servers_own_pod_leaves_last() {
    let sim = fleet(2);
    sim.add_pod(
        Pod::new("restart-manager", "server-a")
            .on("n1")
            .owned_by("ReplicaSet", "server")
            .grace_period(5),
    )
    .unwrap();
    sim.add_pod(
        Pod::new("shop", "web")
            .on("n1")
            .owned_by("ReplicaSet", "web")
            .grace_period(30),
    )
    .unwrap();
    let mut config = config();
    config.own_pod = Some(("restart-manager".into(), "server-a".into()));
    config.drain.request_wait = Duration::from_secs(1);
    let (c, _run) = replica(&sim, config, "server-a").await;
    let n1 = zincati("n1", "default");

    assert_eq!(c.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);
    assert!(sim.pod("shop", "web").unwrap().is_terminating());
    assert!(
        !sim.pod("restart-manager", "server-a")
            .unwrap()
            .is_terminating(),
        "not while others remain"
    );
    // The request waited 1s; web's 30s grace period ends 29s later.
    advance(Duration::from_secs(28)).await;
    assert!(
        !sim.pod("restart-manager", "server-a")
            .unwrap()
            .is_terminating()
    );
    advance(Duration::from_secs(1)).await;
    assert!(sim.pod("shop", "web").is_none());
    assert!(
        sim.pod("restart-manager", "server-a")
            .unwrap()
            .is_terminating(),
        "then it goes too"
    );
}

/// A node's group is its label's, not whatever its request says: asking under another group
/// (to dodge a paused group, or to free a slot elsewhere) is refused, and changes nothing.
#[tokio::test(start_paused = true)]
async fn a_node_asks_only_under_the_group_its_label_names() {
    let sim = fleet(3);
    sim.edit_node("n1", |n| {
        n.labels
            .insert(fleetlock_core::DEFAULT_GROUP_LABEL.into(), "storage".into());
    })
    .unwrap();
    let mut config = config();
    config.groups.insert(
        "storage".into(),
        GroupConfig {
            paused: true,
            ..GroupConfig::default()
        },
    );
    let (c, _run) = replica(&sim, config, "a").await;

    // n1 is in the paused "storage" group: asking under "default" does not get around it.
    let refusal = c.pre_reboot(&zincati("n1", "default")).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::WrongGroup, "{refusal}");
    assert_eq!(refusal.status(), 403);
    assert!(refusal.value.contains("\"storage\""), "{refusal}");
    assert!(!sim.node("n1").unwrap().unschedulable, "nothing was done");
    let refusal = c.pre_reboot(&zincati("n1", "storage")).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::GroupPaused);

    // An unlabelled node is in "default", and only there.
    c.pre_reboot(&zincati("n2", "default")).await.unwrap();
    let refusal = c.pre_reboot(&zincati("n3", "storage")).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::WrongGroup, "{refusal}");

    // A steady-state under another group cannot free the slot n2 holds.
    let refusal = c.steady_state(&zincati("n2", "storage")).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::WrongGroup);
    let holder = || sim.lease(NS, "fleetlock-default").unwrap().holder_identity;
    assert!(holder().is_some(), "still held");
    c.steady_state(&zincati("n2", "default")).await.unwrap();
    assert_eq!(holder(), None, "released by its own group's steady-state");
}

/// With the binding turned off (`groupLabel: ""`), any group is taken at its word, as
/// before.
#[tokio::test(start_paused = true)]
async fn without_a_group_label_any_group_is_taken_at_its_word() {
    let sim = fleet(2);
    let mut config = config();
    config.group_label = String::new();
    config.unknown_groups = UnknownGroups::Allow;
    let (c, _run) = replica(&sim, config, "a").await;
    c.pre_reboot(&zincati("n1", "anything")).await.unwrap();
}

/// With `verifyCaller`, a FleetLock request counts only from the node its id belongs to: one
/// of its addresses, its pod range (where a network plugin's tunnel or gateway address puts
/// host traffic), or an address an operator listed on it. Anyone else is refused without
/// learning anything, and changes nothing.
#[tokio::test(start_paused = true)]
async fn only_the_node_itself_can_ask_for_its_reboot() {
    use std::net::IpAddr;
    let sim = cluster_sim::SimCluster::new();
    for (name, address, pods) in [
        ("n1", "192.168.10.1", "10.244.1.0/24"),
        ("n2", "192.168.10.2", "10.244.2.0/24"),
    ] {
        sim.add_node(
            cluster_api::Node::new(name)
                .machine_id(cluster_sim::machine_id_for(name))
                .address(address)
                .pod_cidr(pods),
        );
    }
    let mut config = config();
    config.verify_caller = true;
    let (c, _run) = replica(&sim, config, "a").await;
    let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());

    // n2, or a pod on n2, asking for n1's reboot.
    for peer in [ip("192.168.10.2"), ip("10.244.2.17"), ip("8.8.8.8"), None] {
        let refusal = c
            .pre_reboot_from(&zincati("n1", "default"), peer)
            .await
            .unwrap_err();
        assert_eq!(
            (refusal.kind, refusal.status()),
            (Kind::UnverifiedCaller, 403),
            "{peer:?}"
        );
        assert!(
            !refusal.value.contains("n1") && !refusal.value.contains("192.168"),
            "{refusal}"
        );
    }
    assert!(!sim.node("n1").unwrap().unschedulable, "nothing was done");
    // From n1's own address (also as an IPv4-mapped IPv6 peer of a dual-stack listener).
    c.pre_reboot_from(&zincati("n1", "default"), ip("::ffff:192.168.10.1"))
        .await
        .unwrap();
    // A spoofed steady-state cannot free n1's slot mid-reboot.
    let refusal = c
        .steady_state_from(&zincati("n1", "default"), ip("192.168.10.2"))
        .await
        .unwrap_err();
    assert_eq!(refusal.kind, Kind::UnverifiedCaller);
    assert!(
        sim.lease(NS, "fleetlock-default")
            .unwrap()
            .holder_identity
            .is_some()
    );
    // n1's host traffic through its pod range's gateway (flannel, Cilium) counts as n1.
    c.steady_state_from(&zincati("n1", "default"), ip("10.244.1.0"))
        .await
        .unwrap();
    assert_eq!(
        sim.lease(NS, "fleetlock-default").unwrap().holder_identity,
        None
    );

    // An address listed by an operator (a Calico tunnel address outside the pod range).
    sim.edit_node("n2", |n| {
        n.annotations.insert(
            fleetlock_core::nodes::CALLER_ADDRESSES.into(),
            "172.16.5.9, 172.16.6.0/30".into(),
        );
    })
    .unwrap();
    settle().await;
    c.pre_reboot_from(&zincati("n2", "default"), ip("172.16.6.2"))
        .await
        .unwrap();
}
