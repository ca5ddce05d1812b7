//! Locks and refusals: force-unlock, refusals, and lock writes and patches whose answer was lost.

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
