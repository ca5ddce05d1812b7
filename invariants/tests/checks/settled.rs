//! The end-of-run checks, and the ways a rebooting holder may and may not leave its slot.

use super::*;

#[tokio::test(start_paused = true)]
async fn a_settled_cluster_with_a_slot_or_cordon_left_is_flagged() {
    let (sim, checker, _) = cluster();
    assert!(checker.check_settled(&sim).is_empty());
    write_group(&sim, vec![holder("n1", HolderPhase::Approved, &sim)]).await;
    sim.edit_node("n2", |n| {
        n.unschedulable = true;
        n.annotations
            .insert(CORDONED_ANNOTATION.into(), "true".into());
    })
    .unwrap();
    let settled: Vec<Invariant> = checker
        .check_settled(&sim)
        .iter()
        .map(|v| v.invariant)
        .collect();
    assert_eq!(
        settled,
        [Invariant::SlotNeverReleased, Invariant::CordonNeverUndone]
    );
}

/// The violations of [`Invariant::RebootingSlotFreed`] (the holders below are approved by
/// hand, which other checks flag).
fn freed(checker: &Invariants) -> Vec<invariants::Violation> {
    checker
        .violations()
        .into_iter()
        .filter(|v| v.invariant == Invariant::RebootingSlotFreed)
        .collect()
}

/// The history: an approved node is rebooting when a drain timeout (of a replica
/// that lagged) gives its slot back; so is a recovering one released without its heal.
#[tokio::test(start_paused = true)]
async fn an_approved_or_recovering_holder_freed_without_its_return_is_flagged() {
    let (sim, checker, _) = cluster();
    let approved = Holder {
        boot_id: Some(sim.node("n1").unwrap().boot_id),
        approved_at: Some(sim.now()),
        ..holder("n1", HolderPhase::Approved, &sim)
    };
    write_group(&sim, vec![approved]).await;
    sim.reboot_node("n1").unwrap();
    write_group(&sim, vec![]).await;
    assert_eq!(freed(&checker).len(), 1, "{:?}", checker.violations());
    assert!(
        freed(&checker)[0].detail.contains("down for its reboot"),
        "{:?}",
        checker.violations()
    );

    // Recovering, given back without a heal (no last return recorded), though the node is
    // Ready and uncordoned.
    let (sim, checker, _) = cluster();
    write_group(&sim, vec![holder("n1", HolderPhase::Recovering, &sim)]).await;
    write_group(&sim, vec![]).await;
    assert_eq!(freed(&checker).len(), 1, "{:?}", checker.violations());
    assert!(freed(&checker)[0].detail.contains("without its heal"));
}

/// One pass of a replica whose clock runs behind heals two holders at one instant of its
/// clock, each in a write of its own, the second later than the first (the API server took
/// its time), and after a replica whose clock runs ahead recorded their returns: each write
/// names the grant it healed, so neither is taken for a slot given back without its heal.
#[tokio::test(start_paused = true)]
async fn heals_stamped_by_a_clock_behind_are_told_from_releases() {
    let (sim, checker, _) = cluster();
    checker.set_slots("default", 2);
    let ahead = sim.now() + jiff::SignedDuration::from_secs(120);
    let returned = |node: &str| Holder {
        returned_at: Some(ahead),
        ..holder(node, HolderPhase::Recovering, &sim)
    };
    let (n1, n2) = (returned("n1"), returned("n2"));
    write_group(&sim, vec![n1.clone(), n2.clone()]).await;
    let healed_at = sim.now();
    change_group(&sim, |state| {
        state.holders = vec![n2.clone()];
        state.last_return = state.last_return.max(Some(healed_at));
        state.last_healed = Some(n1.grant());
    })
    .await;
    tokio::time::advance(Duration::from_millis(250)).await;
    change_group(&sim, |state| {
        state.holders = vec![];
        state.last_return = state.last_return.max(Some(healed_at));
        state.last_healed = Some(n2.grant());
    })
    .await;
    assert_eq!(freed(&checker), [], "{:?}", checker.violations());

    // The same second write without naming its grant is a release, not a heal.
    let (sim, checker, _) = cluster();
    checker.set_slots("default", 2);
    let (n1, n2) = (returned("n1"), returned("n2"));
    write_group(&sim, vec![n1.clone(), n2.clone()]).await;
    let healed_at = sim.now();
    change_group(&sim, |state| {
        state.holders = vec![n2.clone()];
        state.last_return = Some(healed_at);
        state.last_healed = Some(n1.grant());
    })
    .await;
    tokio::time::advance(Duration::from_millis(250)).await;
    change_group(&sim, |state| state.holders = vec![]).await;
    assert_eq!(freed(&checker).len(), 1, "{:?}", checker.violations());
}

