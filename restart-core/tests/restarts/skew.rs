//! Replicas whose wall clocks disagree: a lock, a set's run and a restart's timeout are
//! judged by how long this replica has watched the Lease unchanged, never by comparing the
//! holder's times with its own clock, so a replica whose clock runs ahead cannot take over
//! or time out a live restart.

use restart_core::sets::{MemberState, OnFailure};

use super::sets::{restarts_of, set_replica_as, shop, states};
use super::*;

const HOUR: i64 = 3600;

#[tokio::test(start_paused = true)]
async fn a_replica_whose_clock_runs_ahead_does_not_take_over_a_live_lock() {
    let sim = cluster();
    sim.stall_rollouts(&web(), true).unwrap();
    let config = RestartConfig::default();
    let (a, _, _run_a) = replica(&sim, allowlist(vec![]), config.clone(), "a").await;
    let ahead = As::skewed(HOUR).follower();
    let (b, _, _run_b) = replica_as(&sim, allowlist(vec![]), config, "b", ahead).await;
    a.restart(&web(), &alice(), Some("certs")).await.unwrap();

    // To b's clock alice's lock ran out an hour ago; it has watched it for a second.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let bob = Identity::user("bob");
    let err = b.restart(&web(), &bob, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked, "{err}");
    assert_eq!(
        b.status(&web()).unwrap().lock.map(|l| l.holder).as_deref(),
        Some("alice"),
        "shown as held, too"
    );
    assert_eq!(
        reasons(&sim, &web())
            .iter()
            .filter(|r| *r == "Restarted")
            .count(),
        1
    );

    // Once it has stayed unchanged for its whole duration (300 s), it has run out.
    tokio::time::sleep(Duration::from_secs(300)).await;
    b.restart(&web(), &bob, None).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_leader_whose_clock_runs_ahead_does_not_time_out_a_live_restart() {
    let sim = cluster();
    sim.stall_rollouts(&web(), true).unwrap();
    // Shorter than web's progress deadline (120 s), so it times out rather than fails.
    let config = RestartConfig {
        lock_duration: Duration::from_secs(60),
        ..RestartConfig::default()
    };
    let follower = As::skewed(0).follower();
    let (a, _, _run_a) = replica_as(&sim, allowlist(vec![]), config.clone(), "a", follower).await;
    let (_leader, _, _run_l) =
        replica_as(&sim, allowlist(vec![]), config, "leader", As::skewed(HOUR)).await;
    a.restart(&web(), &alice(), None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(
        !reasons(&sim, &web()).contains(&"RestartTimedOut".to_string()),
        "{:?}",
        reasons(&sim, &web())
    );
    let status = a.status(&web()).unwrap();
    assert_eq!(status.phase, Phase::Progressing, "{status:?}");
    assert!(status.lock.is_some());

    // Its 60 s pass on the leader's own clock: then it times out.
    tokio::time::sleep(Duration::from_secs(40)).await;
    assert!(
        reasons(&sim, &web()).contains(&"RestartTimedOut".to_string()),
        "{:?}",
        reasons(&sim, &web())
    );
}

#[tokio::test(start_paused = true)]
async fn a_set_driver_whose_clock_runs_ahead_waits_for_a_live_member_lock() {
    let sim = cluster();
    sim.stall_rollouts(&web(), true).unwrap();
    let config = RestartConfig {
        lock_duration: Duration::from_secs(HOUR as u64),
        ..RestartConfig::default()
    };
    let follower = As::skewed(0).follower();
    let (a, _, _run_a) = replica_as(&sim, allowlist(vec![]), config.clone(), "a", follower).await;
    let ahead = As::skewed(2 * HOUR);
    let (driver, _run_d) = set_replica_as(&sim, shop(1, OnFailure::Stop), config, "d", ahead).await;
    a.restart(&web(), &Identity::user("bob"), None)
        .await
        .unwrap();
    driver.start_set("shop", &alice(), None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let status = driver.set_status("shop").unwrap();
    assert_eq!(states(&status)[0], MemberState::Waiting, "{status:?}");
    assert_eq!(restarts_of(&sim, &web()), 1, "bob's only");
    assert!(!reasons(&sim, &web()).contains(&"RestartLockTakenOver".to_string()));
}

#[tokio::test(start_paused = true)]
async fn a_second_run_is_refused_while_one_goes_on_whatever_the_clock_says() {
    let sim = cluster();
    sim.stall_rollouts(&web(), true).unwrap();
    let config = RestartConfig::default();
    let (a, _run_a) = set_replica_as(
        &sim,
        shop(1, OnFailure::Stop),
        config.clone(),
        "a",
        As::skewed(0),
    )
    .await;
    let ahead = As::skewed(HOUR).follower();
    let (b, _run_b) = set_replica_as(&sim, shop(1, OnFailure::Stop), config, "b", ahead).await;
    a.start_set("shop", &alice(), None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let err = b
        .start_set("shop", &Identity::user("bob"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SetRunning, "{err}");
    let run = a.set_status("shop").unwrap().run.unwrap();
    assert_eq!(run.by, "alice");
}
