//! Each check flags the write that breaks it, and only that: writes made by hand, the way a
//! faulty coordinator or restart service would make them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cluster_api::{ClusterApi, EvictOptions, Node, NodePatch, WorkloadRef};
use cluster_sim::{SimCluster, WorkloadSpec};
use fleetlock_core::drain::DrainOptions;
use fleetlock_core::group::GroupState;
use fleetlock_core::nodes::CORDONED_ANNOTATION;
use fleetlock_core::{Holder, HolderPhase};
use invariants::{Invariant, Invariants};
use restart_core::RESTARTED_AT;
use restart_core::lock::{Take, TakeRequest, release, take};

const NS: &str = "restart-manager";

fn cluster() -> (SimCluster, Arc<Invariants>, WorkloadRef) {
    let sim = SimCluster::new();
    for n in ["n1", "n2", "n3"] {
        sim.add_node(Node::new(n));
    }
    let spec = WorkloadSpec::deployment("shop", "web").replicas(3);
    let web = spec.reference();
    sim.add_workload(spec).unwrap();
    let checker = Invariants::watch(&sim, NS, DrainOptions::default(), 1);
    (sim, checker, web)
}

fn holder(node: &str, phase: HolderPhase, sim: &SimCluster) -> Holder {
    Holder {
        phase,
        ..Holder::granted(format!("id-{node}"), node, sim.now(), "test")
    }
}

/// Writes the group Lease with these holders (creating it the first time).
async fn write_group(sim: &SimCluster, holders: Vec<Holder>) {
    change_group(sim, |state| state.holders = holders).await;
}

/// Writes the group Lease with these holders as a heal of the one left out does: recording
/// the group's last return, and naming the grant healed, in the same write.
async fn heal_group(sim: &SimCluster, holders: Vec<Holder>) {
    let now = sim.now();
    change_group(sim, |state| {
        let healed = state
            .holders
            .iter()
            .find(|h| !holders.iter().any(|k| k.same_grant(h)))
            .map(Holder::grant);
        state.holders = holders;
        state.last_return = Some(now);
        state.last_healed = healed;
    })
    .await;
}

/// Changes the group Lease as restart-manager writes it (creating it the first time).
async fn change_group(sim: &SimCluster, change: impl FnOnce(&mut GroupState)) {
    let current = sim.lease(NS, &fleetlock_core::group::lease_name("default"));
    let mut state = match &current {
        Some(lease) => GroupState::from_lease(lease).unwrap(),
        None => GroupState::empty("default"),
    };
    change(&mut state);
    let lease = state.to_lease(NS, sim.now());
    if current.is_some() {
        sim.replace_lease(&lease).await.unwrap();
    } else {
        sim.create_lease(&lease).await.unwrap();
    }
}

fn found(checker: &Invariants) -> Vec<Invariant> {
    checker.violations().iter().map(|v| v.invariant).collect()
}

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

fn request<'a>(sim: &SimCluster, w: &'a WorkloadRef, id: &'a str, at: &'a str) -> TakeRequest<'a> {
    TakeRequest {
        namespace: NS,
        workload: w,
        holder: id,
        reason: None,
        restart_id: id,
        restarted_at: at,
        duration: Duration::from_secs(300),
        now: sim.now(),
    }
}

async fn patch(sim: &SimCluster, w: &WorkloadRef, restarted_at: &str) {
    let changes: BTreeMap<String, Option<String>> =
        [(RESTARTED_AT.to_string(), Some(restarted_at.to_string()))]
            .into_iter()
            .collect();
    sim.patch_template_annotations(w, &changes).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_restart_sent_without_its_lock_is_flagged() {
    let (sim, checker, web) = cluster();
    assert!(matches!(
        take(&sim, &request(&sim, &web, "alice", "t1"))
            .await
            .unwrap(),
        Take::Taken { .. }
    ));
    patch(&sim, &web, "t1").await;
    assert!(found(&checker).is_empty());
    release(
        &sim,
        NS,
        &web,
        Some("alice"),
        restart_core::Outcome::Complete,
        sim.now(),
    )
    .await
    .unwrap();
    patch(&sim, &web, "t2").await;
    assert_eq!(found(&checker), [Invariant::RestartWithoutLock]);
}

#[tokio::test(start_paused = true)]
async fn a_lock_taken_before_it_ran_out_is_flagged() {
    let (sim, checker, web) = cluster();
    take(&sim, &request(&sim, &web, "alice", "t1"))
        .await
        .unwrap();
    // A take that ignores the holder: rewrite the Lease for someone else while it runs.
    let mut lease = sim
        .lease(NS, &restart_core::lock::lease_name(&web))
        .unwrap();
    lease.holder_identity = Some("bob".into());
    lease.annotations.insert(
        restart_core::lock::RESTART_ID_ANNOTATION.into(),
        "bob".into(),
    );
    sim.replace_lease(&lease).await.unwrap();
    assert_eq!(found(&checker), [Invariant::RestartLockStolen]);

    // After it ran out, taking it over is how the lock works.
    let (sim, checker, web) = cluster();
    take(&sim, &request(&sim, &web, "alice", "t1"))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(301)).await;
    let taken = take(&sim, &request(&sim, &web, "bob", "t2")).await.unwrap();
    assert!(matches!(taken, Take::Taken { .. }));
    assert!(found(&checker).is_empty(), "{:?}", checker.violations());
}

