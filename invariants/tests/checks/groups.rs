//! The checks of group Lease writes, evictions and Node writes.

use super::*;

/// A second entry for a node (another spelling of its id) is flagged even where the group
/// has the slots for it.
#[tokio::test(start_paused = true)]
async fn a_write_that_gives_a_node_a_second_entry_is_flagged() {
    let (sim, checker, _) = cluster();
    checker.set_slots("default", 2);
    let first = holder("n1", HolderPhase::Draining, &sim);
    write_group(&sim, vec![first.clone()]).await;
    let second = Holder {
        id: first.id.to_ascii_uppercase(),
        ..holder("n1", HolderPhase::Draining, &sim)
    };
    write_group(&sim, vec![first, second]).await;
    assert_eq!(found(&checker), [Invariant::NodeHeldTwice]);
}

#[tokio::test(start_paused = true)]
async fn a_write_that_adds_a_holder_beyond_the_slots_is_flagged() {
    let (sim, checker, _) = cluster();
    write_group(&sim, vec![holder("n1", HolderPhase::Draining, &sim)]).await;
    assert!(found(&checker).is_empty());
    let two = vec![
        holder("n1", HolderPhase::Draining, &sim),
        holder("n2", HolderPhase::Draining, &sim),
    ];
    write_group(&sim, two.clone()).await;
    assert_eq!(found(&checker), [Invariant::SlotsExceeded]);

    // Slots lowered under existing holders: keeping them is allowed, adding is not.
    let (sim, checker, _) = cluster();
    checker.set_slots("default", 2);
    write_group(&sim, two.clone()).await;
    checker.set_slots("default", 1);
    write_group(&sim, two).await;
    assert!(found(&checker).is_empty(), "{:?}", checker.violations());
}

#[tokio::test(start_paused = true)]
async fn a_recovering_holder_released_before_its_node_healed_is_flagged() {
    let (sim, checker, _) = cluster();
    // Healed: Ready, no cordon of ours. Its release is fine.
    write_group(&sim, vec![holder("n1", HolderPhase::Recovering, &sim)]).await;
    heal_group(&sim, vec![]).await;
    assert!(found(&checker).is_empty(), "{:?}", checker.violations());

    // NotReady.
    write_group(&sim, vec![holder("n1", HolderPhase::Recovering, &sim)]).await;
    sim.set_node_ready("n1", false).unwrap();
    heal_group(&sim, vec![]).await;
    assert_eq!(found(&checker), [Invariant::ReleasedUnhealed]);
    assert!(checker.violations()[0].detail.contains("NotReady"));

    // Still cordoned by us; and a holder released while draining is not this check's.
    let (sim, checker, _) = cluster();
    sim.edit_node("n2", |n| {
        n.unschedulable = true;
        n.annotations
            .insert(CORDONED_ANNOTATION.into(), "true".into());
    })
    .unwrap();
    write_group(&sim, vec![holder("n2", HolderPhase::Draining, &sim)]).await;
    write_group(&sim, vec![]).await;
    assert!(found(&checker).is_empty(), "{:?}", checker.violations());
    write_group(&sim, vec![holder("n2", HolderPhase::Recovering, &sim)]).await;
    heal_group(&sim, vec![]).await;
    assert_eq!(found(&checker), [Invariant::ReleasedUnhealed]);
    assert!(
        checker.violations()[0]
            .detail
            .contains("still cordoned by us")
    );
}

#[tokio::test(start_paused = true)]
async fn an_eviction_for_a_node_without_a_draining_holder_is_flagged() {
    let (sim, checker, _) = cluster();
    let pods = sim.pods_on("n1");
    let pod = &pods[0];
    write_group(&sim, vec![holder("n1", HolderPhase::Draining, &sim)]).await;
    sim.evict_pod("shop", &pod.name, &EvictOptions::default())
        .await
        .unwrap();
    assert!(found(&checker).is_empty());

    let other = &sim.pods_on("n2")[0];
    sim.evict_pod("shop", &other.name, &EvictOptions::default())
        .await
        .unwrap();
    assert_eq!(found(&checker), [Invariant::EvictionWithoutHolder]);
}

