//! Locks, refusals and the audit trail: force-unlock, lost and unconfirmed writes, Events, forged reasons.

use super::*;

#[tokio::test(start_paused = true)]
async fn force_unlock_needs_a_reason_and_is_audited() {
    let sim = cluster();
    sim.stall_rollouts(&web(), true).unwrap();
    let (r, _, _run) = replica(&sim, allowlist(vec![]), RestartConfig::default(), "a").await;
    r.restart(&web(), &alice(), None).await.unwrap();
    let err = r
        .force_unlock(&web(), &Identity::user("root"), "  ")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    let broken = r
        .force_unlock(&web(), &Identity::user("root"), "alice is on holiday")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(broken.holder, "alice");
    assert!(r.status(&web()).unwrap().lock.is_none());
    let event = sim
        .events()
        .into_iter()
        .find(|e| e.reason == "RestartLockForceReleased")
        .unwrap();
    assert!(
        event
            .note
            .contains("root broke the restart lock held by alice"),
        "{}",
        event.note
    );
    assert!(event.note.contains("alice is on holiday"));
    assert_eq!(
        r.force_unlock(&web(), &Identity::user("root"), "again")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test(start_paused = true)]
async fn refusals_for_the_allowlist_and_the_cluster() {
    let sim = cluster();
    sim.add_workload(WorkloadSpec::statefulset("shop", "manual").strategy(StrategyName::OnDelete))
        .unwrap();
    let extra = vec![
        ServiceEntry::new(WorkloadRef::new(
            WorkloadKind::StatefulSet,
            "shop",
            "manual",
        )),
        ServiceEntry::new(WorkloadRef::new(WorkloadKind::Deployment, "shop", "ghost")),
        ServiceEntry {
            allowed: vec!["group:sre".into()],
            ..ServiceEntry::new(WorkloadRef::new(WorkloadKind::Deployment, "ops", "vault"))
        },
    ];
    sim.add_workload(WorkloadSpec::deployment("ops", "vault"))
        .unwrap();
    let (r, counts, _run) = replica(&sim, allowlist(extra), RestartConfig::default(), "a").await;

    let other = WorkloadRef::new(WorkloadKind::Deployment, "shop", "payments");
    let err = r.restart(&other, &alice(), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotAllowlisted);

    let ghost = WorkloadRef::new(WorkloadKind::Deployment, "shop", "ghost");
    assert_eq!(
        r.restart(&ghost, &alice(), None).await.unwrap_err().kind(),
        ErrorKind::WorkloadNotFound
    );
    assert!(!r.status(&ghost).unwrap().exists);

    let manual = WorkloadRef::new(WorkloadKind::StatefulSet, "shop", "manual");
    assert_eq!(
        r.restart(&manual, &alice(), None).await.unwrap_err().kind(),
        ErrorKind::UnsupportedStrategy
    );

    let vault = WorkloadRef::new(WorkloadKind::Deployment, "ops", "vault");
    let err = r.restart(&vault, &alice(), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    let sre = Identity {
        groups: vec!["sre".into()],
        ..Identity::user("carol")
    };
    r.restart(&vault, &sre, None).await.unwrap();

    let err = r
        .restart(&web(), &alice(), Some(&"x".repeat(501)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert_eq!(counts.restarted.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_restart_that_cannot_be_applied_gives_its_lock_back() {
    let sim = cluster();
    let (r, counts, _run) = replica(&sim, allowlist(vec![]), RestartConfig::default(), "a").await;
    sim.fail_next(
        Operation::PatchWorkload,
        1,
        Error::Forbidden {
            message: "deployments.apps \"web\" is forbidden: cannot patch".into(),
        },
    );
    let err = r.restart(&web(), &alice(), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ClusterError);
    assert!(r.status(&web()).unwrap().lock.is_none());
    assert_eq!(counts.failed.lock().unwrap().len(), 1);
    assert!(counts.restarted.lock().unwrap().is_empty());
    r.restart(&web(), &alice(), None).await.unwrap();
}

/// The restart patch reached the API server but its answer was lost (the connection reset
/// after the request was sent). The workload is restarted, so the restart goes on as one: it
/// reads the workload back, finds its own `restartedAt`, keeps its lock and follows the
/// rollout. Released as aborted instead, its id could be taken again (a set's driver retries
/// a member) and the workload restarted twice.
#[tokio::test(start_paused = true)]
async fn a_restart_patch_whose_answer_was_lost_is_recognised_as_applied() {
    let sim = cluster();
    let (r, counts, _run) = replica(&sim, allowlist(vec![]), RestartConfig::default(), "a").await;
    sim.fail_after_next(
        Operation::PatchWorkload,
        1,
        Error::unavailable("the connection was reset after the request was sent"),
    );
    let status = r.restart(&web(), &alice(), None).await.unwrap();
    let lock = status.lock.expect("the restart keeps its lock");
    assert_eq!(lock.holder, "alice");
    let template = sim.workload(&web()).unwrap().template_annotations;
    assert_eq!(template.get(RESTARTED_AT), lock.restarted_at.as_ref());
    assert_eq!(counts.restarted.lock().unwrap().len(), 1);
    assert!(counts.failed.lock().unwrap().is_empty());

    // A patch that did not land (refused before it reached the workload) is still a
    // failure that gives the lock back.
    r.force_unlock(&web(), &alice(), "test").await.unwrap();
    tokio::time::advance(std::time::Duration::from_secs(1)).await;
    sim.fail_next(
        Operation::PatchWorkload,
        1,
        Error::unavailable("the connection was refused"),
    );
    let err = r.restart(&web(), &alice(), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ClusterUnavailable, "{err}");
    assert!(r.status(&web()).unwrap().lock.is_none());

    // Lost, and the workload cannot be read back to tell: the lock stays (nobody restarts
    // it again meanwhile), and the caller hears that the cluster did not answer.
    tokio::time::advance(std::time::Duration::from_secs(1)).await;
    sim.fail_after_next(
        Operation::PatchWorkload,
        1,
        Error::unavailable("the connection was reset after the request was sent"),
    );
    // The read before the restart succeeds; every read back fails.
    sim.fail_later(
        Operation::GetWorkload,
        1,
        restart_core::lock::CONFIRM_ATTEMPTS,
        Error::unavailable("the API server is restarting"),
    );
    let err = r.restart(&web(), &alice(), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ClusterUnavailable, "{err}");
    let lock = r.status(&web()).unwrap().lock.expect("the lock is kept");
    let template = sim.workload(&web()).unwrap().template_annotations;
    assert_eq!(template.get(RESTARTED_AT), lock.restarted_at.as_ref());
}

/// The lock write reached the API server but its answer was lost (a timeout). The restart
/// reads the lock back, recognises its own restart id, and goes on: it is not refused as
/// locked by itself.
#[tokio::test(start_paused = true)]
async fn a_lock_write_whose_answer_was_lost_is_recognised_as_ours() {
    let sim = cluster();
    let (r, counts, _run) = replica(&sim, allowlist(vec![]), RestartConfig::default(), "a").await;
    sim.fail_after_next(
        Operation::CreateLease,
        1,
        Error::unavailable("the Kubernetes API did not answer within 30s"),
    );
    let status = r.restart(&web(), &alice(), None).await.unwrap();
    assert_eq!(status.lock.unwrap().holder, "alice");
    let template = sim.workload(&web()).unwrap().template_annotations;
    assert!(
        template.contains_key(RESTARTED_AT),
        "the restart was applied"
    );
    assert_eq!(counts.restarted.lock().unwrap().len(), 1);
}

/// Same, but the lock cannot be read back either: the restart fails without patching, and
/// rolls its lock back, so asking again works at once instead of after the lock expires.
#[tokio::test(start_paused = true)]
async fn an_unconfirmed_lock_is_rolled_back() {
    let sim = cluster();
    let (r, counts, _run) = replica(&sim, allowlist(vec![]), RestartConfig::default(), "a").await;
    // A previous restart's released lock exists, so taking it is a replace.
    r.restart(&web(), &alice(), None).await.unwrap();
    r.force_unlock(&web(), &alice(), "test").await.unwrap();
    sim.fail_after_next(
        Operation::ReplaceLease,
        1,
        Error::unavailable("etcdserver: request timed out"),
    );
    // The read before the write succeeds; every read back fails.
    sim.fail_later(
        Operation::GetLease,
        1,
        restart_core::lock::CONFIRM_ATTEMPTS,
        Error::unavailable("connection refused"),
    );
    let generation = sim.workload(&web()).unwrap().generation;
    let err = r.restart(&web(), &alice(), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ClusterUnavailable, "{err}");
    assert_eq!(
        sim.workload(&web()).unwrap().generation,
        generation,
        "nothing was patched"
    );
    assert_eq!(counts.restarted.lock().unwrap().len(), 1);
    r.restart(&web(), &alice(), None).await.unwrap();
}

/// Two drivers of one set run (every replica drives runs) restart a member under the same
/// derived restart id. Both read the lock free; the other driver's write lands, ours fails
/// with a 5xx. Reading back, ours finds its restart id, but in the other driver's lock (its
/// stamp, its time): that restart is done, and not ours to apply again with our own stamp,
/// which would patch the workload while its lock names another `restartedAt`.
#[tokio::test(start_paused = true)]
async fn a_lost_lock_write_does_not_claim_another_drivers_lock_with_the_same_id() {
    use restart_core::lock::{self, Take, TakeRequest};

    let sim = cluster();
    let w = web();
    let request = |restart_id, restarted_at, now| TakeRequest {
        namespace: "restart-manager",
        workload: &w,
        holder: "alice",
        reason: None,
        restart_id,
        restarted_at,
        duration: Duration::from_secs(300),
        now,
    };
    // A previous restart's released lock exists, so taking it is a replace.
    lock::take(&sim, &request("earlier", "2026-01-05T08:59:00Z", sim.now()))
        .await
        .unwrap();
    lock::release(
        &sim,
        "restart-manager",
        &w,
        None,
        Outcome::Complete,
        sim.now(),
    )
    .await
    .unwrap();

    // Both replaces take a second; the first (theirs) lands, the second (ours) fails.
    sim.set_latency(Operation::ReplaceLease, Duration::from_secs(1));
    sim.fail_later(
        Operation::ReplaceLease,
        1,
        1,
        Error::unavailable("the server returned 500: etcdserver: request timed out"),
    );
    let now = sim.now();
    let theirs = request("run-1.0", "2026-01-05T09:01:00Z", now);
    // Our clock runs 40 s behind theirs.
    let ours = request(
        "run-1.0",
        "2026-01-05T09:00:20Z",
        now - jiff::SignedDuration::from_secs(40),
    );
    let (theirs, ours) = tokio::join!(lock::take(&sim, &theirs), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        lock::take(&sim, &ours).await
    });
    assert!(matches!(theirs.unwrap(), Take::Taken { .. }));
    let ours = ours.unwrap();
    assert!(
        matches!(ours, Take::Done(_)),
        "the other driver's lock was taken for ours: {ours:?}"
    );
}

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

/// A dry run makes a restart's checks and lists what it would touch, writing nothing: no
/// lock, no patch, no Event.
#[tokio::test(start_paused = true)]
async fn a_dry_run_says_what_a_restart_would_do_and_changes_nothing() {
    use cluster_api::LabelSelector;
    use cluster_sim::{Budget, IntOrPercent};

    let sim = cluster();
    sim.add_budget(Budget::max_unavailable(
        "shop",
        "web",
        LabelSelector::eq("app", "web"),
        IntOrPercent::Int(1),
    ));
    let only_alice = ServiceEntry {
        allowed: vec!["alice".into()],
        ..ServiceEntry::new(WorkloadRef::new(
            WorkloadKind::Deployment,
            "shop",
            "guarded",
        ))
    };
    sim.add_workload(WorkloadSpec::deployment("shop", "guarded").replicas(1))
        .unwrap();
    let (r, _, _run) = replica(
        &sim,
        allowlist(vec![only_alice]),
        RestartConfig::default(),
        "a",
    )
    .await;

    let writes = sim.calls().writes();
    let plan = r.dry_run(&web(), &alice(), None).await.unwrap();
    assert!(plan.dry_run && plan.allowed, "{plan:?}");
    assert_eq!(plan.refusal, None);
    assert_eq!(plan.workload, "Deployment/shop/web");
    assert_eq!(plan.strategy, "RollingUpdate");
    assert_eq!(plan.replicas, Some(3));
    assert_eq!(plan.pods.len(), 3);
    assert!(
        plan.pods
            .iter()
            .all(|p| p.pod.starts_with("shop/web-") && p.ready)
    );
    assert_eq!(plan.budgets.len(), 1);
    assert_eq!(plan.budgets[0].budget, "shop/web");
    assert_eq!(plan.budgets[0].disruptions_allowed, 1);
    assert_eq!(sim.calls().writes(), writes, "a dry run writes nothing");
    assert!(reasons(&sim, &web()).is_empty(), "nor records anything");

    // Held by someone else: refused as a restart would be, naming the holder.
    sim.stall_rollouts(&web(), true).unwrap();
    r.restart(&web(), &alice(), Some("certs")).await.unwrap();
    let plan = r
        .dry_run(&web(), &Identity::user("bob"), None)
        .await
        .unwrap();
    assert!(!plan.allowed);
    let refusal = plan.refusal.unwrap();
    assert_eq!(refusal.kind, "locked");
    assert!(refusal.message.contains("alice"), "{}", refusal.message);
    assert_eq!(plan.lock.unwrap().holder, "alice");

    // A paused Deployment, as `kubectl rollout restart` refuses it.
    sim.set_paused(&db_guarded(), true).unwrap();
    let plan = r.dry_run(&db_guarded(), &alice(), None).await.unwrap();
    assert_eq!(plan.refusal.unwrap().kind, "paused");

    // What a restart would answer before looking further is the dry run's answer too.
    let err = r
        .dry_run(&db_guarded(), &Identity::user("bob"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    let ghost = WorkloadRef::new(WorkloadKind::Deployment, "shop", "ghost");
    assert_eq!(
        r.dry_run(&ghost, &alice(), None).await.unwrap_err().kind(),
        ErrorKind::NotAllowlisted
    );
    // A reason the restart would refuse makes the dry run fail the same way, before anything
    // else is looked at.
    let err = r
        .dry_run(&web(), &alice(), Some("line one\u{0084}"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.to_string().contains("U+0084"), "{err}");
    assert!(r.dry_run(&web(), &alice(), Some("certs")).await.is_ok());
}

fn db_guarded() -> WorkloadRef {
    WorkloadRef::new(WorkloadKind::Deployment, "shop", "guarded")
}

/// Restart windows: outside them a restart is refused, saying when the next opens, unless the
/// caller may override them (the server decides who: the unlock right) and gives a reason.
#[tokio::test(start_paused = true)]
async fn restarts_outside_their_windows_need_an_override_and_a_reason() {
    use cluster_api::window::Window;

    let sim = cluster();
    let office_hours = ServiceEntry {
        windows: vec![Window::parse(&["mon-fri"], "10:00", "17:00", None).unwrap()],
        ..ServiceEntry::new(db_guarded())
    };
    sim.add_workload(WorkloadSpec::deployment("shop", "guarded").replicas(1))
        .unwrap();
    let (r, _, _run) = replica(
        &sim,
        allowlist(vec![office_hours]),
        RestartConfig::default(),
        "a",
    )
    .await;

    // The simulation starts on Monday at 09:00 UTC.
    let err = r.restart(&db_guarded(), &alice(), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutsideWindow);
    let message = err.to_string();
    assert!(
        message.contains("mon-fri 10:00-17:00 UTC")
            && message.contains("the next opens at 2026-01-05 10:00 UTC"),
        "{message}"
    );
    let plan = r.dry_run(&db_guarded(), &alice(), None).await.unwrap();
    assert_eq!(plan.refusal.unwrap().kind, "outside_window");
    // Workloads without windows are not affected.
    assert_eq!(
        r.dry_run(&web(), &alice(), None).await.unwrap().refusal,
        None
    );

    let err = r
        .restart_outside_windows(&db_guarded(), &alice(), "  ")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    r.restart_outside_windows(&db_guarded(), &alice(), "hotfix for the outage")
        .await
        .unwrap();
    let restarted = sim
        .events()
        .into_iter()
        .find(|e| e.reason == "Restarted")
        .unwrap();
    assert!(
        restarted
            .note
            .contains("outside its restart windows (mon-fri 10:00-17:00 UTC): hotfix"),
        "{}",
        restarted.note
    );
    assert!(reasons(&sim, &db_guarded()).contains(&"RestartRefused".to_string()));

    // Inside the window, anyone allowed may.
    advance(Duration::from_secs(3600)).await;
    r.force_unlock(&db_guarded(), &Identity::user("root"), "next test")
        .await
        .unwrap();
    r.restart(&db_guarded(), &alice(), None).await.unwrap();
}

/// A restart id is taken once: a retry under a derived id (a set member's, a due time's, a
/// configuration's) finds its restart done even after someone else's restart has taken and
/// released the lock since.
#[tokio::test(start_paused = true)]
async fn a_restart_id_is_done_once_even_after_another_restart_took_the_lock() {
    use restart_core::lock::{Take, TakeRequest, release, take_observed};
    use restart_core::observed::Observations;

    let sim = cluster();
    let observed = Observations::new();
    let take = |req| {
        let observed = &observed;
        let sim = &sim;
        async move { take_observed(sim, &req, observed).await }
    };
    let w = web();
    let w = &w;
    let request = |holder: &'static str, id: &'static str| TakeRequest {
        namespace: "restart-manager",
        workload: w,
        holder,
        reason: None,
        restart_id: id,
        restarted_at: "2026-01-05T09:00:00Z",
        duration: Duration::from_secs(300),
        now: sim.now(),
    };
    for (holder, id) in [("schedule", "schedule-1"), ("bob", "bob-1")] {
        let taken = take(request(holder, id)).await.unwrap();
        assert!(matches!(taken, Take::Taken { .. }), "{taken:?}");
        release(
            &sim,
            "restart-manager",
            &web(),
            Some(id),
            Outcome::Complete,
            sim.now(),
        )
        .await
        .unwrap();
    }
    let again = take(request("schedule", "schedule-1")).await.unwrap();
    assert!(matches!(again, Take::Done(_)), "{again:?}");
    let fresh = take(request("carol", "carol-1")).await.unwrap();
    assert!(matches!(fresh, Take::Taken { .. }), "{fresh:?}");
}
