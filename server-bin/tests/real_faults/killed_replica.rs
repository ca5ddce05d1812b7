//! A replica SIGKILLed, the API server restarted and etcd compacted while a drain and a
//! restart are under way.

use super::*;

/// A drain held by a real budget and a workload restart, both through replica a; a is
/// SIGKILLed, the API server restarted, etcd compacted. Replica b finishes both, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a disposable real cluster whose API server it restarts; see the file's doc"]
async fn a_drain_and_a_restart_survive_a_killed_replica_an_api_server_restart_and_compaction() {
    let client = client().await;
    let t0 = std::time::Instant::now();
    let phase = |what: &str| eprintln!("{:>6.1} s: {what}", t0.elapsed().as_secs_f64());
    let scratch = Scratch::new(&client, "rm-faults").await;
    let ns = scratch.name.clone();
    // A budget that keeps both of db's pods: the drain waits until db is scaled up. web's
    // rollouts take a while (minReadySeconds), so that its restart is under way at the kill.
    scratch.deployment("db", 2).await;
    scratch.budget("db", 2).await;
    scratch.deployment_ready_for("web", 2, 5).await;
    available(&scratch, "db").await;
    available(&scratch, "web").await;
    let (a, b) = (
        Replica::start("rm-faults-a", &ns).await,
        Replica::start("rm-faults-b", &ns).await,
    );
    phase("replicas ready");
    let (first, second) = two_nodes(&client, &ns, "db").await;
    let one = NodeAgent::new(&client, &first, &a.url, "default").await;
    let two = NodeAgent::new(&client, &second, &b.url, "default").await;
    let approved_before = (
        approvals(&client, &first).await,
        approvals(&client, &second).await,
    );

    // Under way through a: the first node's drain (held by the budget) and web's restart.
    refused_as(
        &one.pre_reboot().await,
        "draining",
        "a drain the budget holds",
    );
    refused_as(&two.pre_reboot().await, "lock_held", "the second node");
    let web = format!("Deployment/{ns}/web");
    let started = reqwest::Client::new()
        .post(format!("{}/api/v1/service/{web}/restart", a.url))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200, "{:?}", started.text().await);

    phase("drain and restart under way");
    // The faults: a dies mid-drain and mid-restart; the API server restarts (every watch of
    // b breaks); etcd is compacted, so that b's watches resumed from before get 410.
    a.sigkill().await;
    cluster(&["restart-apiserver"]);
    cluster(&["compact"]);
    until("b's /readyz after the API server's restart", async || {
        b.ready().await.then_some(())
    })
    .await;
    phase("b ready after the faults");
    refused_as(
        &two.pre_reboot().await,
        "lock_held",
        "the second node after the faults",
    );

    // The budget makes room; b resumes the drain from the group Lease and approves it once.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deployments
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    let one = one.via(&b.url);
    one.until_approved(FAULT_DEADLINE).await;
    refused_as(
        &two.pre_reboot().await,
        "lock_held",
        "while the first is approved",
    );

    phase("first node approved");
    // web's restart ends, said by b, its lock released; web is whole.
    let status = until("web's restart to end, as b tells it", async || {
        let s = b.service(&web).await;
        (s["lock"].is_null() && !s["lastRestart"]["outcome"].is_null()).then_some(s)
    })
    .await;
    assert_eq!(status["lastRestart"]["outcome"], "complete", "{status}");
    available(&scratch, "web").await;

    phase("web's restart ended");
    // The first node reboots and comes back; its slot is released; then the second's turn.
    assert!(one.reboot(Reboot::Short, grace()).await.allowed());
    until("the first slot's release", async || {
        slot_holders(&client, &ns).await.is_empty().then_some(())
    })
    .await;
    phase("first slot released");
    two.until_approved(FAULT_DEADLINE).await;
    assert!(two.reboot(Reboot::Short, grace()).await.allowed());
    until("the second slot's release", async || {
        slot_holders(&client, &ns).await.is_empty().then_some(())
    })
    .await;
    assert_eq!(
        (
            approvals(&client, &first).await,
            approvals(&client, &second).await
        ),
        (approved_before.0 + 1, approved_before.1 + 1),
        "each reboot approved exactly once"
    );
    assert!(!one.view().await.cordoned && !two.view().await.cordoned);

    phase("second slot released");
    // No relist storm: b's watches resumed across the restart and each listed again once at
    // most, for a 410. The restarted API server's watch cache starts at the current revision,
    // so a watch resumed from an older resourceVersion is too old even before the compaction.
    // Leases are watched four times (FleetLock groups, restart locks, sets, schedules).
    let (relists, reasons) = b.relists();
    eprintln!("relists of b's watches after the faults: {relists:?}; why: {reasons:#?}");
    assert!(
        relists
            .iter()
            .all(|(url, &n)| n <= if url.contains("/leases") { 4 } else { 2 }),
        "a watch listed again more than once: {relists:?}; why: {reasons:#?}"
    );
}
