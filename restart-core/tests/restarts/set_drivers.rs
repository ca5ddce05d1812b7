//! Restart sets whose drivers come and go or disagree: a run that outlives its replica, two
//! drivers at once, a driver with a stale view, and the run's Events.

use cluster_api::CoreBuilder;
use restart_core::SetStatus;
use restart_core::sets::{MemberState, OnFailure, RunState};

use super::sets::{follow, restarts_of, set_replica, shop, states};
use super::*;
use MemberState::Restarting;

/// The replica driving a run dies mid-set; another carries on from the run's Lease, and no
/// member restarts twice.
#[tokio::test(start_paused = true)]
async fn a_run_survives_the_replica_that_drove_it() {
    let sim = cluster();
    let config = RestartConfig::default();
    let (a, run_a) = set_replica(&sim, shop(1, OnFailure::Stop), config.clone(), "a").await;
    a.start_set("shop", &alice(), None).await.unwrap();
    let mut updates = a.subscribe_sets();
    while states(&a.set_status("shop").unwrap())[1] != Restarting {
        updates.recv().await.unwrap();
    }
    run_a.abort();
    advance(Duration::from_secs(20)).await;

    let (b, _run_b) = set_replica(&sim, shop(1, OnFailure::Stop), config, "b").await;
    let (done, _) = follow(&b).await;
    assert_eq!(done.run.unwrap().state, RunState::Complete);
    for w in [web(), db(), agent()] {
        assert_eq!(restarts_of(&sim, &w), 1, "{w}");
    }
}

/// Two replicas that both drive (neither is told it is not the leader) still restart each
/// member once: every step is a compare-and-swap on the run, and each member's restart id
/// is the run's.
#[tokio::test(start_paused = true)]
async fn two_drivers_at_once_restart_each_member_once() {
    let sim = cluster();
    let config = RestartConfig::default();
    let (a, _run_a) = set_replica(&sim, shop(2, OnFailure::Stop), config.clone(), "a").await;
    let (b, _run_b) = set_replica(&sim, shop(2, OnFailure::Stop), config, "b").await;
    a.start_set("shop", &alice(), None).await.unwrap();
    let (done_a, _) = follow(&a).await;
    let (done_b, _) = follow(&b).await;
    assert_eq!(done_a.run.unwrap().state, RunState::Complete);
    assert_eq!(done_b.run.unwrap().state, RunState::Complete);
    for w in [web(), db(), agent()] {
        assert_eq!(restarts_of(&sim, &w), 1, "{w}");
    }
}

/// A driver whose view of the members' locks lags (its lock watch stalls while its run
/// watch goes on) neither sends a member that has taken its lock back to waiting nor
/// fights the driver that sees the cluster as it is: before it writes, it reads the locks.
#[tokio::test(start_paused = true)]
async fn a_driver_with_a_stale_view_of_the_locks_does_not_undo_a_fresh_one() {
    let sim = cluster();
    sim.stall_rollouts(&web(), true).unwrap();
    let config = RestartConfig {
        lock_duration: Duration::from_secs(3600),
        ..RestartConfig::default()
    };
    let (a, _run_a) = set_replica(&sim, shop(1, OnFailure::Stop), config.clone(), "a").await;
    // The second driver is another client of the cluster, and judges no rollout.
    let lagging = sim.client();
    let b = Restarter::builder(Arc::new(lagging.clone()), allowlist(vec![]))
        .config(config)
        .instance("b")
        .sets(vec![shop(1, OnFailure::Stop)])
        .only_for([], ["shop".to_string()])
        .build();
    let _run_b = tokio::spawn({
        let b = b.clone();
        async move { b.run().await }
    });
    b.wait_ready().await;

    a.restart(&web(), &Identity::user("bob"), None)
        .await
        .unwrap();
    a.start_set("shop", &alice(), None).await.unwrap();
    let mut updates = b.subscribe_sets();
    let waiting = |s: SetStatus| s.run.is_some() && states(&s)[0] == MemberState::Waiting;
    while !waiting(b.set_status("shop").unwrap()) {
        updates.recv().await.unwrap();
    }
    // From here the second driver sees bob holding the lock, whatever happens to it.
    lagging.hold_watches(
        cluster_sim::HeldWatch::leases(&restart_core::lock::lease_selector()),
        true,
    );
    sim.stall_rollouts(&web(), false).unwrap();

    let mut restarting = false;
    let done = tokio::time::timeout(
        Duration::from_secs(3600),
        a.wait_set("shop", |s| {
            let first = states(s)[0];
            assert!(
                !(restarting && first == MemberState::Waiting),
                "the first member went back to waiting after it took its lock: {:?}",
                s.run.as_ref().unwrap().members[0]
            );
            restarting |= first == Restarting;
        }),
    )
    .await
    .expect("the run ends")
    .unwrap();
    assert!(restarting);
    assert_eq!(done.run.unwrap().state, RunState::Complete);
    assert_eq!(restarts_of(&sim, &web()), 2, "bob's, then the set's");
}

/// The run's Events name its Lease by uid, as `kubectl describe lease restart-set.shop`
/// needs to show them.
#[tokio::test(start_paused = true)]
async fn set_events_name_the_run_lease_by_uid() {
    let sim = cluster();
    let (r, _run) = set_replica(
        &sim,
        shop(1, OnFailure::Stop),
        RestartConfig::default(),
        "a",
    )
    .await;
    r.start_set("shop", &alice(), None).await.unwrap();
    follow(&r).await;
    let uid = sim
        .lease("restart-manager", "restart-set.shop")
        .unwrap()
        .uid;
    let uids: Vec<(String, Option<String>)> = sim
        .events()
        .into_iter()
        .filter(|e| e.regarding.name == "restart-set.shop")
        .map(|e| (e.reason, e.regarding.uid))
        .collect();
    assert_eq!(
        uids,
        [
            ("RestartSetStarted".to_string(), Some(uid.clone())),
            ("RestartSetComplete".to_string(), Some(uid))
        ]
    );
}
