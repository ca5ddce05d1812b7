//! A replica whose watches are broken must not answer from what it last saw.

mod common;

use std::time::Duration;

use cluster_api::Error;
use cluster_sim::Operation;
use common::*;
use fleetlock_core::Kind;
use tokio::time::advance;

/// n1 gets its slot through replica A while B's lease watch is down, and n1's steady-state
/// goes to B. B's cache says n1 holds nothing; only the cluster knows better.
#[tokio::test(start_paused = true)]
async fn a_replica_with_a_broken_lease_watch_asks_the_cluster() {
    let sim = fleet(3);
    let (a, _run_a) = replica(&sim, config(), "a").await;
    let (b, _run_b) = replica(&sim, config(), "b").await;
    sim.fail_always(
        Operation::WatchLeases,
        Error::unavailable("dial tcp 10.96.0.1:443: connect: connection refused"),
    );
    sim.break_watches();
    settle().await;

    let (n1, n2) = (zincati("n1", "default"), zincati("n2", "default"));
    a.pre_reboot(&n1).await.unwrap();
    // B does not know n1 holds the slot: refusing n2 or releasing n1 needs a fresh read.
    assert_eq!(b.pre_reboot(&n2).await.unwrap_err().kind, Kind::LockHeld);
    // n1 reboots, and its kubelet has reported the new boot when Zincati says so.
    sim.reboot_node("n1").unwrap();
    let sim_config = cluster_sim::SimConfig::default();
    advance(sim_config.reboot_duration + sim_config.kubelet_start).await;
    settle().await;
    b.steady_state(&n1).await.unwrap();
    assert_eq!(
        sim.lease(NS, "fleetlock-default").unwrap().holder_identity,
        None,
        "B released the slot it could not see"
    );
    assert!(!sim.node("n1").unwrap().unschedulable);

    // A's cache, also broken, still says n1 holds an approved slot; asked again, A must not
    // say yes from memory but take a slot anew (free now, and n1 has nothing to drain).
    a.pre_reboot(&n1).await.unwrap();
    assert_eq!(
        sim.lease(NS, "fleetlock-default")
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("n1"),
        "a fresh grant, not a stale yes"
    );
}

/// Readiness survives a short outage and goes false past the grace time; the cache heals
/// with the next full list.
#[tokio::test(start_paused = true)]
async fn readiness_tolerates_a_broken_watch_only_for_the_grace_time() {
    let sim = fleet(1);
    let (a, _run_a) = replica(&sim, config(), "a").await;
    assert!(a.is_ready());
    sim.fail_always(
        Operation::WatchNodes,
        Error::unavailable("connection refused"),
    );
    sim.break_watches();
    settle().await;
    assert!(a.is_ready(), "within the grace time");
    advance(fleetlock_core::DEFAULT_CACHE_GRACE + Duration::from_secs(1)).await;
    assert!(!a.is_ready());
    let problem = a.readiness_problem().unwrap();
    assert!(problem.contains("node watch has been failing"), "{problem}");

    sim.clear_faults();
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert!(a.is_ready(), "healed by a fresh list");
}

/// While the node cache is broken, an id it does not know is not reported as unknown: the
/// Node may just be new.
#[tokio::test(start_paused = true)]
async fn an_unknown_id_from_a_broken_node_cache_is_unavailable_not_unknown() {
    let sim = fleet(1);
    let (a, _run_a) = replica(&sim, config(), "a").await;
    sim.fail_always(
        Operation::WatchNodes,
        Error::unavailable("connection refused"),
    );
    sim.break_watches();
    settle().await;
    sim.add_node(cluster_api::Node::new("n2").machine_id(cluster_sim::machine_id_for("n2")));
    let refusal = a.pre_reboot(&zincati("n2", "default")).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::ClusterUnavailable, "{refusal}");
}
