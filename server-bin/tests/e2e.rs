//! End to end: a real restart rolled out to completion, a real FleetLock cycle on a worker
//! node with a budget-protected Deployment, and two replicas sharing one lock. One suite,
//! two targets:
//!
//! - by default, the simulated cluster behind its Kubernetes API endpoint (HTTPS, its own
//!   CA), which `cargo test` runs;
//! - a real cluster (kind in CI's e2e workflow) when asked for:
//!
//! ```sh
//! RESTART_MANAGER_E2E=1 KUBECONFIG=~/.kube/config \
//!   cargo test -p server-bin --test e2e -- --test-threads=1
//! ```
//!
//! Each test works in a namespace of its own and deletes it at the end. The FleetLock test
//! cordons and drains one worker (and uncordons it); on a real cluster, run it on a
//! disposable one.

use std::sync::Arc;
use std::time::Duration;

use cluster_api::{Clock, ClusterApi, Node, SystemClock, WorkloadKind, WorkloadRef};
use cluster_sim::apiserver::{ApiServer, KubeconfigDir, Running};
use cluster_sim::{SimCluster, SimConfig, machine_id_for};
use fleetlock_core::{ClientParams, Coordinator, FleetLockConfig, zincati_id};
use k8s_adapter::{KubeCluster, KubeOptions};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, PostParams};
use restart_core::{
    Allowlist, Identity, Phase, RestartConfig, RestartError, Restarter, ServiceEntry,
};
use serde_json::json;

/// The cluster under test, and the simulation behind it when it is simulated.
struct Target {
    kube: KubeCluster,
    _simulated: Option<(SimCluster, Running, KubeconfigDir)>,
}

async fn cluster() -> Target {
    if std::env::var("RESTART_MANAGER_E2E").as_deref() == Ok("1") {
        let kube = KubeCluster::connect(None, None, KubeOptions::default())
            .await
            .expect("a cluster from KUBECONFIG");
        return Target {
            kube,
            _simulated: None,
        };
    }
    // A small cluster like kind's: a control plane and two workers, on the real clock.
    let sim = SimCluster::with_config(SimConfig {
        start_time: jiff::Timestamp::now(),
        ..SimConfig::default()
    });
    sim.add_node(
        Node::new("control-plane")
            .machine_id(machine_id_for("control-plane"))
            .label("node-role.kubernetes.io/control-plane", ""),
    );
    for name in ["worker-1", "worker-2"] {
        sim.add_node(Node::new(name).machine_id(machine_id_for(name)));
    }
    let endpoint = ApiServer::new(sim.clone())
        .serve_on_localhost()
        .await
        .expect("the simulated endpoint");
    let kubeconfig = endpoint.temp_kubeconfig().unwrap();
    let kube = KubeCluster::connect(Some(kubeconfig.path()), None, KubeOptions::default())
        .await
        .expect("the simulated endpoint's kubeconfig");
    Target {
        kube,
        _simulated: Some((sim, endpoint, kubeconfig)),
    }
}

/// A namespace for one test, deleted when dropped.
struct Scratch {
    kube: KubeCluster,
    name: String,
}

impl Scratch {
    async fn new(kube: &KubeCluster, prefix: &str) -> Self {
        let name = format!("{prefix}-{}", std::process::id());
        let api: Api<Namespace> = Api::all(kube.client());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        api.create(&PostParams::default(), &ns).await.unwrap();
        Scratch {
            kube: kube.clone(),
            name,
        }
    }

    async fn deployment(&self, name: &str, replicas: i32) {
        let api: Api<Deployment> = Api::namespaced(self.kube.client(), &self.name);
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "terminationGracePeriodSeconds": 2,
                        "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]
                    }
                }
            }
        }))
        .unwrap();
        api.create(&PostParams::default(), &d).await.unwrap();
    }

    async fn budget(&self, app: &str, min_available: i32) {
        let api: Api<PodDisruptionBudget> = Api::namespaced(self.kube.client(), &self.name);
        let b: PodDisruptionBudget = serde_json::from_value(json!({
            "metadata": {"name": app},
            "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": app}}}
        }))
        .unwrap();
        api.create(&PostParams::default(), &b).await.unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let (client, name) = (self.kube.client(), self.name.clone());
        let _ = std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                let api: Api<Namespace> = Api::all(client);
                let _ = api.delete(&name, &DeleteParams::default()).await;
            });
        })
        .join();
    }
}

fn restarter(kube: &KubeCluster, w: &WorkloadRef, instance: &str) -> Restarter {
    let allowlist = Allowlist::new(vec![ServiceEntry::new(w.clone())]).unwrap();
    let config = RestartConfig {
        namespace: w.namespace.clone(),
        ..RestartConfig::default()
    };
    let r = Restarter::builder(Arc::new(kube.clone()), allowlist)
        .config(config)
        .instance(instance)
        .build();
    tokio::spawn({
        let r = r.clone();
        async move { r.run().await }
    });
    r
}

async fn wait_available(kube: &KubeCluster, w: &WorkloadRef) {
    for _ in 0..120 {
        let d = kube.get_workload(w).await.unwrap();
        if d.status.available_replicas >= d.replicas.unwrap_or(1) {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("{w} never became available");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_restart_rolls_out_to_completion() {
    let target = cluster().await;
    let kube = target.kube.clone();
    let scratch = Scratch::new(&kube, "rm-e2e-restart").await;
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
    let scratch = Scratch::new(&kube, "rm-e2e-lock").await;
    scratch.deployment("web", 1).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleetlock_cycle_drains_a_worker_and_gives_it_back() {
    let target = cluster().await;
    let kube = target.kube.clone();
    let scratch = Scratch::new(&kube, "rm-e2e-fleetlock").await;
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
