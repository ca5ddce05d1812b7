//! Reboot notices: every transition announced once across replicas, even those two replicas
//! both see (a blocked drain, a node back, a stuck holder).

use std::sync::Arc;

use cluster_api::CoreBuilder;
use fleetlock_core::{Coordinator, Observer, RebootNotice, RebootTransition as T};
use parking_lot::Mutex;

use super::*;

#[derive(Default)]
struct Heard(Mutex<Vec<RebootNotice>>);

impl Observer for Heard {
    fn wants_notices(&self) -> bool {
        true
    }
    fn reboot(&self, notice: &RebootNotice) {
        self.0.lock().push(notice.clone());
    }
}

async fn listening_replica(
    sim: &cluster_sim::SimCluster,
    config: fleetlock_core::FleetLockConfig,
    name: &str,
    heard: Arc<Heard>,
) -> (Coordinator, tokio::task::JoinHandle<()>) {
    let c = Coordinator::builder(Arc::new(sim.clone()), config)
        .clock(Arc::new(sim.clone()))
        .instance(name)
        .observer(heard)
        .build();
    let run = tokio::spawn({
        let c = c.clone();
        async move { c.run().await }
    });
    c.wait_ready().await;
    (c, run)
}

#[tokio::test(start_paused = true)]
async fn every_reboot_transition_is_announced_once_across_replicas() {
    let sim = fleet(3);
    // No controller: the drain stops until someone deletes it.
    sim.add_pod(Pod::new("default", "debug").on("n1")).unwrap();
    let mut config = config();
    config.drain.preflight = false;
    config.stuck.after = Duration::from_secs(600);
    // This Zincati says steady-state late, after the slot is reported stuck.
    for group in config.groups.values_mut() {
        group.steady_state_wait = Duration::ZERO;
    }
    let heard = Arc::new(Heard::default());
    // Two replicas, neither elected: both look after every holder, both run its drain.
    let (a, _run_a) = listening_replica(&sim, config.clone(), "a", heard.clone()).await;
    let (b, _run_b) = listening_replica(&sim, config, "b", heard.clone()).await;
    let n1 = zincati("n1", "default");

    assert_eq!(
        a.pre_reboot(&n1).await.unwrap_err().kind,
        Kind::DrainBlocked
    );
    b.maintain().await;
    settle().await;
    sim.delete_pod("default", "debug");
    advance(Duration::from_secs(31)).await;
    settle().await;
    a.pre_reboot(&n1).await.unwrap();
    sim.reboot_node("n1").unwrap();
    advance(Duration::from_secs(60)).await;
    settle().await;
    a.maintain().await;
    b.maintain().await;
    // Past stuck.after (counted from the grant), both replicas notice.
    advance(Duration::from_secs(600)).await;
    settle().await;
    a.maintain().await;
    b.maintain().await;
    b.steady_state(&n1).await.unwrap();

    let heard = heard.0.lock().clone();
    let transitions: Vec<T> = heard.iter().map(|n| n.transition).collect();
    assert_eq!(
        transitions,
        [
            T::Granted,
            T::DrainBlocked,
            T::Approved,
            T::Back,
            T::Stuck,
            T::Healed
        ]
    );
    assert!(heard.iter().all(|n| n.node == "n1" && n.group == "default"));
    assert!(
        heard[1].message.contains("default/debug"),
        "{}",
        heard[1].message
    );
}

/// Nobody listening: no claims are written to the Lease for transitions only seen.
#[tokio::test(start_paused = true)]
async fn without_a_listener_nothing_is_claimed() {
    let sim = fleet(2);
    let (c, _run) = replica(&sim, config(), "a").await;
    let n1 = zincati("n1", "default");
    c.pre_reboot(&n1).await.unwrap();
    sim.reboot_node("n1").unwrap();
    advance(Duration::from_secs(60)).await;
    settle().await;
    c.maintain().await;
    let lease = sim.lease(NS, "fleetlock-default").unwrap();
    let state = fleetlock_core::group::GroupState::from_lease(&lease).unwrap();
    assert!(state.holders[0].announced.is_empty());
}
