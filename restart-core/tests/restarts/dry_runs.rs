//! Dry runs, and restart windows (which a dry run reports as a real restart would).

use super::*;

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
