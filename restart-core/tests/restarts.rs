//! Restarts on the simulated cluster: all three kinds, refusals, locks between replicas,
//! expiry, failed and stalled rollouts, Events and counters.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster_api::{Error, Node, WorkloadKind, WorkloadRef};
use cluster_sim::{Operation, SimCluster, StrategyName, WorkloadSpec};
use restart_core::{
    Allowlist, ErrorKind, Identity, Outcome, Phase, RESTARTED_AT, RestartConfig, RestartError,
    RestartObserver, Restarter, ServiceEntry,
};
use tokio::time::advance;

#[derive(Default)]
struct Counts {
    restarted: Mutex<Vec<String>>,
    failed: Mutex<Vec<String>>,
    finished: Mutex<Vec<(String, Outcome)>>,
}

impl RestartObserver for Counts {
    fn restarted(&self, w: &WorkloadRef) {
        self.restarted.lock().unwrap().push(w.to_string());
    }
    fn restart_failed(&self, w: &WorkloadRef) {
        self.failed.lock().unwrap().push(w.to_string());
    }
    fn rollout_finished(&self, w: &WorkloadRef, outcome: Outcome, _took: Duration) {
        self.finished.lock().unwrap().push((w.to_string(), outcome));
    }
}

fn web() -> WorkloadRef {
    WorkloadRef::new(WorkloadKind::Deployment, "shop", "web")
}
fn db() -> WorkloadRef {
    WorkloadRef::new(WorkloadKind::StatefulSet, "shop", "db")
}
fn agent() -> WorkloadRef {
    WorkloadRef::new(WorkloadKind::DaemonSet, "kube-system", "agent")
}

fn cluster() -> SimCluster {
    let sim = SimCluster::new();
    for n in ["n1", "n2", "n3"] {
        sim.add_node(Node::new(n));
    }
    sim.add_workload(
        WorkloadSpec::deployment("shop", "web")
            .replicas(3)
            .pod_start_secs(5)
            .grace_period(5)
            .progress_deadline(120),
    )
    .unwrap();
    sim.add_workload(
        WorkloadSpec::statefulset("shop", "db")
            .replicas(2)
            .pod_start_secs(5)
            .grace_period(5),
    )
    .unwrap();
    sim.add_workload(
        WorkloadSpec::daemonset("kube-system", "agent")
            .pod_start_secs(5)
            .grace_period(5),
    )
    .unwrap();
    sim
}

fn allowlist(extra: Vec<ServiceEntry>) -> Allowlist {
    let mut entries: Vec<ServiceEntry> = [web(), db(), agent()]
        .into_iter()
        .map(|w| ServiceEntry {
            kind: w.kind,
            namespace: w.namespace,
            name: w.name,
            description: None,
            allowed: vec![],
        })
        .collect();
    entries.extend(extra);
    Allowlist::new(entries).unwrap()
}

async fn replica(
    sim: &SimCluster,
    allowlist: Allowlist,
    config: RestartConfig,
    name: &str,
) -> (Restarter, Arc<Counts>, tokio::task::JoinHandle<()>) {
    let counts = Arc::new(Counts::default());
    let r = Restarter::builder(Arc::new(sim.clone()), allowlist)
        .clock(Arc::new(sim.clone()))
        .config(config)
        .instance(name)
        .observer(counts.clone())
        .build();
    let handle = tokio::spawn({
        let r = r.clone();
        async move { r.run().await }
    });
    r.wait_ready().await;
    (r, counts, handle)
}

fn alice() -> Identity {
    Identity::user("alice")
}

/// restart-manager's Events about a workload (the cluster's controllers write their own).
fn reasons(sim: &SimCluster, w: &WorkloadRef) -> Vec<String> {
    sim.events()
        .into_iter()
        .filter(|e| e.regarding.names_same(&w.object_ref()))
        .filter(|e| e.reporting_controller == restart_core::CONTROLLER)
        .map(|e| e.reason)
        .collect()
}

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

    // Once expired, the next restart takes it over, and says so.
    advance(Duration::from_secs(31)).await;
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
        ServiceEntry {
            kind: WorkloadKind::StatefulSet,
            namespace: "shop".into(),
            name: "manual".into(),
            description: None,
            allowed: vec![],
        },
        ServiceEntry {
            kind: WorkloadKind::Deployment,
            namespace: "shop".into(),
            name: "ghost".into(),
            description: None,
            allowed: vec![],
        },
        ServiceEntry {
            kind: WorkloadKind::Deployment,
            namespace: "ops".into(),
            name: "vault".into(),
            description: None,
            allowed: vec!["group:sre".into()],
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
