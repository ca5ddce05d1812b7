//! The checks of restart locks, restart patches and set runs.

use super::*;

fn request<'a>(sim: &SimCluster, w: &'a WorkloadRef, id: &'a str, at: &'a str) -> TakeRequest<'a> {
    TakeRequest {
        namespace: NS,
        workload: w,
        holder: id,
        reason: None,
        restart_id: id,
        restarted_at: at,
        duration: Duration::from_secs(300),
        now: sim.now(),
    }
}

async fn patch(sim: &SimCluster, w: &WorkloadRef, restarted_at: &str) {
    let changes: BTreeMap<String, Option<String>> =
        [(RESTARTED_AT.to_string(), Some(restarted_at.to_string()))]
            .into_iter()
            .collect();
    sim.patch_template_annotations(w, &changes).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_restart_sent_without_its_lock_is_flagged() {
    let (sim, checker, web) = cluster();
    assert!(matches!(
        take(&sim, &request(&sim, &web, "alice", "t1"))
            .await
            .unwrap(),
        Take::Taken { .. }
    ));
    patch(&sim, &web, "t1").await;
    assert!(found(&checker).is_empty());
    release(
        &sim,
        NS,
        &web,
        Some("alice"),
        restart_core::Outcome::Complete,
        sim.now(),
    )
    .await
    .unwrap();
    patch(&sim, &web, "t2").await;
    assert_eq!(found(&checker), [Invariant::RestartWithoutLock]);
}

#[tokio::test(start_paused = true)]
async fn a_lock_taken_before_it_ran_out_is_flagged() {
    let (sim, checker, web) = cluster();
    take(&sim, &request(&sim, &web, "alice", "t1"))
        .await
        .unwrap();
    // A take that ignores the holder: rewrite the Lease for someone else while it runs.
    let mut lease = sim
        .lease(NS, &restart_core::lock::lease_name(&web))
        .unwrap();
    lease.holder_identity = Some("bob".into());
    lease.annotations.insert(
        restart_core::lock::RESTART_ID_ANNOTATION.into(),
        "bob".into(),
    );
    sim.replace_lease(&lease).await.unwrap();
    assert_eq!(found(&checker), [Invariant::RestartLockStolen]);

    // After it ran out, taking it over is how the lock works.
    let (sim, checker, web) = cluster();
    take(&sim, &request(&sim, &web, "alice", "t1"))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(301)).await;
    let taken = take(&sim, &request(&sim, &web, "bob", "t2")).await.unwrap();
    assert!(matches!(taken, Take::Taken { .. }));
    assert!(found(&checker).is_empty(), "{:?}", checker.violations());
}

/// A restart whose patch was applied, and which then restarts the workload again under its
/// id (a set member or a due time done twice), is flagged; a restart whose patch never
/// landed may try again under the same id.
#[tokio::test(start_paused = true)]
async fn a_restart_applied_twice_is_flagged() {
    let (sim, checker, web) = cluster();
    let done = || {
        release(
            &sim,
            NS,
            &web,
            None,
            restart_core::Outcome::Complete,
            sim.now(),
        )
    };
    // run-1.0's first try is refused by the API server: nothing was applied.
    take(&sim, &request(&sim, &web, "run-1.0", "t1"))
        .await
        .unwrap();
    sim.fail_next(
        cluster_sim::Operation::PatchWorkload,
        1,
        cluster_api::Error::unavailable("the connection was refused"),
    );
    let changes: BTreeMap<String, Option<String>> =
        [(RESTARTED_AT.to_string(), Some("t1".to_string()))]
            .into_iter()
            .collect();
    sim.patch_template_annotations(&web, &changes)
        .await
        .unwrap_err();
    done().await.unwrap();
    take(&sim, &request(&sim, &web, "alice-1", "t2"))
        .await
        .unwrap();
    patch(&sim, &web, "t2").await;
    done().await.unwrap();
    // It tries again, and is applied: its first restart.
    take(&sim, &request(&sim, &web, "run-1.0", "t3"))
        .await
        .unwrap();
    patch(&sim, &web, "t3").await;
    done().await.unwrap();
    assert_eq!(found(&checker), []);
    // And once more, after someone else's restart replaced it on the Lease: the second.
    take(&sim, &request(&sim, &web, "alice-2", "t4"))
        .await
        .unwrap();
    patch(&sim, &web, "t4").await;
    done().await.unwrap();
    take(&sim, &request(&sim, &web, "run-1.0", "t5"))
        .await
        .unwrap();
    patch(&sim, &web, "t5").await;
    assert_eq!(found(&checker), [Invariant::RestartRepeated]);
}

/// A set run written with more members restarting than its concurrency is flagged.
#[tokio::test(start_paused = true)]
async fn a_set_run_over_its_concurrency_is_flagged() {
    use restart_core::sets::{MemberState, RUN_ANNOTATION, SetRun};
    let (sim, checker, web) = cluster();
    let set = restart_core::RestartSet {
        name: "shop".into(),
        description: None,
        members: vec![web.clone(), web.clone()],
        concurrency: 1,
        on_failure: restart_core::sets::OnFailure::Stop,
        schedule: None,
    };
    let mut run = SetRun::new(&set, "run-1".into(), "alice", None, sim.now());
    let write = |run: &SetRun| {
        let mut lease = cluster_api::Lease::new(NS, "restart-set.shop").label(
            restart_core::lock::LOCK_LABEL,
            restart_core::sets::SET_LABEL_VALUE,
        );
        lease
            .annotations
            .insert(RUN_ANNOTATION.into(), serde_json::to_string(run).unwrap());
        lease
    };
    run.members[0].state = MemberState::Restarting;
    let created = sim.create_lease(&write(&run)).await.unwrap();
    assert_eq!(found(&checker), []);
    run.members[1].state = MemberState::Restarting;
    let mut second = write(&run);
    second.resource_version = created.resource_version;
    sim.replace_lease(&second).await.unwrap();
    assert_eq!(found(&checker), [Invariant::SetConcurrencyExceeded]);
}
