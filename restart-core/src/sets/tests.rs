use cluster_api::{Lease, WorkloadKind};

use super::*;
use crate::allowlist::ServiceEntry;

fn w(name: &str) -> WorkloadRef {
    WorkloadRef::new(WorkloadKind::Deployment, "shop", name)
}

fn set(concurrency: usize, on_failure: OnFailure) -> RestartSet {
    RestartSet {
        name: "shop".into(),
        description: None,
        members: vec![w("cache"), w("api"), w("web")],
        concurrency,
        on_failure,
        schedule: None,
    }
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn run(concurrency: usize, on_failure: OnFailure) -> SetRun {
    SetRun::new(
        &set(concurrency, on_failure),
        "r1".into(),
        "alice",
        None,
        at(0),
    )
}

fn states(run: &SetRun) -> Vec<MemberState> {
    run.members.iter().map(|m| m.state).collect()
}

fn lock(holder: &str, since: Timestamp) -> LockInfo {
    LockInfo {
        holder: holder.into(),
        since,
        expires: None,
        reason: None,
        restart_id: "other".into(),
        restarted_at: None,
    }
}

fn last(by: &str, at: Timestamp, outcome: Outcome) -> LastRestart {
    LastRestart {
        by: by.into(),
        at,
        reason: None,
        outcome: Some(outcome),
        ended: Some(at),
    }
}

/// Starts what the step says to start, as the driver does.
fn start(run: &mut SetRun, step: &Step, now: Timestamp) {
    for &i in &step.start {
        run.mark_started(i, now);
    }
}

use MemberState::{Complete, Failed, Pending, Restarting, Skipped, Waiting};

#[test]
fn members_go_one_after_another_in_order() {
    let mut r = run(1, OnFailure::Stop);
    let step = r.step(|_| unreachable!("nothing started"), at(1));
    assert_eq!(step.start, [0]);
    start(&mut r, &step, at(1));
    // While the first rolls out, nothing else starts.
    assert_eq!(r.step(|_| Seen::Running, at(2)).start, Vec::<usize>::new());
    let step = r.step(|_| Seen::Ended(Outcome::Complete), at(3));
    assert!(step.changed);
    assert_eq!(step.start, [1]);
    start(&mut r, &step, at(3));
    let step = r.step(|_| Seen::Ended(Outcome::Complete), at(4));
    assert_eq!(step.start, [2]);
    start(&mut r, &step, at(4));
    assert_eq!(r.state, RunState::Running);
    r.step(|_| Seen::Ended(Outcome::Complete), at(5));
    assert_eq!(states(&r), [Complete, Complete, Complete]);
    assert_eq!((r.state, r.ended), (RunState::Complete, Some(at(5))));
    assert_eq!(r.counts(), (3, 3));
    // A finished run stays as it is.
    assert_eq!(r.step(|_| Seen::Running, at(6)), Step::default());
}

#[test]
fn concurrency_bounds_how_many_restart_at_once() {
    let mut r = run(2, OnFailure::Stop);
    let step = r.step(|_| unreachable!(), at(1));
    assert_eq!(step.start, [0, 1]);
    start(&mut r, &step, at(1));
    // The second ends first: the third takes its place.
    let step = r.step(
        |i| {
            if i == 1 {
                Seen::Ended(Outcome::Complete)
            } else {
                Seen::Running
            }
        },
        at(2),
    );
    assert_eq!(step.start, [2]);
    assert_eq!(states(&r), [Restarting, Complete, Pending]);
}

#[test]
fn stop_skips_the_rest_once_the_running_ones_end() {
    let mut r = run(2, OnFailure::Stop);
    let step = r.step(|_| unreachable!(), at(1));
    start(&mut r, &step, at(1));
    let step = r.step(
        |i| {
            if i == 0 {
                Seen::Ended(Outcome::Failed)
            } else {
                Seen::Running
            }
        },
        at(2),
    );
    assert!(step.start.is_empty());
    assert_eq!(states(&r), [Failed, Restarting, Skipped]);
    assert_eq!(r.state, RunState::Running, "the second still rolls out");
    assert_eq!(r.members[0].message.as_deref(), Some("its rollout failed"));
    assert_eq!(
        r.members[2].message.as_deref(),
        Some("an earlier member failed")
    );
    r.step(|_| Seen::Ended(Outcome::Complete), at(3));
    assert_eq!(r.state, RunState::Failed);
}

#[test]
fn continue_restarts_every_member_and_reports_the_failure() {
    let mut r = run(1, OnFailure::Continue);
    let step = r.step(|_| unreachable!(), at(1));
    start(&mut r, &step, at(1));
    let step = r.step(|_| Seen::Ended(Outcome::TimedOut), at(2));
    assert_eq!(step.start, [1]);
    start(&mut r, &step, at(2));
    let step = r.step(|_| Seen::Ended(Outcome::Complete), at(3));
    start(&mut r, &step, at(3));
    r.step(|_| Seen::Ended(Outcome::Complete), at(4));
    assert_eq!(states(&r), [Failed, Complete, Complete]);
    assert_eq!(r.state, RunState::Failed);
}

#[test]
fn a_member_held_by_someone_else_waits_then_starts() {
    let mut r = run(1, OnFailure::Stop);
    let step = r.step(|_| unreachable!(), at(10));
    start(&mut r, &step, at(10));
    // Bob took the lock before the run reached the member: wait for him.
    let step = r.step(|_| Seen::HeldBy(lock("bob", at(5))), at(11));
    assert!(step.changed && step.start.is_empty());
    assert_eq!(states(&r), [Waiting, Pending, Pending]);
    assert_eq!(
        r.members[0].message.as_deref(),
        Some("waiting for bob's restart to end")
    );
    // Asked again, nothing changes.
    assert!(!r.step(|_| Seen::HeldBy(lock("bob", at(5))), at(12)).changed);
    // Bob's restart (older than the run's) ended: ours starts, still the only one.
    let step = r.step(
        |_| Seen::Free(Some(last("bob", at(5), Outcome::Complete))),
        at(13),
    );
    assert_eq!(step.start, [0]);
}

#[test]
fn a_restart_by_someone_else_after_the_run_reached_a_member_counts() {
    let mut r = run(1, OnFailure::Stop);
    let step = r.step(|_| unreachable!(), at(10));
    start(&mut r, &step, at(10));
    let step = r.step(
        |_| Seen::Free(Some(last("bob", at(11), Outcome::Complete))),
        at(20),
    );
    assert_eq!(step.start, [1]);
    assert_eq!(r.members[0].state, Complete);
    assert_eq!(
        r.members[0].message.as_deref(),
        Some("restarted meanwhile by bob: rolled out")
    );
}

#[test]
fn a_restart_whose_driver_stopped_before_taking_the_lock_starts_again() {
    let mut r = run(1, OnFailure::Stop);
    let step = r.step(|_| unreachable!(), at(10));
    start(&mut r, &step, at(10));
    // The lock never carried this restart: start it again (the same restart id).
    assert_eq!(r.step(|_| Seen::Free(None), at(11)).start, [0]);
    let older = Seen::Free(Some(last("bob", at(1), Outcome::Complete)));
    assert_eq!(r.step(|_| older.clone(), at(11)).start, [0]);
    assert_eq!(r.restart_id(0), "r1.0");
}

#[test]
fn cancelling_skips_what_has_not_started_and_ends_after_the_running_one() {
    let mut r = run(1, OnFailure::Continue);
    let step = r.step(|_| unreachable!(), at(1));
    start(&mut r, &step, at(1));
    r.state = RunState::Cancelling;
    let step = r.step(|_| Seen::Running, at(2));
    assert!(step.start.is_empty());
    assert_eq!(states(&r), [Restarting, Skipped, Skipped]);
    assert_eq!(r.state, RunState::Cancelling);
    r.step(|_| Seen::Ended(Outcome::Complete), at(3));
    assert_eq!(r.state, RunState::Cancelled);
    // A member whose restart never took its lock is not started once cancelling.
    let mut r = run(1, OnFailure::Continue);
    let step = r.step(|_| unreachable!(), at(1));
    start(&mut r, &step, at(1));
    r.state = RunState::Cancelling;
    let step = r.step(|_| Seen::Free(None), at(2));
    assert!(step.start.is_empty());
    assert_eq!(states(&r), [Skipped, Skipped, Skipped]);
    assert_eq!(r.state, RunState::Cancelled);
}

#[test]
fn a_run_survives_its_lease_annotation() {
    let mut r = run(2, OnFailure::Continue);
    r.mark_started(0, at(1));
    let json = serde_json::to_string(&r).unwrap();
    let lease = Lease {
        annotations: [(RUN_ANNOTATION.to_string(), json)].into_iter().collect(),
        ..Lease::new("ns", lease_name("shop"))
    };
    assert_eq!(SetRun::of(&lease), Some(r));
    assert_eq!(lease.name, "restart-set.shop");
}

#[test]
fn bad_sets_are_refused_naming_the_set_and_the_problem() {
    let allowlist = Allowlist::new(
        ["cache", "api", "web"]
            .map(|n| ServiceEntry::new(w(n)))
            .to_vec(),
    )
    .unwrap();
    let entry = |name: &str, members: &[&str], concurrency: usize| SetEntry {
        name: name.into(),
        description: None,
        members: members.iter().map(|m| m.to_string()).collect(),
        concurrency,
        on_failure: OnFailure::Stop,
        schedule: None,
    };
    let ok = check_sets(
        vec![entry(
            "shop",
            &["deploy/shop/cache", "Deployment/shop/web"],
            1,
        )],
        &allowlist,
    )
    .unwrap();
    assert_eq!(ok[0].members, [w("cache"), w("web")]);
    for (entries, want) in [
        (
            vec![entry("Shop", &["Deployment/shop/web"], 1)],
            "not a lowercase DNS label",
        ),
        (
            vec![entry("a.b", &["Deployment/shop/web"], 1)],
            "not a lowercase DNS label",
        ),
        (
            vec![
                entry("a", &["Deployment/shop/web"], 1),
                entry("a", &["Deployment/shop/api"], 1),
            ],
            "restartSets[1]: the set a is defined twice",
        ),
        (vec![entry("a", &[], 1)], "has no members"),
        (
            vec![entry("a", &["Deployment/shop/web"], 0)],
            "concurrency must be at least 1",
        ),
        (
            vec![entry("a", &["Deployment/shop"], 1)],
            "expected Kind/namespace/name",
        ),
        (
            vec![entry("a", &["CronJob/shop/web"], 1)],
            "unknown workload kind \"CronJob\"",
        ),
        (
            vec![entry("a", &["Deployment/shop/db"], 1)],
            "Deployment/shop/db is not in services",
        ),
        (
            vec![entry("a", &["Deployment/shop/web", "deploy/shop/web"], 1)],
            "Deployment/shop/web is listed twice",
        ),
    ] {
        let err = check_sets(entries, &allowlist).unwrap_err().to_string();
        assert!(err.contains(want), "{err} (wanted {want})");
    }
}
