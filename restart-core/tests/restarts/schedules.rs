//! Scheduled restarts on the simulated cluster and Tokio's paused clock: once per due time
//! across two replicas and across a replica's restart, skipped (and said so) when locked or
//! outside a window, and restart sets on a schedule.

use cluster_api::cron::Cron;
use cluster_api::{ClusterApi, CoreBuilder};
use restart_core::RestartSet;
use restart_core::schedule::{DueState, LastDue, Schedule, Target};
use restart_core::sets::{OnFailure, RunState, SetEntry, check_sets};

use super::*;

#[derive(Default)]
struct Scheduled(Mutex<Vec<(String, DueState)>>);

impl RestartObserver for Scheduled {
    fn scheduled(&self, target: &str, state: DueState) {
        self.0.lock().unwrap().push((target.to_string(), state));
    }
}

fn every(cron: &str) -> Option<Schedule> {
    Some(Schedule::new(Cron::parse(cron, None).unwrap()))
}

fn web_every(cron: &str) -> Allowlist {
    Allowlist::new(vec![
        ServiceEntry {
            schedule: every(cron),
            ..ServiceEntry::new(web())
        },
        ServiceEntry::new(db()),
    ])
    .unwrap()
}

async fn scheduler(
    sim: &SimCluster,
    allowlist: Allowlist,
    sets: Vec<RestartSet>,
    name: &str,
) -> (Restarter, Arc<Scheduled>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Scheduled::default());
    let r = Restarter::builder(Arc::new(sim.clone()), allowlist)
        .clock(Arc::new(sim.clone()))
        .instance(name)
        .observer(seen.clone())
        .sets(sets)
        .build();
    let handle = tokio::spawn({
        let r = r.clone();
        async move { r.run().await }
    });
    r.wait_ready().await;
    (r, seen, handle)
}

fn at(s: &str) -> cluster_api::Timestamp {
    s.parse().unwrap()
}

/// Waits (on the paused clock) until the simulated wall clock reads `when`.
async fn until(sim: &SimCluster, when: &str) {
    let left = at(when).duration_since(sim.now());
    tokio::time::sleep(Duration::try_from(left).unwrap()).await;
}

fn notes(sim: &SimCluster, reason: &str) -> Vec<String> {
    sim.events()
        .into_iter()
        .filter(|e| e.reason == reason)
        .map(|e| e.note)
        .collect()
}

