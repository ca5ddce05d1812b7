//! Several replicas, many nodes, crashes: the slots of a group are never exceeded and no
//! drain is lost.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster_api::{ClusterApi, LabelSelector, WatchEvent};
use cluster_sim::{Budget, IntOrPercent, Operation, WorkloadSpec};
use common::*;
use fleetlock_core::group::{GroupState, lease_selector};
use fleetlock_core::{Coordinator, HolderPhase, Kind};
use futures::StreamExt;
use tokio::time::{advance, sleep};

/// Sixteen nodes, each running Zincati against one of two replicas at random-ish, all with an
/// update staged at once. The group has three slots. Every version of the group Lease the
/// cluster ever held is checked.
#[tokio::test(start_paused = true)]
async fn two_replicas_never_exceed_a_groups_slots() {
    const NODES: usize = 16;
    const SLOTS: u32 = 3;
    let sim = fleet(NODES);
    sim.add_workload(
        WorkloadSpec::deployment("shop", "web")
            .replicas(16)
            .grace_period(5)
            .pod_start_secs(3),
    )
    .unwrap();
    sim.add_budget(Budget::max_unavailable(
        "shop",
        "web",
        LabelSelector::eq("app", "web"),
        IntOrPercent::Int(2),
    ));
    // Make every lock read and write yield, so the replicas' read-modify-write cycles
    // interleave and collide.
    for op in [
        Operation::GetLease,
        Operation::ReplaceLease,
        Operation::CreateLease,
    ] {
        sim.set_latency(op, Duration::from_millis(7));
    }

    let mut config = config();
    config.groups.get_mut("default").unwrap().slots = SLOTS;
    config.drain.budget_retry = Duration::from_secs(1);
    config.drain.retry_initial = Duration::from_secs(1);
    config.drain.retry_max = Duration::from_secs(4);
    config.drain.request_wait = Duration::from_secs(20);
    let (a, _run_a) = replica(&sim, config.clone(), "a").await;
    let (b, _run_b) = replica(&sim, config, "b").await;

    // Every state of the lock, as the cluster stored it.
    let max_held = Arc::new(Mutex::new(0usize));
    let stored_versions = Arc::new(Mutex::new(0u64));
    let mut watch = sim.watch_leases(NS, &lease_selector()).await.unwrap();
    let monitor = tokio::spawn({
        let (max_held, stored_versions) = (max_held.clone(), stored_versions.clone());
        async move {
            while let Some(Ok(event)) = watch.next().await {
                if let WatchEvent::Applied(lease) = event {
                    *stored_versions.lock().unwrap() += 1;
                    let state = GroupState::from_lease(&lease).unwrap();
                    let mut max = max_held.lock().unwrap();
                    *max = (*max).max(state.holders.len());
                    assert!(state.holders.len() <= SLOTS as usize, "{:?}", state.holders);
                }
            }
        }
    });

    let rebooted = Arc::new(Mutex::new(BTreeSet::new()));
    let mut agents = Vec::new();
    for i in 1..=NODES {
        let (sim, a, b, rebooted) = (sim.clone(), a.clone(), b.clone(), rebooted.clone());
        agents.push(tokio::spawn(async move {
            let node = format!("n{i}");
            let params = zincati(&node, "default");
            let pick = |attempt: usize| -> &Coordinator {
                if (i + attempt).is_multiple_of(2) {
                    &a
                } else {
                    &b
                }
            };
            let mut attempt = 0;
            // Zincati's loop: ask until yes, waiting between refusals.
            loop {
                match pick(attempt).pre_reboot(&params).await {
                    Ok(()) => break,
                    Err(r) => {
                        assert!(matches!(r.kind, Kind::LockHeld | Kind::Draining), "{r}");
                        attempt += 1;
                        sleep(Duration::from_secs(10 + i as u64)).await;
                    }
                }
            }
            assert!(
                sim.pods_on(&node).is_empty(),
                "{node} approved with pods on it"
            );
            sim.reboot_node(&node).unwrap();
            while sim.os_up(&node) == Some(false) {
                sleep(Duration::from_secs(5)).await;
            }
            // As soon as it starts after boot (before the kubelet has reported), Zincati
            // reports steady-state, maybe to the other replica.
            pick(attempt + 1).steady_state(&params).await.unwrap();
            rebooted.lock().unwrap().insert(node);
        }));
    }
    for agent in agents {
        agent.await.unwrap();
    }
    advance(Duration::from_millis(10)).await;
    monitor.abort();

    assert_eq!(rebooted.lock().unwrap().len(), NODES, "every node rebooted");
    assert_eq!(
        *max_held.lock().unwrap(),
        SLOTS as usize,
        "the slots were used in parallel"
    );
    assert!(
        sim.nodes().iter().all(|n| !n.unschedulable),
        "every node uncordoned"
    );
    // Every attempted write either landed as a version or lost a compare-and-swap; the
    // replicas did collide, and the losers read again instead of overwriting.
    let attempts =
        sim.calls().get(Operation::ReplaceLease) + sim.calls().get(Operation::CreateLease);
    let landed = *stored_versions.lock().unwrap();
    assert!(
        attempts > landed,
        "no write ever conflicted ({attempts} attempts, {landed} landed)"
    );
}

/// A replica crashes while a drain waits on a budget; another starts and, without any
/// request, picks the drain up from the Lease and finishes it.
#[tokio::test(start_paused = true)]
async fn a_restarted_server_finishes_the_drain_it_finds() {
    let sim = db_under_a_full_budget(5, 5);

    let mut config = config();
    config.drain.request_wait = Duration::from_secs(2);
    config.drain.budget_retry = Duration::from_secs(1);
    config.drain.retry_initial = Duration::from_secs(1);
    config.drain.retry_max = Duration::from_secs(2);
    // A drain that waits on the budget, which the pre-flight would refuse to start.
    config.drain.preflight = false;
    let (a, run_a) = replica(&sim, config.clone(), "a").await;
    let n1 = zincati("n1", "default");
    assert_eq!(a.pre_reboot(&n1).await.unwrap_err().kind, Kind::Draining);

    // Crash: replica a and its drain stop.
    run_a.abort();
    advance(Duration::from_millis(1)).await;
    let evictions = sim.calls().get(Operation::EvictPod);
    advance(Duration::from_secs(30)).await;
    assert_eq!(
        sim.calls().get(Operation::EvictPod),
        evictions,
        "the crashed replica's drain stopped"
    );

    // The budget makes room while nobody is draining.
    sim.scale(&WorkloadSpec::deployment("shop", "db").reference(), 3)
        .unwrap();
    advance(Duration::from_secs(10)).await;

    let (b, _run_b) = replica(&sim, config, "b").await;
    for _ in 0..60 {
        advance(Duration::from_secs(1)).await;
        let state = GroupState::from_lease(&sim.lease(NS, "fleetlock-default").unwrap()).unwrap();
        if state.holders[0].phase == HolderPhase::Approved {
            break;
        }
    }
    let state = GroupState::from_lease(&sim.lease(NS, "fleetlock-default").unwrap()).unwrap();
    assert_eq!(
        state.holders[0].phase,
        HolderPhase::Approved,
        "b finished the drain on its own"
    );
    assert_eq!(state.holders[0].granted_by, "a");
    assert!(sim.pods_on("n1").is_empty());

    sim.reset_calls();
    b.pre_reboot(&n1).await.unwrap();
    assert_eq!(
        sim.calls().total(),
        0,
        "the next poll is answered from memory"
    );
}
