//! Restarts rolled out like kubectl: every kind, paused and failed rollouts, timeouts, two replicas, progress, relists, readiness.

use super::*;

#[tokio::test(start_paused = true)]
async fn every_kind_restarts_and_completes_like_kubectl() {
    let sim = cluster();
    let (r, counts, _run) = replica(&sim, allowlist(vec![]), RestartConfig::default(), "a").await;
    for w in [web(), db(), agent()] {
        let before: Vec<String> = sim.pods_of(&w).into_iter().map(|p| p.uid).collect();
        let started = r.restart(&w, &alice(), Some("rotate certs")).await.unwrap();
        assert_eq!(started.phase, Phase::Restarting, "{w}");
        assert_eq!(started.lock.as_ref().unwrap().holder, "alice");

        // The template carries restartedAt in RFC 3339, as kubectl writes it.
        let stamp = sim.workload(&w).unwrap().template_annotations[RESTARTED_AT].clone();
        assert_eq!(stamp, sim.now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string());

        let mut seen = Vec::new();
        let done =
            tokio::time::timeout(Duration::from_secs(600), r.wait(&w, |s| seen.push(s.phase)))
                .await
                .unwrap();
        assert_eq!(done.phase, Phase::Complete, "{w}: {done:?}");
        assert!(seen.contains(&Phase::Progressing), "{w}: {seen:?}");
        assert!(done.lock.is_none(), "released on completion");
        let last = done.last_restart.unwrap();
        assert_eq!(
            (last.by.as_str(), last.reason.as_deref(), last.outcome),
            ("alice", Some("rotate certs"), Some(Outcome::Complete))
        );
        assert_eq!(reasons(&sim, &w), ["Restarted", "RolloutComplete"], "{w}");

        advance(Duration::from_secs(30)).await;
        let after: Vec<String> = sim.pods_of(&w).into_iter().map(|p| p.uid).collect();
        assert!(
            after.iter().all(|uid| !before.contains(uid)),
            "{w}: every pod replaced"
        );
    }
    assert_eq!(counts.restarted.lock().unwrap().len(), 3);
    assert!(counts.failed.lock().unwrap().is_empty());

    let history = r.history(&web()).await.unwrap();
    assert_eq!(history[0].reason, "RolloutComplete", "newest first");
    assert!(
        history[1]
            .message
            .contains("restarted by alice: rotate certs")
    );
}

#[tokio::test(start_paused = true)]
async fn a_paused_deployment_is_refused_and_nothing_is_counted() {
    let sim = cluster();
    sim.set_paused(&web(), true).unwrap();
    advance(Duration::from_secs(1)).await;
    let (r, counts, _run) = replica(&sim, allowlist(vec![]), RestartConfig::default(), "a").await;
    let err = r.restart(&web(), &alice(), None).await.unwrap_err();
    assert_eq!(err, RestartError::Paused(web()));
    assert_eq!(err.kind(), ErrorKind::Paused);
    assert!(err.to_string().contains("can't restart paused deployment"));
    assert!(
        !sim.workload(&web())
            .unwrap()
            .template_annotations
            .contains_key(RESTARTED_AT)
    );
    assert!(
        r.status(&web()).unwrap().lock.is_none(),
        "no lock left behind"
    );
    assert_eq!(reasons(&sim, &web()), ["RestartRefused"]);
    assert!(
        counts.restarted.lock().unwrap().is_empty(),
        "a refusal is not a restart"
    );
    assert!(counts.failed.lock().unwrap().is_empty(), "nor a failed one");
}

#[tokio::test(start_paused = true)]
async fn two_replicas_share_one_lock_per_workload() {
    let sim = cluster();
    let (a, counts_a, _ra) = replica(&sim, allowlist(vec![]), RestartConfig::default(), "a").await;
    let (b, counts_b, _rb) = replica(&sim, allowlist(vec![]), RestartConfig::default(), "b").await;

    a.restart(&web(), &alice(), Some("first")).await.unwrap();
    let err = b
        .restart(&web(), &Identity::user("bob"), Some("second"))
        .await
        .unwrap_err();
    match &err {
        RestartError::Locked { lock, .. } => {
            assert_eq!(lock.holder, "alice");
            assert_eq!(lock.reason.as_deref(), Some("first"));
            assert_eq!(lock.since, sim.now());
        }
        other => panic!("expected locked, got {other:?}"),
    }
    assert!(err.to_string().contains("being restarted by alice since"));
    // Replica b sees a's lock in its own status view too.
    advance(Duration::from_millis(10)).await;
    assert_eq!(b.status(&web()).unwrap().lock.unwrap().holder, "alice");

    // Other workloads are not affected.
    b.restart(&db(), &Identity::user("bob"), None)
        .await
        .unwrap();

    let done = b.wait(&web(), |_| {}).await;
    assert_eq!(done.phase, Phase::Complete);
    b.restart(&web(), &Identity::user("bob"), Some("second"))
        .await
        .unwrap();

    let restarts =
        counts_a.restarted.lock().unwrap().len() + counts_b.restarted.lock().unwrap().len();
    assert_eq!(
        restarts, 3,
        "three restarts happened; the refused attempt is not one"
    );
    let finished =
        counts_a.finished.lock().unwrap().len() + counts_b.finished.lock().unwrap().len();
    assert!(finished >= 1);
    let completes = reasons(&sim, &web())
        .iter()
        .filter(|r| *r == "RolloutComplete")
        .count();
    assert_eq!(completes, 1, "one replica reports each completion");
}

