//! Issue 27: the holder of a slot is the Node, whatever spelling of its id it asks with.

use super::*;
use fleetlock_core::group::{GroupState, Holder, lease_name};

/// n1's Zincati id, in another case: the same node to the lookup.
fn shouting(params: &fleetlock_core::ClientParams) -> fleetlock_core::ClientParams {
    fleetlock_core::ClientParams {
        id: params.id.to_ascii_uppercase(),
        group: params.group.clone(),
    }
}

/// A Lease written by a version that keyed holders by the id as spelt, with two entries of
/// n1 (its Zincati id in two cases), both approved: n1 counts once against the slots, either
/// spelling gets the grant's answer, and its steady-state gives every entry back.
#[tokio::test(start_paused = true)]
async fn a_lease_with_two_entries_of_one_node_from_an_older_version_keeps_working() {
    let sim = fleet(3);
    let mut config = config();
    config.groups.get_mut("default").unwrap().slots = 2;
    let n1 = zincati("n1", "default");
    let boot = sim.node("n1").unwrap().boot_id;
    let t = sim.now();
    let approved = |id: &str, since| Holder {
        phase: HolderPhase::Approved,
        approved_at: Some(since),
        boot_id: Some(boot.clone()),
        ..Holder::granted(id, "n1", since, "old-version")
    };
    let mut state = GroupState::empty("default");
    state.holders.push(approved(&n1.id, t));
    state.holders.push(approved(
        &shouting(&n1).id,
        t.checked_add(jiff::SignedDuration::from_secs(1)).unwrap(),
    ));
    cluster_api::ClusterApi::create_lease(&sim, &state.to_lease(NS, t))
        .await
        .unwrap();
    let (c, _run) = replica(&sim, config, "a").await;

    c.pre_reboot(&n1).await.unwrap();
    c.pre_reboot(&shouting(&n1)).await.unwrap();
    // n1 takes one slot of two, so n2 gets the other; n3 waits.
    c.pre_reboot(&zincati("n2", "default")).await.unwrap();
    assert_eq!(
        c.pre_reboot(&zincati("n3", "default"))
            .await
            .unwrap_err()
            .kind,
        Kind::LockHeld
    );

    // n1 reboots and says steady-state with its raw machine id: no entry of it is left.
    sim.reboot_node("n1").unwrap();
    advance(Duration::from_secs(60)).await;
    settle().await;
    let raw = fleetlock_core::ClientParams {
        id: cluster_sim::machine_id_for("n1").to_ascii_uppercase(),
        group: "default".into(),
    };
    c.steady_state(&raw).await.unwrap();
    c.maintain().await;
    settle().await;
    assert_eq!(holders(&sim, "default"), ["n2"]);
    assert!(!sim.node("n1").unwrap().unschedulable);
    c.pre_reboot(&zincati("n3", "default")).await.unwrap();
}

/// A steady-state from an id that maps to no Node (its Node deleted) still gives back what
/// was granted under that id, in any case.
#[tokio::test(start_paused = true)]
async fn a_steady_state_from_an_id_no_node_has_releases_that_id_in_any_case() {
    let sim = fleet(2);
    let (c, _run) = replica(&sim, config(), "a").await;
    let n1 = zincati("n1", "default");
    c.pre_reboot(&n1).await.unwrap();
    sim.remove_node("n1");
    settle().await;
    c.steady_state(&shouting(&n1)).await.unwrap();
    assert!(holders(&sim, "default").is_empty());
    c.pre_reboot(&zincati("n2", "default")).await.unwrap();
}

/// Unknown groups, when allowed, are bounded by `maxUnknownGroups`; configured groups and
/// unknown ones that have their Lease are always served.
#[tokio::test(start_paused = true)]
async fn unknown_groups_stop_at_their_bound() {
    let sim = fleet(4);
    let mut config = config();
    config.group_label = String::new();
    config.unknown_groups = UnknownGroups::Allow;
    config.max_unknown_groups = 2;
    let (c, _run) = replica(&sim, config, "a").await;
    c.pre_reboot(&zincati("n1", "u1")).await.unwrap();
    c.pre_reboot(&zincati("n2", "u2")).await.unwrap();
    let refusal = c.pre_reboot(&zincati("n3", "u3")).await.unwrap_err();
    assert_eq!((refusal.kind, refusal.status()), (Kind::TooManyGroups, 423));
    assert!(
        refusal.value.contains("maxUnknownGroups"),
        "{}",
        refusal.value
    );
    assert!(sim.lease(NS, &lease_name("u3")).is_none());
    // A node that already holds a slot, naming a new group, gets its own grant back.
    c.pre_reboot(&zincati("n1", "u9")).await.unwrap();
    assert_eq!(
        c.pre_reboot(&zincati("n3", "u1")).await.unwrap_err().kind,
        Kind::LockHeld
    );
    c.pre_reboot(&zincati("n3", "default")).await.unwrap();
    // Once u1's slot is back (its Lease stays), u1 is served again; u3 still is not.
    c.steady_state(&zincati("n1", "u1")).await.unwrap();
    c.pre_reboot(&zincati("n4", "u1")).await.unwrap();
    // n2, holding u2's slot, is answered from that grant (approved), with no Lease for u3.
    c.pre_reboot(&zincati("n2", "u3")).await.unwrap();
    assert!(sim.lease(NS, &lease_name("u3")).is_none());
    assert_eq!(holders(&sim, "u2"), ["n2"]);
}
