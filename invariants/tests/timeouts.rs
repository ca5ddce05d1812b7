//! The drain-timeout race of issue 26, played out by a real coordinator: a drain times out
//! (`onTimeout: release`) while another replica approves the same grant and the node reboots.
//! [`Invariant::RebootingSlotFreed`] catches a coordinator built with the defect, and stays
//! quiet about the one without it.

use std::sync::Arc;
use std::time::Duration;

use cluster_api::{ClusterApi, CoreBuilder, LabelSelector, Pod};
use cluster_sim::{Budget, IntOrPercent, Operation, SimCluster, machine_id_for};
use fleetlock_core::drain::DrainOptions;
use fleetlock_core::group::{GroupState, lease_name};
use fleetlock_core::{
    ClientParams, Coordinator, FleetLockConfig, HolderPhase, OnDrainTimeout, Sabotage, zincati_id,
};
use invariants::{Invariant, Invariants, Violation};
use tokio::sync::watch;
use tokio::time::{advance, sleep};

const NS: &str = "restart-manager";

/// Plays the race on a coordinator (with `sabotage` built in, if any); the
/// `RebootingSlotFreed` violations it leaves.
async fn race(sabotage: Option<Sabotage>) -> Vec<Violation> {
    let sim = SimCluster::new();
    sim.add_fleet(2);
    sim.add_pod(
        Pod::new("shop", "slow")
            .on("n1")
            .owned_by("ReplicaSet", "slow")
            .label("app", "slow"),
    )
    .unwrap();
    sim.add_budget(Budget::min_available(
        "shop",
        "slow",
        LabelSelector::eq("app", "slow"),
        IntOrPercent::Int(1),
    ));
    let checker = Invariants::watch(&sim, NS, DrainOptions::default(), 1);

    let mut config = FleetLockConfig::default();
    config.drain.preflight = false;
    config.drain.request_wait = Duration::from_secs(1);
    config.drain.budget_retry = Duration::from_secs(1);
    config.drain.timeout = Duration::from_secs(30);
    config.drain.on_timeout = OnDrainTimeout::Release;
    // Not leading: it runs no drain but the one its request starts.
    let (_leading, leadership) = watch::channel(false);
    let mut builder = Coordinator::builder(Arc::new(sim.clone()), config)
        .clock(Arc::new(sim.clone()))
        .instance("a")
        .leadership(leadership);
    if let Some(sabotage) = sabotage {
        builder = builder.sabotage(sabotage);
    }
    let a = builder.build();
    let run = tokio::spawn({
        let a = a.clone();
        async move { a.run().await }
    });
    a.wait_ready().await;
    let n1 = ClientParams {
        id: zincati_id(&machine_id_for("n1")).unwrap(),
        group: "default".into(),
    };
    assert!(a.pre_reboot(&n1).await.is_err(), "n1 is draining");

    // At its deadline, a's drain sets out to give the slot back; its write waits.
    sim.set_latency(Operation::ReplaceLease, Duration::from_secs(20));
    advance(Duration::from_secs(30)).await;
    sleep(Duration::from_millis(10)).await;
    sim.set_latency(Operation::ReplaceLease, Duration::ZERO);

    // Meanwhile another replica approves n1, and Zincati reboots it.
    sim.delete_pod("shop", "slow");
    let lease = sim.lease(NS, &lease_name("default")).unwrap();
    let mut state = GroupState::from_lease(&lease).unwrap();
    let holder = state.holder_mut(&n1.id).unwrap();
    holder.phase = HolderPhase::Approved;
    holder.approved_at = Some(sim.now());
    holder.boot_id = Some(sim.node("n1").unwrap().boot_id);
    sim.replace_lease(&state.to_lease(NS, sim.now()))
        .await
        .unwrap();
    sim.reboot_node("n1").unwrap();

    // A second at a time, so that the cluster's own timers (the reboot's end) keep their
    // order with the coordinator's.
    for _ in 0..60 {
        advance(Duration::from_secs(1)).await;
    }
    run.abort();
    checker
        .violations()
        .into_iter()
        .filter(|v| v.invariant == Invariant::RebootingSlotFreed)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_timeout_that_frees_a_rebooting_node_is_caught() {
    let caught = race(Some(Sabotage::TimeOutAnyPhase)).await;
    assert_eq!(caught.len(), 1, "{caught:?}");
    assert!(caught[0].detail.contains("n1"), "{caught:?}");
}

#[tokio::test(start_paused = true)]
async fn a_timeout_that_leaves_the_approved_grant_alone_is_not_flagged() {
    assert_eq!(race(None).await, []);
}