#[tokio::test(start_paused = true)]
async fn a_rollout_past_its_deadline_fails_and_releases_the_lock() {
    let sim = cluster();
    sim.stall_rollouts(&web(), true).unwrap();
    let config = RestartConfig {
        lock_duration: Duration::from_secs(3600),
        ..RestartConfig::default()
    };
    let (r, counts, _run) = replica(&sim, allowlist(vec![]), config, "a").await;
    r.restart(&web(), &alice(), None).await.unwrap();
    let done = tokio::time::timeout(Duration::from_secs(400), r.wait(&web(), |_| {}))
        .await
        .unwrap();
    assert_eq!(done.phase, Phase::Failed);
    assert!(
        done.message.contains("exceeded its progress deadline"),
        "{}",
        done.message
    );
    assert!(done.lock.is_none());
    assert_eq!(done.last_restart.unwrap().outcome, Some(Outcome::Failed));
    assert!(reasons(&sim, &web()).contains(&"RolloutFailed".to_string()));
    assert_eq!(
        counts.failed.lock().unwrap().as_slice(),
        [web().to_string()]
    );
}

#[tokio::test(start_paused = true)]
async fn a_stalled_restart_times_out_and_its_lock_can_be_taken_over() {
    let sim = cluster();
    sim.stall_rollouts(&db(), true).unwrap();
    let config = RestartConfig {
        lock_duration: Duration::from_secs(60),
        ..RestartConfig::default()
    };

    // A replica that dies right after restarting leaves its lock behind.
    let (a, _, run_a) = replica(&sim, allowlist(vec![]), config.clone(), "a").await;
    a.restart(&db(), &alice(), Some("stuck one")).await.unwrap();
    run_a.abort();
    advance(Duration::from_secs(30)).await;
    let (b, counts, run_b) = replica(&sim, allowlist(vec![]), config.clone(), "b").await;
    run_b.abort();
    assert!(matches!(
        b.restart(&db(), &Identity::user("bob"), None).await,
        Err(RestartError::Locked { .. })
    ));

    // Once b has watched it stay unchanged for its whole duration (its own clock's 60 s,
    // not the Lease's times), the next restart takes it over, and says so.
    advance(Duration::from_secs(59)).await;
    assert!(matches!(
        b.restart(&db(), &Identity::user("bob"), None).await,
        Err(RestartError::Locked { .. })
    ));
    advance(Duration::from_secs(1)).await;
    b.restart(&db(), &Identity::user("bob"), Some("try again"))
        .await
        .unwrap();
    assert!(reasons(&sim, &db()).contains(&"RestartLockTakenOver".to_string()));
    let lease = sim
        .lease("restart-manager", "restart.statefulset.shop.db")
        .unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some("bob"));
    assert_eq!(lease.lease_transitions, Some(1));
    assert_eq!(lease.lease_duration_seconds, Some(60));

    // With a tracker running, a restart that cannot finish times out by itself.
    let (c, counts_c, _run_c) = replica(&sim, allowlist(vec![]), config, "c").await;
    let done = tokio::time::timeout(Duration::from_secs(120), c.wait(&db(), |_| {}))
        .await
        .unwrap();
    assert_eq!(done.phase, Phase::TimedOut, "{done:?}");
    assert!(reasons(&sim, &db()).contains(&"RestartTimedOut".to_string()));
    assert_eq!(counts_c.failed.lock().unwrap().len(), 1);
    assert_eq!(counts.restarted.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn subscribers_see_progress_as_it_happens() {
    let sim = cluster();
    let (r, _, _run) = replica(&sim, allowlist(vec![]), RestartConfig::default(), "a").await;
    let mut updates = r.subscribe();
    r.restart(&web(), &alice(), None).await.unwrap();
    let mut progress = Vec::new();
    loop {
        let s = tokio::time::timeout(Duration::from_secs(300), updates.recv())
            .await
            .unwrap()
            .unwrap();
        if s.name != "web" {
            continue;
        }
        progress.push((s.phase, s.updated, s.ready, s.available));
        if s.phase == Phase::Complete {
            break;
        }
    }
    assert!(
        progress
            .iter()
            .any(|(p, u, _, _)| *p == Phase::Progressing && *u == 1),
        "{progress:?}"
    );
    assert_eq!(progress.last(), Some(&(Phase::Complete, 3, 3, 3)));
}

/// A watch that has to start over delivers the whole current set: what is missing from it
/// was deleted meanwhile, whether a Deployment or a lock Lease removed by hand.
#[tokio::test(start_paused = true)]
async fn a_relist_forgets_what_was_deleted_while_the_watch_was_down() {
    let sim = cluster();
    let (r, _, _run) = replica(&sim, allowlist(vec![]), RestartConfig::default(), "a").await;
    r.restart(&db(), &alice(), None).await.unwrap();
    assert!(r.status(&db()).unwrap().lock.is_some());
    assert!(r.status(&web()).unwrap().exists);

    sim.break_watches();
    sim.remove_workload(&web()).unwrap();
    cluster_api::ClusterApi::delete_lease(
        &sim,
        "restart-manager",
        &restart_core::lock::lease_name(&db()),
        None,
    )
    .await
    .unwrap();
    // The watches reopen after a second's backoff, well before any periodic resync.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let web = r.status(&web()).unwrap();
    assert!(!web.exists, "{web:?}");
    assert!(web.message.contains("not found"), "{}", web.message);
    assert_eq!(r.status(&db()).unwrap().lock, None);
}

/// A failing watch keeps the service ready for the grace time only; meanwhile the status
/// comes from direct reads, and a fresh list heals it.
#[tokio::test(start_paused = true)]
async fn a_failing_watch_makes_the_service_unready_after_the_grace_time() {
    let sim = cluster();
    let (r, _, _run) = replica(&sim, allowlist(vec![]), RestartConfig::default(), "a").await;
    sim.fail_always(
        Operation::WatchWorkloads,
        Error::unavailable("connection refused"),
    );
    sim.break_watches();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(r.is_ready(), "within the grace time");
    tokio::time::sleep(restart_core::DEFAULT_CACHE_GRACE).await;
    assert!(!r.is_ready());
    let problem = r.readiness_problem().unwrap();
    assert!(problem.contains("watch has been failing"), "{problem}");

    // The resync reads the workloads directly while the watch is down.
    sim.remove_workload(&web()).unwrap();
    tokio::time::sleep(RestartConfig::default().resync).await;
    assert!(!r.status(&web()).unwrap().exists);

    sim.clear_faults();
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert!(r.is_ready());
}

#[tokio::test(start_paused = true)]
async fn a_restart_in_the_same_second_as_the_last_still_rolls_out() {
    // kubectl stamps restartedAt to the second, so a second `rollout restart` within the same
    // second patches in the value already there, and nothing rolls out. Here the first
    // restart is force-unlocked and the second asked for at once, in the same second.
    let sim = cluster();
    let (r, _counts, _run) = replica(&sim, allowlist(vec![]), RestartConfig::default(), "a").await;
    r.restart(&web(), &alice(), None).await.unwrap();
    let first = sim.workload(&web()).unwrap();
    r.force_unlock(&web(), &Identity::user("root"), "once more")
        .await
        .unwrap();
    r.restart(&web(), &alice(), None).await.unwrap();
    let second = sim.workload(&web()).unwrap();
    let stamp = |w: &cluster_api::Workload| w.template_annotations[RESTARTED_AT].clone();
    assert_eq!(
        stamp(&first),
        sim.now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "the clock is still in the first restart's second"
    );
    assert_ne!(
        stamp(&second),
        stamp(&first),
        "a new value, so a new rollout"
    );
    assert!(
        second.generation > first.generation,
        "the template changed: {} then {}",
        first.generation,
        second.generation
    );
    // Still a time in kubectl's format, the next second: later than any stamp before it.
    assert!(
        stamp(&second).parse::<jiff::Timestamp>().unwrap()
            > stamp(&first).parse::<jiff::Timestamp>().unwrap()
    );
}