#[tokio::test(start_paused = true)]
async fn an_approval_with_pods_left_to_move_is_flagged() {
    let (sim, checker, _) = cluster();
    write_group(&sim, vec![holder("n1", HolderPhase::Draining, &sim)]).await;
    write_group(&sim, vec![holder("n1", HolderPhase::Approved, &sim)]).await;
    assert_eq!(found(&checker), [Invariant::ApprovedWithPods]);
    assert!(
        checker.violations()[0].detail.contains("shop/web-"),
        "names the pod: {}",
        checker.violations()[0].detail
    );
}

#[tokio::test(start_paused = true)]
async fn an_approval_of_a_holder_not_draining_is_flagged() {
    let (sim, checker, _) = cluster();
    // Cordoned and emptied first, so that the approvals below are not ApprovedWithPods too.
    sim.edit_node("n1", |n| n.unschedulable = true).unwrap();
    for pod in sim.pods_on("n1") {
        sim.delete_pod(&pod.namespace, &pod.name);
    }
    tokio::time::advance(Duration::from_secs(60)).await;
    write_group(&sim, vec![holder("n1", HolderPhase::Draining, &sim)]).await;
    write_group(&sim, vec![holder("n1", HolderPhase::Approved, &sim)]).await;
    assert!(found(&checker).is_empty(), "{:?}", checker.violations());

    // Back from its reboot, then approved again.
    write_group(&sim, vec![holder("n1", HolderPhase::Recovering, &sim)]).await;
    write_group(&sim, vec![holder("n1", HolderPhase::Approved, &sim)]).await;
    assert_eq!(found(&checker), [Invariant::ApprovedNotDraining]);
    assert!(
        checker.violations()[0].detail.contains("from recovering"),
        "{}",
        checker.violations()[0].detail
    );

    // A later grant approved on the strength of an earlier one's drain.
    write_group(&sim, vec![holder("n1", HolderPhase::Draining, &sim)]).await;
    tokio::time::advance(Duration::from_secs(1)).await;
    write_group(&sim, vec![holder("n1", HolderPhase::Approved, &sim)]).await;
    assert_eq!(
        found(&checker),
        [
            Invariant::ApprovedNotDraining,
            Invariant::ApprovedNotDraining
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_admins_cordon_undone_through_the_api_is_flagged() {
    let (sim, checker, _) = cluster();
    let uncordon = NodePatch {
        unschedulable: Some(false),
        ..NodePatch::default()
    };
    // Ours: marked with the annotation.
    sim.edit_node("n1", |n| {
        n.unschedulable = true;
        n.annotations
            .insert(CORDONED_ANNOTATION.into(), "true".into());
    })
    .unwrap();
    sim.patch_node("n1", &uncordon).await.unwrap();
    // An administrator's, by hand, undone by hand: their business.
    sim.edit_node("n2", |n| n.unschedulable = true).unwrap();
    sim.edit_node("n2", |n| n.unschedulable = false).unwrap();
    assert!(found(&checker).is_empty());
    // An administrator's, undone through the API.
    sim.edit_node("n3", |n| n.unschedulable = true).unwrap();
    sim.patch_node("n3", &uncordon).await.unwrap();
    assert_eq!(found(&checker), [Invariant::AdminCordonUndone]);
}

/// More grants within a rate's window than the rate allows are flagged, judged by the
/// cluster's clock less how far the replicas' clocks may disagree; a grant the window has left
/// behind no longer counts.
#[tokio::test(start_paused = true)]
async fn grants_beyond_the_rate_within_its_window_are_flagged() {
    let (sim, checker, _) = cluster();
    checker.set_slots("default", 3);
    let rate = fleetlock_core::RateLimit {
        reboots: 1,
        per: Duration::from_secs(10 * 60),
    };
    checker.set_rate(Some(rate), Duration::from_secs(60));
    let n1 = holder("n1", HolderPhase::Draining, &sim);
    write_group(&sim, vec![n1.clone()]).await;
    // 9 minutes later, the window less a minute of clocks apart has passed: allowed.
    tokio::time::advance(Duration::from_secs(9 * 60)).await;
    let n2 = holder("n2", HolderPhase::Draining, &sim);
    write_group(&sim, vec![n1.clone(), n2.clone()]).await;
    assert!(found(&checker).is_empty(), "{:?}", checker.violations());
    // A minute later a third grant: two within 9 minutes, one more than the rate.
    tokio::time::advance(Duration::from_secs(60)).await;
    let n3 = holder("n3", HolderPhase::Draining, &sim);
    write_group(&sim, vec![n1, n2, n3]).await;
    assert_eq!(found(&checker), [Invariant::RateExceeded]);
}
