//! Who gets a slot and when: policies, unknown groups and nodes, deleted and stuck holders, group labels, caller checks.

use super::*;

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
    sim.reset_calls();
    let refusal = c.pre_reboot(&zincati("n3", "careful")).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::BlockedByPods);
    assert!(refusal.value.contains("ops/backup"));
    // The blocking pods and the pre-flight look at one list of the node's pods.
    assert_eq!(sim.calls().get(Operation::ListPods), 1, "{}", sim.calls());

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

/// An operator keeps a node from rebooting with an annotation: refused with its own kind and
/// the operator's reason, nothing cordoned, the slot left to others, and shown in the fleet
/// view; removing the annotation lets it reboot.
#[tokio::test(start_paused = true)]
async fn an_opted_out_node_is_refused_until_the_annotation_goes() {
    let sim = fleet(2);
    sim.edit_node("n1", |n| {
        n.annotations.insert(
            OPT_OUT_ANNOTATION.into(),
            "disk replacement on Thursday".into(),
        );
    })
    .unwrap();
    let (c, _run) = replica(&sim, config(), "a").await;
    let n1 = zincati("n1", "default");

    let refusal = c.pre_reboot(&n1).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::NodeOptedOut);
    assert_eq!(refusal.status(), 423);
    assert!(
        refusal.value.contains("disk replacement on Thursday")
            && refusal.value.contains(OPT_OUT_ANNOTATION),
        "{}",
        refusal.value
    );
    assert!(!sim.node("n1").unwrap().unschedulable);
    assert_eq!(holders(&sim, "default"), Vec::<String>::new());
    let n1_view = c
        .snapshot()
        .nodes
        .into_iter()
        .find(|n| n.name == "n1")
        .unwrap();
    assert_eq!(
        n1_view.opted_out.as_deref(),
        Some("disk replacement on Thursday")
    );

    // The group's one slot is not held back for it.
    let n2 = zincati("n2", "default");
    c.pre_reboot(&n2).await.unwrap();
    c.steady_state(&n2).await.unwrap();

    sim.edit_node("n1", |n| {
        n.annotations.remove(OPT_OUT_ANNOTATION);
    })
    .unwrap();
    tokio::time::advance(Duration::from_secs(1)).await;
    c.pre_reboot(&n1).await.unwrap();
}

/// Health gates: no new slot while more nodes than allowed are NotReady or cordoned by
/// someone else; the refusal names the gate but no node; slot holders (whose being down is
/// the reboot itself) do not count; `scope: cluster` counts other groups' nodes too.
#[tokio::test(start_paused = true)]
async fn health_gates_hold_new_grants_while_too_many_nodes_are_down() {
    let sim = fleet(5);
    sim.edit_node("n5", |n| {
        n.labels
            .insert(fleetlock_core::DEFAULT_GROUP_LABEL.into(), "storage".into());
    })
    .unwrap();
    let mut config = config();
    let default = config.groups.get_mut("default").unwrap();
    default.slots = 2;
    default.health_gates = HealthGates {
        max_not_ready: Some(0),
        max_cordoned: Some(0),
        scope: GateScope::Group,
        ..HealthGates::default()
    };
    config
        .groups
        .insert("storage".into(), GroupConfig::default());
    let (c, _run) = replica(&sim, config.clone(), "a").await;
    let (n1, n2) = (zincati("n1", "default"), zincati("n2", "default"));

    // n3 is down: no new slot in its group.
    sim.edit_node("n3", |n| n.ready = false).unwrap();
    advance(Duration::from_secs(1)).await;
    let refusal = c.pre_reboot(&n1).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::HealthGateClosed);
    assert_eq!(refusal.status(), 423);
    assert!(
        refusal
            .value
            .contains("1 nodes of group default are NotReady (at most 0 may be)"),
        "{}",
        refusal.value
    );
    assert!(
        !refusal.value.contains("n3"),
        "names no other node: {}",
        refusal.value
    );
    assert!(!sim.node("n1").unwrap().unschedulable);

    // An admin's cordon on n4 holds it back as well, once n3 is back.
    sim.edit_node("n3", |n| n.ready = true).unwrap();
    sim.edit_node("n4", |n| n.unschedulable = true).unwrap();
    advance(Duration::from_secs(1)).await;
    let refusal = c.pre_reboot(&n1).await.unwrap_err();
    assert!(
        refusal.value.contains("cordoned by someone else"),
        "{}",
        refusal.value
    );
    sim.edit_node("n4", |n| n.unschedulable = false).unwrap();
    advance(Duration::from_secs(1)).await;

    // A holder rebooting (NotReady, cordoned by us) does not close the gate for the next.
    c.pre_reboot(&n1).await.unwrap();
    sim.edit_node("n1", |n| n.ready = false).unwrap();
    advance(Duration::from_secs(1)).await;
    c.pre_reboot(&n2).await.unwrap();

    // Another group's node counts only with `scope: cluster`.
    sim.edit_node("n5", |n| n.ready = false).unwrap();
    for id in [&n1, &n2] {
        c.steady_state(id).await.unwrap();
    }
    sim.edit_node("n1", |n| n.ready = true).unwrap();
    advance(Duration::from_secs(1)).await;
    c.pre_reboot(&n1).await.unwrap();
    c.steady_state(&n1).await.unwrap();
    config.groups.get_mut("default").unwrap().health_gates.scope = GateScope::Cluster;
    let (c, _run) = replica(&sim, config, "b").await;
    let refusal = c.pre_reboot(&n1).await.unwrap_err();
    assert!(
        refusal
            .value
            .contains("1 nodes of the cluster are NotReady"),
        "{}",
        refusal.value
    );
}