fn schedule_lease(sim: &SimCluster, target: &Target) -> LastDue {
    LastDue::of(&sim.lease("restart-manager", &target.lease_name()).unwrap()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn two_replicas_restart_once_per_due_time() {
    let sim = cluster();
    assert_eq!(
        sim.now(),
        at("2026-01-05T09:00:00Z"),
        "the times below assume it"
    );
    // 09:00 is a due time too: start past its starting deadline.
    until(&sim, "2026-01-05T09:06:00Z").await;
    let (a, seen_a, _run_a) = scheduler(&sim, web_every("*/10 * * * *"), vec![], "a").await;
    let (_b, seen_b, _run_b) = scheduler(&sim, web_every("*/10 * * * *"), vec![], "b").await;
    let status = a.status(&web()).unwrap().schedule.unwrap();
    assert_eq!(status.cron, "*/10 * * * * UTC");
    assert_eq!(status.next, Some(at("2026-01-05T09:10:00Z")));

    until(&sim, "2026-01-05T09:35:00Z").await;
    assert_eq!(
        restarts(&sim, &web()),
        3,
        "09:10, 09:20 and 09:30, once each"
    );
    assert_eq!(restarts(&sim, &db()), 0);
    let announced: Vec<_> = seen_a
        .0
        .lock()
        .unwrap()
        .iter()
        .chain(seen_b.0.lock().unwrap().iter())
        .cloned()
        .collect();
    assert_eq!(
        announced.len(),
        3,
        "reported once per due time: {announced:?}"
    );
    assert!(
        announced
            .iter()
            .all(|(t, s)| t == "Deployment/shop/web" && *s == DueState::Started)
    );
    let restarted = notes(&sim, "Restarted");
    assert!(
        restarted
            .iter()
            .all(|n| n == "restarted by schedule (scheduled */10 * * * * UTC)"),
        "{restarted:?}"
    );
    let last = schedule_lease(&sim, &Target::Workload(web()));
    assert_eq!(
        (last.due, last.state),
        (at("2026-01-05T09:30:00Z"), DueState::Started)
    );
    let shown = a.status(&web()).unwrap();
    assert_eq!(shown.last_restart.unwrap().by, "schedule");
    assert_eq!(
        shown.schedule.unwrap().last.unwrap().due,
        at("2026-01-05T09:30:00Z")
    );
}

fn restarts(sim: &SimCluster, w: &WorkloadRef) -> usize {
    reasons(sim, w).iter().filter(|r| *r == "Restarted").count()
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_comes_back_does_not_repeat_a_due_time() {
    let sim = cluster();
    until(&sim, "2026-01-05T09:06:00Z").await;
    let (_a, _, run_a) = scheduler(&sim, web_every("*/10 * * * *"), vec![], "a").await;
    until(&sim, "2026-01-05T09:11:00Z").await;
    assert_eq!(restarts(&sim, &web()), 1);
    run_a.abort();
    // Back within 09:10's starting deadline: 09:10 is not done again, 09:20 is.
    let (_b, _, _run_b) = scheduler(&sim, web_every("*/10 * * * *"), vec![], "b").await;
    until(&sim, "2026-01-05T09:14:00Z").await;
    assert_eq!(restarts(&sim, &web()), 1);
    until(&sim, "2026-01-05T09:21:00Z").await;
    assert_eq!(restarts(&sim, &web()), 2);
}

/// A replica claimed a due time and restarted the workload, then died before it recorded
/// that: the next finishes the record, and does not restart again.
#[tokio::test(start_paused = true)]
async fn a_claim_whose_restart_happened_is_finished_without_restarting_again() {
    let sim = cluster();
    until(&sim, "2026-01-05T09:10:30Z").await;
    let target = Target::Workload(web());
    let due = at("2026-01-05T09:10:00Z");
    let mut claim = cluster_api::Lease::new("restart-manager", target.lease_name())
        .label(restart_core::lock::LOCK_LABEL, "restart-schedule");
    LastDue {
        due,
        state: DueState::Claimed,
        note: None,
    }
    .write(&mut claim);
    sim.create_lease(&claim).await.unwrap();
    // Its restart's lock, taken and released under the due time's id.
    let request = restart_core::lock::TakeRequest {
        namespace: "restart-manager",
        workload: &web(),
        holder: "schedule",
        reason: None,
        restart_id: &target.id_for(due),
        restarted_at: "2026-01-05T09:10:00Z",
        duration: Duration::from_secs(300),
        now: sim.now(),
    };
    restart_core::lock::take(&sim, &request).await.unwrap();

    let (_r, seen, _run) = scheduler(&sim, web_every("*/10 * * * *"), vec![], "b").await;
    until(&sim, "2026-01-05T09:12:00Z").await;
    assert_eq!(restarts(&sim, &web()), 0, "not restarted twice");
    assert_eq!(schedule_lease(&sim, &target).state, DueState::Started);
    assert_eq!(seen.0.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_locked_workload_is_skipped_with_an_event() {
    let sim = cluster();
    sim.stall_rollouts(&web(), true).unwrap();
    let (r, seen, _run) = scheduler(&sim, web_every("10 9 * * *"), vec![], "a").await;
    // Bob's lock (5 minutes) still holds at 09:10.
    until(&sim, "2026-01-05T09:08:00Z").await;
    r.restart(&web(), &Identity::user("bob"), Some("hotfix"))
        .await
        .unwrap();
    until(&sim, "2026-01-05T09:11:00Z").await;
    assert_eq!(restarts(&sim, &web()), 1, "bob's only");
    let skipped = notes(&sim, "ScheduledRestartSkipped");
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(
        skipped[0]
            .contains("scheduled restart of Deployment/shop/web for 2026-01-05T09:10:00Z skipped")
            && skipped[0].contains("being restarted by bob"),
        "{}",
        skipped[0]
    );
    assert_eq!(
        *seen.0.lock().unwrap(),
        [("Deployment/shop/web".to_string(), DueState::Skipped)]
    );
    let last = schedule_lease(&sim, &Target::Workload(web()));
    assert_eq!(last.state, DueState::Skipped);
}

#[tokio::test(start_paused = true)]
async fn outside_its_windows_a_schedule_is_skipped_and_a_late_start_does_not_catch_up() {
    let sim = cluster();
    let entry = ServiceEntry {
        schedule: every("10 9 * * *"),
        // 2026-01-05 is a Monday; 09:10 is before the window.
        windows: vec![
            cluster_api::window::Window::parse(&["mon-fri"], "10:00", "17:00", None).unwrap(),
        ],
        ..ServiceEntry::new(web())
    };
    let (_r, _, _run) = scheduler(&sim, Allowlist::new(vec![entry]).unwrap(), vec![], "a").await;
    until(&sim, "2026-01-05T09:11:00Z").await;
    assert_eq!(restarts(&sim, &web()), 0);
    let skipped = notes(&sim, "ScheduledRestartSkipped");
    assert!(
        skipped[0].contains("may be restarted only in its windows"),
        "{skipped:?}"
    );

    // A replica that starts after the starting deadline (5 minutes) does not run 09:10.
    let sim = cluster();
    until(&sim, "2026-01-05T09:16:00Z").await;
    let (_r, seen, _run) = scheduler(&sim, web_every("10 9 * * *"), vec![], "a").await;
    until(&sim, "2026-01-05T09:30:00Z").await;
    assert_eq!(restarts(&sim, &web()), 0);
    assert!(seen.0.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_set_on_a_schedule_runs_once_per_due_time() {
    let sim = cluster();
    let list = allowlist(vec![]);
    let sets = check_sets(
        vec![SetEntry {
            name: "shop".into(),
            description: None,
            members: vec![web().to_string(), db().to_string()],
            concurrency: 1,
            on_failure: OnFailure::Stop,
            schedule: every("30 9 * * *"),
        }],
        &list,
    )
    .unwrap();
    let (a, seen_a, _run_a) = scheduler(&sim, list.clone(), sets.clone(), "a").await;
    let (_b, seen_b, _run_b) = scheduler(&sim, list, sets, "b").await;
    assert_eq!(
        a.set_status("shop").unwrap().schedule.unwrap().next,
        Some(at("2026-01-05T09:30:00Z"))
    );
    until(&sim, "2026-01-05T09:45:00Z").await;
    let status = a.set_status("shop").unwrap();
    let run = status.run.unwrap();
    assert_eq!(
        (run.state, run.by.as_str()),
        (RunState::Complete, "schedule")
    );
    assert_eq!(
        run.id,
        Target::Set("shop".into()).id_for(at("2026-01-05T09:30:00Z"))
    );
    assert_eq!(restarts(&sim, &web()), 1);
    assert_eq!(restarts(&sim, &db()), 1);
    let mut seen = seen_a.0.lock().unwrap().clone();
    seen.extend(seen_b.0.lock().unwrap().iter().cloned());
    assert_eq!(seen, [("restart set shop".to_string(), DueState::Started)]);
}

/// The same, but after the claimed restart someone else restarted the workload, so its lock
/// no longer carries the due time's restart id: the next still finds the due time done.
#[tokio::test(start_paused = true)]
async fn a_claim_whose_restart_happened_before_another_is_not_restarted_again() {
    let sim = cluster();
    until(&sim, "2026-01-05T09:10:30Z").await;
    let target = Target::Workload(web());
    let due = at("2026-01-05T09:10:00Z");
    let mut claim = cluster_api::Lease::new("restart-manager", target.lease_name())
        .label(restart_core::lock::LOCK_LABEL, "restart-schedule");
    LastDue {
        due,
        state: DueState::Claimed,
        note: None,
    }
    .write(&mut claim);
    sim.create_lease(&claim).await.unwrap();
    // Its restart's lock, taken and released under the due time's id; then bob's.
    for (holder, id) in [("schedule", target.id_for(due)), ("bob", "bob-1".into())] {
        let request = restart_core::lock::TakeRequest {
            namespace: "restart-manager",
            workload: &web(),
            holder,
            reason: None,
            restart_id: &id,
            restarted_at: "2026-01-05T09:10:00Z",
            duration: Duration::from_secs(300),
            now: sim.now(),
        };
        restart_core::lock::take(&sim, &request).await.unwrap();
        restart_core::lock::release(
            &sim,
            "restart-manager",
            &web(),
            Some(&id),
            Outcome::Complete,
            sim.now(),
        )
        .await
        .unwrap();
    }

    let (_r, _, _run) = scheduler(&sim, web_every("*/10 * * * *"), vec![], "b").await;
    until(&sim, "2026-01-05T09:12:00Z").await;
    assert_eq!(restarts(&sim, &web()), 0, "not restarted twice");
    assert_eq!(schedule_lease(&sim, &target).state, DueState::Started);
}

/// A scheduled set's Events name the run's Lease by uid.
#[tokio::test(start_paused = true)]
async fn a_scheduled_sets_events_name_its_lease_by_uid() {
    let sim = cluster();
    let list = allowlist(vec![]);
    let sets = check_sets(
        vec![SetEntry {
            name: "shop".into(),
            description: None,
            members: vec![web().to_string()],
            concurrency: 1,
            on_failure: OnFailure::Stop,
            schedule: every("30 9 * * *"),
        }],
        &list,
    )
    .unwrap();
    let (_a, _, _run_a) = scheduler(&sim, list, sets, "a").await;
    until(&sim, "2026-01-05T09:45:00Z").await;
    let uid = sim
        .lease("restart-manager", "restart-set.shop")
        .unwrap()
        .uid;
    let events: Vec<_> = sim
        .events()
        .into_iter()
        .filter(|e| e.regarding.name == "restart-set.shop")
        .collect();
    assert!(
        events.iter().any(|e| e.reason == "ScheduledRestart"),
        "{events:?}"
    );
    for e in &events {
        assert_eq!(e.regarding.uid.as_deref(), Some(uid.as_str()), "{e:?}");
    }
}