/// A restart whose patch was applied, and which then restarts the workload again under its
/// id (a set member or a due time done twice), is flagged; a restart whose patch never
/// landed may try again under the same id.
#[tokio::test(start_paused = true)]
async fn a_restart_applied_twice_is_flagged() {
    let (sim, checker, web) = cluster();
    let done = || {
        release(
            &sim,
            NS,
            &web,
            None,
            restart_core::Outcome::Complete,
            sim.now(),
        )
    };
    // run-1.0's first try is refused by the API server: nothing was applied.
    take(&sim, &request(&sim, &web, "run-1.0", "t1"))
        .await
        .unwrap();
    sim.fail_next(
        cluster_sim::Operation::PatchWorkload,
        1,
        cluster_api::Error::unavailable("the connection was refused"),
    );
    let changes: BTreeMap<String, Option<String>> =
        [(RESTARTED_AT.to_string(), Some("t1".to_string()))]
            .into_iter()
            .collect();
    sim.patch_template_annotations(&web, &changes)
        .await
        .unwrap_err();
    done().await.unwrap();
    take(&sim, &request(&sim, &web, "alice-1", "t2"))
        .await
        .unwrap();
    patch(&sim, &web, "t2").await;
    done().await.unwrap();
    // It tries again, and is applied: its first restart.
    take(&sim, &request(&sim, &web, "run-1.0", "t3"))
        .await
        .unwrap();
    patch(&sim, &web, "t3").await;
    done().await.unwrap();
    assert_eq!(found(&checker), []);
    // And once more, after someone else's restart replaced it on the Lease: the second.
    take(&sim, &request(&sim, &web, "alice-2", "t4"))
        .await
        .unwrap();
    patch(&sim, &web, "t4").await;
    done().await.unwrap();
    take(&sim, &request(&sim, &web, "run-1.0", "t5"))
        .await
        .unwrap();
    patch(&sim, &web, "t5").await;
    assert_eq!(found(&checker), [Invariant::RestartRepeated]);
}

/// A set run written with more members restarting than its concurrency is flagged.
#[tokio::test(start_paused = true)]
async fn a_set_run_over_its_concurrency_is_flagged() {
    use restart_core::sets::{MemberState, RUN_ANNOTATION, SetRun};
    let (sim, checker, web) = cluster();
    let set = restart_core::RestartSet {
        name: "shop".into(),
        description: None,
        members: vec![web.clone(), web.clone()],
        concurrency: 1,
        on_failure: restart_core::sets::OnFailure::Stop,
        schedule: None,
    };
    let mut run = SetRun::new(&set, "run-1".into(), "alice", None, sim.now());
    let write = |run: &SetRun| {
        let mut lease = cluster_api::Lease::new(NS, "restart-set.shop").label(
            restart_core::lock::LOCK_LABEL,
            restart_core::sets::SET_LABEL_VALUE,
        );
        lease
            .annotations
            .insert(RUN_ANNOTATION.into(), serde_json::to_string(run).unwrap());
        lease
    };
    run.members[0].state = MemberState::Restarting;
    let created = sim.create_lease(&write(&run)).await.unwrap();
    assert_eq!(found(&checker), []);
    run.members[1].state = MemberState::Restarting;
    let mut second = write(&run);
    second.resource_version = created.resource_version;
    sim.replace_lease(&second).await.unwrap();
    assert_eq!(found(&checker), [Invariant::SetConcurrencyExceeded]);
}

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
