//! Restart sets on the simulated cluster: order, concurrency, failure policies, a member
//! someone else restarts, cancelling, refusals, and a run that outlives its replica.

use cluster_api::CoreBuilder;
use restart_core::sets::{MemberState, OnFailure, RunState, SetEntry, check_sets};
use restart_core::{RestartSet, SetStatus};

use super::*;

pub(super) fn shop(concurrency: usize, on_failure: OnFailure) -> RestartSet {
    let entry = SetEntry {
        name: "shop".into(),
        description: Some("web, then the database, then the agent".into()),
        members: [web(), db(), agent()]
            .iter()
            .map(ToString::to_string)
            .collect(),
        concurrency,
        on_failure,
        schedule: None,
    };
    check_sets(vec![entry], &allowlist(vec![]))
        .unwrap()
        .remove(0)
}

pub(super) async fn set_replica(
    sim: &SimCluster,
    set: RestartSet,
    config: RestartConfig,
    name: &str,
) -> (Restarter, tokio::task::JoinHandle<()>) {
    set_replica_as(sim, set, config, name, As::skewed(0)).await
}

pub(super) async fn set_replica_as(
    sim: &SimCluster,
    set: RestartSet,
    config: RestartConfig,
    name: &str,
    how: As,
) -> (Restarter, tokio::task::JoinHandle<()>) {
    let r = how
        .builder(sim, allowlist(vec![]))
        .config(config)
        .instance(name)
        .sets(vec![set])
        .build();
    let handle = tokio::spawn({
        let r = r.clone();
        async move { r.run().await }
    });
    r.wait_ready().await;
    (r, handle)
}

pub(super) fn states(s: &SetStatus) -> Vec<MemberState> {
    s.run
        .as_ref()
        .unwrap()
        .members
        .iter()
        .map(|m| m.state)
        .collect()
}

/// Follows the run to its end, keeping every distinct set of member states seen.
pub(super) async fn follow(r: &Restarter) -> (SetStatus, Vec<Vec<MemberState>>) {
    let mut seen: Vec<Vec<MemberState>> = Vec::new();
    let done = tokio::time::timeout(
        Duration::from_secs(3600),
        r.wait_set("shop", |s| {
            if s.run.is_some() && seen.last() != Some(&states(s)) {
                seen.push(states(s));
            }
        }),
    )
    .await
    .expect("the run ends")
    .unwrap();
    (done, seen)
}

pub(super) fn restarts_of(sim: &SimCluster, w: &WorkloadRef) -> usize {
    reasons(sim, w).iter().filter(|r| *r == "Restarted").count()
}

use MemberState::{Complete, Failed, Pending, Restarting, Skipped};

#[tokio::test(start_paused = true)]
async fn members_restart_in_order_one_at_a_time() {
    let sim = cluster();
    let (r, _run) = set_replica(
        &sim,
        shop(1, OnFailure::Stop),
        RestartConfig::default(),
        "a",
    )
    .await;
    let started = r
        .start_set("shop", &alice(), Some("new certs"))
        .await
        .unwrap();
    assert!(started.running);
    let (done, seen) = follow(&r).await;

    let run = done.run.unwrap();
    assert_eq!(run.state, RunState::Complete);
    assert_eq!(states_of(&run), [Complete, Complete, Complete]);
    // Never two at once, and each only after the one before it completed.
    for s in &seen {
        assert!(
            s.iter().filter(|m| **m == Restarting).count() <= 1,
            "{seen:?}"
        );
    }
    assert!(
        seen.contains(&vec![Complete, Restarting, Pending]),
        "{seen:?}"
    );
    let started: Vec<_> = run.members.iter().map(|m| m.started.unwrap()).collect();
    let ended: Vec<_> = run.members.iter().map(|m| m.ended.unwrap()).collect();
    assert!(started[1] >= ended[0] && started[2] >= ended[1], "{run:?}");
    // Each member restarted once, by alice, its Events naming the set.
    for w in [web(), db(), agent()] {
        assert_eq!(reasons(&sim, &w), ["Restarted", "RolloutComplete"], "{w}");
        let last = r.status(&w).unwrap().last_restart.unwrap();
        assert_eq!(
            (last.by.as_str(), last.reason.as_deref()),
            ("alice", Some("new certs"))
        );
    }
    let notes: Vec<String> = r
        .history(&db())
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.message)
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("restarted by alice (restart set shop): new certs")),
        "{notes:?}"
    );
    // The run is released, and its Events are on its Lease.
    let lease = sim.lease("restart-manager", "restart-set.shop").unwrap();
    assert_eq!(lease.holder(), None);
    let set_events: Vec<String> = sim
        .events()
        .into_iter()
        .filter(|e| e.regarding.name == "restart-set.shop")
        .map(|e| e.reason)
        .collect();
    assert_eq!(set_events, ["RestartSetStarted", "RestartSetComplete"]);
}

