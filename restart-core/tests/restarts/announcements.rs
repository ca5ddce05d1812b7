//! What a restart tells others: Events by uid and counted, the lock a refusal met, reasons
//! that could forge a line, statuses in order, and notices once across replicas.

use super::*;

/// Events name the workload by uid (what `kubectl describe` matches), and a refusal repeated
/// by the same caller is counted on one Event rather than written again and again.
#[tokio::test(start_paused = true)]
async fn events_name_the_workload_by_uid_and_repeats_are_counted() {
    let sim = cluster();
    let (r, _, _run) = replica(&sim, allowlist(vec![]), RestartConfig::default(), "a").await;
    r.restart(&web(), &alice(), None).await.unwrap();
    let bob = Identity::user("bob");
    for _ in 0..3 {
        let err = r.restart(&web(), &bob, None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Locked);
    }
    let uid = sim.workload(&web()).unwrap().uid;
    assert!(!uid.is_empty());
    let events: Vec<_> = sim
        .events()
        .into_iter()
        .filter(|e| e.regarding.names_same(&web().object_ref()))
        .collect();
    assert!(
        events
            .iter()
            .all(|e| e.regarding.uid.as_deref() == Some(uid.as_str()))
    );
    let refused: Vec<_> = events
        .iter()
        .filter(|e| e.reason == "RestartRefused")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].count, 3);
    let history = r.history(&web()).await.unwrap();
    assert_eq!(history[0].reason, "RestartRefused");
    assert_eq!(history[0].count, 3);
}

/// A replica refused because another holds the lock shows that lock at once, even while
/// its own lock watch lags: what it just read is never older than what it shows.
#[tokio::test(start_paused = true)]
async fn a_refusal_shows_the_lock_it_met_even_before_the_watch_does() {
    let sim = cluster();
    let (a, _, _run_a) = replica(&sim, allowlist(vec![]), RestartConfig::default(), "a").await;
    let (b, _, _run_b) = replica(&sim, allowlist(vec![]), RestartConfig::default(), "b").await;
    // The lock watches break and take an hour to come back.
    sim.set_latency(Operation::WatchLeases, Duration::from_secs(3600));
    sim.break_watches();
    a.restart(&web(), &alice(), None).await.unwrap();
    let err = b
        .restart(&web(), &Identity::user("bob"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked);
    assert_eq!(
        b.status(&web()).unwrap().lock.map(|l| l.holder).as_deref(),
        Some("alice")
    );
}

/// A reason ends up in Events and log lines: a newline or a bidirectional override in it
/// could forge a line or make one read backwards. Such reasons are refused, nothing is locked.
#[tokio::test(start_paused = true)]
async fn reasons_that_could_forge_a_line_are_refused() {
    let sim = cluster();
    let (r, _counts, _run) = replica(&sim, allowlist(vec![]), RestartConfig::default(), "a").await;
    for reason in [
        "rotate certs\nNormal RolloutComplete restart by root",
        "rotate\rcerts",
        "rotate certs \u{202e}toor yb",
        "isolate \u{2066}this\u{2069}",
        "x".repeat(501).as_str(),
    ] {
        let err = r.restart(&web(), &alice(), Some(reason)).await.unwrap_err();
        assert!(
            matches!(err, RestartError::Invalid(_)),
            "{reason:?}: {err:?}"
        );
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert!(
            r.status(&web()).unwrap().lock.is_none(),
            "{reason:?} took the lock"
        );
    }
    assert!(reasons(&sim, &web()).is_empty(), "nothing recorded");
    // Ordinary text in any script is fine.
    r.restart(
        &web(),
        &alice(),
        Some("Zertifikate erneuern — 証明書を更新"),
    )
    .await
    .unwrap();
}

/// Once `restart` has returned, nobody who subscribes afterwards hears of the workload as it
/// was before: a status computed before the restart's lock was stored (by the tracker, kept
/// busy here by a resync every millisecond) must not be sent after it. `restartctl --wait`
/// subscribes right after its restart and takes the first status without a lock for the end
/// of the rollout; a stale one ended the wait at once, on a rollout that had not begun.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_status_from_before_a_restart_reaches_those_who_subscribe_after_it() {
    let sim = cluster();
    sim.stall_rollouts(&web(), true).unwrap();
    let config = RestartConfig {
        resync: Duration::from_millis(1),
        ..RestartConfig::default()
    };
    let (r, _, _run) = replica(&sim, allowlist(vec![]), config, "a").await;
    for round in 0..100 {
        let reason = format!("round {round}");
        r.restart(&web(), &alice(), Some(&reason)).await.unwrap();
        let mut updates = r.subscribe();
        r.force_unlock(&web(), &alice(), "next round")
            .await
            .unwrap();
        let first_unlocked = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let s = updates.recv().await.unwrap();
                if s.name == "web" && s.lock.is_none() {
                    return s;
                }
            }
        })
        .await
        .expect("the unlock is published");
        let last = first_unlocked.last_restart.as_ref();
        assert_eq!(
            last.and_then(|l| l.reason.as_deref()),
            Some(reason.as_str()),
            "round {round}: a status from before this restart arrived first: {first_unlocked:?}"
        );
    }
}

/// Each restart transition is announced once, by whichever replica's write made it, with who
/// and why: two replicas watch every restart, yet the notices come once each.
#[tokio::test(start_paused = true)]
async fn each_transition_is_announced_once_across_replicas() {
    use restart_core::RestartTransition as T;

    let sim = cluster();
    let (a, seen_a, _run_a) = replica(&sim, allowlist(vec![]), RestartConfig::default(), "a").await;
    let (b, seen_b, _run_b) = replica(&sim, allowlist(vec![]), RestartConfig::default(), "b").await;
    a.restart(&web(), &alice(), Some("rotate certs"))
        .await
        .unwrap();
    // The rollout completes (3 pods, 5 s each to start); both replicas judge it.
    for _ in 0..30 {
        advance(Duration::from_secs(2)).await;
        tokio::task::yield_now().await;
    }
    assert!(
        a.status(&web()).unwrap().lock.is_none(),
        "the rollout ended"
    );
    sim.stall_rollouts(&web(), true).unwrap();
    b.restart(&web(), &Identity::user("bob"), None)
        .await
        .unwrap();
    a.force_unlock(&web(), &Identity::user("root"), "bob is on holiday")
        .await
        .unwrap();

    let mut notices: Vec<_> = seen_a.notices.lock().unwrap().clone();
    notices.extend(seen_b.notices.lock().unwrap().iter().cloned());
    notices.sort_by_key(|n| (n.time, n.transition.as_str()));
    let seen: Vec<(T, &str, Option<&str>)> = notices
        .iter()
        .map(|n| (n.transition, n.who.as_str(), n.why.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            (T::Started, "alice", Some("rotate certs")),
            (T::Completed, "alice", Some("rotate certs")),
            (T::Started, "bob", None),
            (T::Unlocked, "root", Some("bob is on holiday")),
        ]
    );
    assert!(notices.iter().all(|n| n.workload == web()));
    assert!(
        notices[3]
            .message
            .contains("broke the restart lock held by bob")
    );
}
