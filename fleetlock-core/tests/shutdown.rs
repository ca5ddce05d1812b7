//! Stopping a replica: the shutdown signal stops its drains at their next safe point and
//! `run` returns, leaving the grant in the group Lease for the next replica to resume; a run
//! dropped without the signal (a crash) stops its drains at once.

mod common;

use std::sync::Arc;
use std::time::Duration;

use cluster_sim::{Operation, SimCluster, WorkloadSpec};
use common::*;
use fleetlock_core::group::GroupState;
use fleetlock_core::{Coordinator, CoreBuilder, FleetLockConfig, HolderPhase, Kind};
use tokio::task::JoinHandle;
use tokio::time::advance;
use tokio_util::sync::CancellationToken;

/// A drain that retries every second against the budget, without the pre-flight that would
/// refuse to start it.
fn retrying_drain() -> FleetLockConfig {
    let mut config = config();
    config.drain.preflight = false;
    config.drain.request_wait = Duration::from_secs(5);
    config.drain.budget_retry = Duration::from_secs(1);
    config
}

/// A replica that stops when `shutdown` is cancelled, running.
async fn stoppable(
    sim: &SimCluster,
    name: &str,
    shutdown: CancellationToken,
) -> (Coordinator, JoinHandle<()>) {
    let config = retrying_drain();
    config.validate().unwrap();
    let coordinator = Coordinator::builder(Arc::new(sim.clone()), config)
        .clock(Arc::new(sim.clone()))
        .instance(name)
        .shutdown(shutdown)
        .build();
    let run = tokio::spawn({
        let c = coordinator.clone();
        async move { c.run().await }
    });
    coordinator.wait_ready().await;
    (coordinator, run)
}

/// n1's phase in the default group, as its Lease says.
fn n1_phase(sim: &SimCluster) -> Option<HolderPhase> {
    let lease = sim.lease(NS, "fleetlock-default")?;
    let state = GroupState::from_lease(&lease).unwrap();
    state
        .holders
        .iter()
        .find(|h| h.node == "n1")
        .map(|h| h.phase)
}

/// Replica a grants n1 a slot and drains it against a budget that allows no eviction; then it
/// is told to stop. Its `run` returns (within a minute of the paused clock), n1 stays cordoned
/// and the slot stays held, draining, and nothing is evicted after.
async fn shut_down_mid_drain(sim: &SimCluster) {
    let shutdown = CancellationToken::new();
    let (a, run) = stoppable(sim, "a", shutdown.clone()).await;
    let n1 = zincati("n1", "default");
    assert_eq!(a.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);
    assert!(sim.calls().get(Operation::EvictPod) > 0, "{}", sim.calls());

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("run returns once the shutdown signal is given")
        .unwrap();

    assert!(sim.node("n1").unwrap().unschedulable, "n1 stays cordoned");
    assert_eq!(n1_phase(sim), Some(HolderPhase::Draining));
    assert_eq!(sim.pods_on("n1").len(), 1, "the db pod is still on n1");
    let evictions = sim.calls().get(Operation::EvictPod);
    advance(Duration::from_secs(30)).await;
    settle().await;
    assert_eq!(
        sim.calls().get(Operation::EvictPod),
        evictions,
        "the stopped drain evicts nothing more"
    );
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_stops_a_drain_held_by_a_budget_and_keeps_its_slot() {
    let sim = db_under_a_full_budget(30, 10);
    shut_down_mid_drain(&sim).await;
}

#[tokio::test(start_paused = true)]
async fn the_next_replica_resumes_a_drain_a_shutdown_stopped() {
    let sim = db_under_a_full_budget(30, 10);
    shut_down_mid_drain(&sim).await;

    // A new replica picks the drain up from the Lease; it approves once the budget allows.
    let (b, _run_b) = stoppable(&sim, "b", CancellationToken::new()).await;
    let db = WorkloadSpec::deployment("shop", "db").reference();
    sim.scale(&db, 3).unwrap();
    for _ in 0..1000 {
        if n1_phase(&sim) == Some(HolderPhase::Approved) {
            break;
        }
        advance(Duration::from_millis(100)).await;
    }
    assert_eq!(n1_phase(&sim), Some(HolderPhase::Approved));
    assert!(sim.pods_on("n1").is_empty());
    assert!(sim.node("n1").unwrap().unschedulable);
    b.pre_reboot(&zincati("n1", "default")).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_run_dropped_without_a_shutdown_stops_its_drains_at_once() {
    let sim = db_under_a_full_budget(30, 10);
    let (a, run) = stoppable(&sim, "a", CancellationToken::new()).await;
    let n1 = zincati("n1", "default");
    assert_eq!(a.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);

    // A crash: the run is dropped, with no shutdown signal.
    run.abort();
    let _ = run.await;
    let evictions = sim.calls().get(Operation::EvictPod);
    advance(Duration::from_secs(30)).await;
    settle().await;
    assert_eq!(
        sim.calls().get(Operation::EvictPod),
        evictions,
        "the crashed replica's drain evicts nothing more"
    );
    assert_eq!(n1_phase(&sim), Some(HolderPhase::Draining));
}
