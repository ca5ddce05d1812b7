//! A FleetLock cycle that drains a worker node and gives it back.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleetlock_cycle_drains_a_worker_and_gives_it_back() {
    let target = cluster().await;
    let kube = target.kube.clone();
    let scratch = Scratch::new(&kube.client(), "rm-e2e-fleetlock").await;
    scratch.deployment("web", 2).await;
    scratch.budget("web", 1).await;
    let web = WorkloadRef::new(WorkloadKind::Deployment, &scratch.name, "web");
    wait_available(&kube, &web).await;

    let worker = kube
        .list_nodes()
        .await
        .unwrap()
        .into_iter()
        .find(|n| {
            !n.labels
                .contains_key("node-role.kubernetes.io/control-plane")
                && !n.machine_id.is_empty()
        })
        .expect("a worker node with a machine id");
    let mut config = FleetLockConfig {
        namespace: scratch.name.clone(),
        ..FleetLockConfig::default()
    };
    config.drain.request_wait = Duration::from_secs(240);
    config.drain.delete_empty_dir_data = true;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let coordinator = Coordinator::builder(Arc::new(kube.clone()), config)
        .clock(clock)
        .instance("e2e")
        .build();
    tokio::spawn({
        let c = coordinator.clone();
        async move { c.run().await }
    });
    coordinator.wait_ready().await;
    let params = ClientParams {
        id: zincati_id(&worker.machine_id).unwrap(),
        group: "default".into(),
    };

    let result = coordinator.pre_reboot(&params).await;
    let node = kube.get_node(&worker.name).await.unwrap();
    // Give the node back whatever happened.
    let released = coordinator.steady_state(&params).await;
    result.unwrap();
    assert!(node.unschedulable, "cordoned while approved");
    released.unwrap();
    assert!(
        !kube.get_node(&worker.name).await.unwrap().unschedulable,
        "uncordoned after steady-state"
    );
    wait_available(&kube, &web).await;
}