fn states_of(run: &restart_core::sets::SetRun) -> Vec<MemberState> {
    run.members.iter().map(|m| m.state).collect()
}

#[tokio::test(start_paused = true)]
async fn concurrency_restarts_that_many_at_once() {
    let sim = cluster();
    let (r, _run) = set_replica(
        &sim,
        shop(2, OnFailure::Stop),
        RestartConfig::default(),
        "a",
    )
    .await;
    r.start_set("shop", &alice(), None).await.unwrap();
    let (done, seen) = follow(&r).await;
    assert_eq!(done.run.unwrap().state, RunState::Complete);
    let most = seen
        .iter()
        .map(|s| s.iter().filter(|m| **m == Restarting).count())
        .max();
    assert_eq!(most, Some(2), "{seen:?}");
}

#[tokio::test(start_paused = true)]
async fn stop_skips_the_rest_after_a_failure_and_continue_does_not() {
    for (policy, want) in [
        (OnFailure::Stop, [Failed, Skipped, Skipped]),
        (OnFailure::Continue, [Failed, Complete, Complete]),
    ] {
        let sim = cluster();
        // The first member's rollout never progresses: it fails at its deadline.
        sim.stall_rollouts(&web(), true).unwrap();
        let config = RestartConfig {
            lock_duration: Duration::from_secs(3600),
            ..RestartConfig::default()
        };
        let (r, run) = set_replica(&sim, shop(1, policy), config, "a").await;
        r.start_set("shop", &alice(), None).await.unwrap();
        let (done, _) = follow(&r).await;
        let result = done.run.unwrap();
        assert_eq!(result.state, RunState::Failed, "{policy:?}");
        assert_eq!(states_of(&result), want, "{policy:?}");
        assert_eq!(
            result.members[0].message.as_deref(),
            Some("its rollout failed")
        );
        let restarted = usize::from(policy == OnFailure::Continue);
        assert_eq!(restarts_of(&sim, &db()), restarted, "{policy:?}");
        let ended: Vec<String> = sim
            .events()
            .into_iter()
            .filter(|e| e.reason == "RestartSetFailed")
            .map(|e| e.note)
            .collect();
        assert_eq!(ended.len(), 1);
        assert!(
            ended[0].contains("1 failed: Deployment/shop/web"),
            "{ended:?}"
        );
        run.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn a_member_that_cannot_be_restarted_fails_with_the_reason() {
    let sim = cluster();
    sim.set_paused(&web(), true).unwrap();
    let (r, _run) = set_replica(
        &sim,
        shop(1, OnFailure::Continue),
        RestartConfig::default(),
        "a",
    )
    .await;
    r.start_set("shop", &alice(), None).await.unwrap();
    let (done, _) = follow(&r).await;
    let run = done.run.unwrap();
    assert_eq!(states_of(&run), [Failed, Complete, Complete]);
    let why = run.members[0].message.as_deref().unwrap();
    assert!(why.contains("can't restart paused deployment"), "{why}");
}

#[tokio::test(start_paused = true)]
async fn a_member_someone_else_restarts_waits_for_them() {
    let sim = cluster();
    sim.stall_rollouts(&web(), true).unwrap();
    let config = RestartConfig {
        lock_duration: Duration::from_secs(3600),
        ..RestartConfig::default()
    };
    let (r, _run) = set_replica(&sim, shop(1, OnFailure::Stop), config, "a").await;
    // Bob restarts the first member just before the set is started.
    r.restart(&web(), &Identity::user("bob"), None)
        .await
        .unwrap();
    r.start_set("shop", &alice(), None).await.unwrap();
    let mut updates = r.subscribe_sets();
    let waiting = loop {
        let s = r.set_status("shop").unwrap();
        if states(&s)[0] == MemberState::Waiting {
            break s;
        }
        updates.recv().await.unwrap();
    };
    let m = &waiting.run.as_ref().unwrap().members[0];
    assert_eq!(
        m.message.as_deref(),
        Some("waiting for bob's restart to end")
    );
    assert_eq!(restarts_of(&sim, &web()), 1, "bob's only, so far");
    // Bob's rollout goes through; then the set restarts it again, and goes on.
    sim.stall_rollouts(&web(), false).unwrap();
    let (done, _) = follow(&r).await;
    assert_eq!(done.run.unwrap().state, RunState::Complete);
    assert_eq!(restarts_of(&sim, &web()), 2);
}

#[tokio::test(start_paused = true)]
async fn cancelling_lets_the_running_member_finish_and_skips_the_rest() {
    let sim = cluster();
    let (r, _run) = set_replica(
        &sim,
        shop(1, OnFailure::Stop),
        RestartConfig::default(),
        "a",
    )
    .await;
    assert_eq!(
        r.cancel_set("shop", &alice()).await.unwrap(),
        None,
        "nothing to cancel"
    );
    r.start_set("shop", &alice(), None).await.unwrap();
    let mut updates = r.subscribe_sets();
    while states(&r.set_status("shop").unwrap())[0] != Restarting {
        updates.recv().await.unwrap();
    }
    let cancelling = r
        .cancel_set("shop", &Identity::user("carol"))
        .await
        .unwrap()
        .unwrap();
    assert!(cancelling.running, "the first member still rolls out");
    let (done, _) = follow(&r).await;
    let run = done.run.unwrap();
    assert_eq!(
        (run.state, run.cancelled_by.as_deref()),
        (RunState::Cancelled, Some("carol"))
    );
    assert_eq!(states_of(&run), [Complete, Skipped, Skipped]);
    assert_eq!(restarts_of(&sim, &db()), 0);
}

#[tokio::test(start_paused = true)]
async fn starting_is_refused_for_unknown_sets_running_sets_and_members_one_may_not_restart() {
    let sim = cluster();
    let guarded = ServiceEntry {
        allowed: vec!["alice".into()],
        ..ServiceEntry::new(db())
    };
    let list = Allowlist::new(vec![
        ServiceEntry::new(web()),
        guarded,
        ServiceEntry::new(agent()),
    ])
    .unwrap();
    let set = check_sets(
        vec![SetEntry {
            name: "shop".into(),
            description: None,
            members: vec![web().to_string(), db().to_string()],
            concurrency: 1,
            on_failure: OnFailure::Stop,
            schedule: None,
        }],
        &list,
    )
    .unwrap();
    let r = Restarter::builder(Arc::new(sim.clone()), list)
        .clock(Arc::new(sim.clone()))
        .sets(set)
        .build();
    tokio::spawn({
        let r = r.clone();
        async move { r.run().await }
    });
    r.wait_ready().await;

    let err = r.start_set("nightly", &alice(), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownSet);
    let err = r
        .start_set("shop", &Identity::user("bob"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    assert!(err.to_string().contains("StatefulSet/shop/db"), "{err}");
    let err = r
        .start_set("shop", &alice(), Some("a\u{7}b"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(
        sim.lease("restart-manager", "restart-set.shop").is_none(),
        "nothing written"
    );

    r.start_set("shop", &alice(), None).await.unwrap();
    let err = r
        .cancel_set("shop", &Identity::user("bob"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden, "nor may bob cancel it");
    let err = r.start_set("shop", &alice(), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SetRunning);
    assert!(
        err.to_string()
            .contains("running already, started by alice"),
        "{err}"
    );
}