/// Every legitimate way out: the heal, a steady-state before or after the reboot, a deleted
/// Node, the holders edited by hand, a deleted Lease, `stuck.release`; and a draining
/// holder's slot (a drain timeout, a steady-state before approval) is not this check's.
#[tokio::test(start_paused = true)]
async fn an_approved_or_recovering_holder_that_leaves_by_the_rules_is_not_flagged() {
    let (sim, checker, _) = cluster();
    let ok = |checker: &Invariants| assert_eq!(freed(checker), []);
    let n1 = |phase| holder("n1", phase, &sim);

    // Draining: its drain timed out.
    write_group(&sim, vec![n1(HolderPhase::Draining)]).await;
    write_group(&sim, vec![]).await;
    ok(&checker);

    // Recovering, then healed.
    write_group(&sim, vec![n1(HolderPhase::Recovering)]).await;
    heal_group(&sim, vec![]).await;
    ok(&checker);

    // Approved, and Zincati, restarted before its reboot, says steady-state.
    let approved = Holder {
        boot_id: Some(sim.node("n1").unwrap().boot_id),
        ..n1(HolderPhase::Approved)
    };
    write_group(&sim, vec![approved]).await;
    write_group(&sim, vec![]).await;
    ok(&checker);

    // Approved, rebooted and back, then its steady-state (recovery off) gives the slot back.
    let approved = Holder {
        boot_id: Some(sim.node("n1").unwrap().boot_id),
        ..n1(HolderPhase::Approved)
    };
    write_group(&sim, vec![approved.clone()]).await;
    sim.reboot_node("n1").unwrap();
    // Zincati speaks once the operating system is up (the Node may show nothing yet).
    while sim.os_up("n1") != Some(true) {
        tokio::time::advance(Duration::from_secs(5)).await;
    }
    write_group(&sim, vec![]).await;
    ok(&checker);

    // Approved, and its Node deleted.
    let n2 = Holder {
        boot_id: Some(sim.node("n2").unwrap().boot_id),
        ..holder("n2", HolderPhase::Approved, &sim)
    };
    write_group(&sim, vec![n2]).await;
    sim.remove_node("n2");
    write_group(&sim, vec![]).await;
    ok(&checker);

    // Approved, and an operator removes it from the holders by hand (kubectl edit).
    let n3 = Holder {
        boot_id: Some(sim.node("n3").unwrap().boot_id),
        ..holder("n3", HolderPhase::Approved, &sim)
    };
    write_group(&sim, vec![n3.clone()]).await;
    let mut lease = sim.lease(NS, "fleetlock-default").unwrap();
    lease.annotations.insert(
        fleetlock_core::group::HOLDERS_ANNOTATION.into(),
        "[]".into(),
    );
    sim.replace_lease(&lease).await.unwrap();
    ok(&checker);

    // ... or deletes the Lease.
    write_group(&sim, vec![n3.clone()]).await;
    sim.delete_lease(NS, "fleetlock-default", None)
        .await
        .unwrap();
    ok(&checker);

    // With stuck.release on, a holder held that long.
    checker.set_stuck_release(Some(Duration::from_secs(3600)));
    write_group(&sim, vec![n3]).await;
    tokio::time::advance(Duration::from_secs(3600)).await;
    write_group(&sim, vec![]).await;
    ok(&checker);
}
