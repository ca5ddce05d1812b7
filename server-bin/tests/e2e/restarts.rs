//! Workload restarts: one rolled out to completion, two replicas sharing one lock.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_restart_rolls_out_to_completion() {
    let target = cluster().await;
    let kube = target.kube.clone();
    let scratch = Scratch::new(&kube.client(), "rm-e2e-restart").await;
    scratch.deployment("web", 2).await;
    let web = WorkloadRef::new(WorkloadKind::Deployment, &scratch.name, "web");
    wait_available(&kube, &web).await;

    let r = restarter(&kube, &web, "e2e");
    r.wait_ready().await;
    r.restart(&web, &Identity::user("e2e"), Some("end-to-end"))
        .await
        .unwrap();
    let done = tokio::time::timeout(Duration::from_secs(300), r.wait(&web, |_| {}))
        .await
        .expect("the rollout finished");
    assert_eq!(done.phase, Phase::Complete, "{done:?}");
    let w = kube.get_workload(&web).await.unwrap();
    assert!(
        w.template_annotations
            .contains_key(restart_core::RESTARTED_AT)
    );
    let history = r.history(&web).await.unwrap();
    assert!(
        history.iter().any(|h| h.reason == "RolloutComplete"),
        "{history:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_restart_lock() {
    let target = cluster().await;
    let kube = target.kube.clone();
    let scratch = Scratch::new(&kube.client(), "rm-e2e-lock").await;
    // A rollout that lasts a few seconds: on KWOK's nodes a pod is Ready as soon as it is
    // scheduled, so an instant rollout would end (and free the lock) before bob asks.
    scratch.deployment_ready_for("web", 1, 5).await;
    let web = WorkloadRef::new(WorkloadKind::Deployment, &scratch.name, "web");
    wait_available(&kube, &web).await;
    let (a, b) = (restarter(&kube, &web, "a"), restarter(&kube, &web, "b"));
    a.wait_ready().await;
    b.wait_ready().await;
    a.restart(&web, &Identity::user("alice"), None)
        .await
        .unwrap();
    match b.restart(&web, &Identity::user("bob"), None).await {
        Err(RestartError::Locked { lock, .. }) => assert_eq!(lock.holder, "alice"),
        other => panic!("expected the lock to be held: {other:?}"),
    }
    let done = tokio::time::timeout(Duration::from_secs(300), b.wait(&web, |_| {}))
        .await
        .unwrap();
    assert_eq!(done.phase, Phase::Complete);
}
