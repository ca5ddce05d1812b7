//! End to end: a real restart rolled out to completion, a real FleetLock cycle on a worker
//! node with a budget-protected Deployment, and two replicas sharing one lock. One suite,
//! two targets:
//!
//! - by default, the simulated cluster behind its Kubernetes API endpoint (HTTPS, its own
//!   CA), which `cargo test` runs;
//! - a real cluster when asked for: the genuine control plane on loopback that
//!   `scripts/cluster up` starts (docs/control-plane.md; what `.ci/run` does), or any other:
//!
//! ```sh
//! scripts/cluster up && eval "$(scripts/cluster env)"
//! RESTART_MANAGER_E2E=1 cargo test -p server-bin --test e2e -- --test-threads=1
//! ```
//!
//! The tests of node reboots played by agents (`common/agent.rs`: Zincati over HTTP with
//! restartctl's FleetLock client, the kubelet's stop and start on the real API) need KWOK's
//! fake nodes, so they run only on such a cluster, against the real `restart-manager` binary;
//! elsewhere they say they were skipped and how to run them.
//!
//! Each test works in a namespace of its own and deletes it at the end. The FleetLock tests
//! cordon and drain nodes (and give them back); on a real cluster, run them on a disposable
//! one.

mod common;

use cluster_api::CoreBuilder;
use std::sync::Arc;
use std::time::Duration;

use cluster_api::{Clock, ClusterApi, Node, SystemClock, WorkloadKind, WorkloadRef};
use cluster_sim::apiserver::{ApiServer, KubeconfigDir, Running};
use cluster_sim::{SimCluster, SimConfig, machine_id_for};
use common::agent::{AGENT_DEADLINE, KWOK_LABEL, NodeAgent, Reboot};
use common::real::{Scratch, TempFile, approvals, refused_as, slot_holders};
use fleetlock_core::{ClientParams, Coordinator, FleetLockConfig, zincati_id};
use k8s_adapter::{KubeCluster, KubeOptions};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node as KubeNode, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
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

// === Node reboots played by agents, on a real cluster with KWOK's fake nodes ===

/// The real cluster with at least three KWOK nodes (`scripts/cluster up`), or `None` after
/// saying why the test is skipped and how to run it.
async fn kwok_cluster(test: &str) -> Option<KubeCluster> {
    let how = "scripts/cluster up && eval \"$(scripts/cluster env)\" && RESTART_MANAGER_E2E=1 \
               cargo test -p server-bin --test e2e -- --test-threads=1";
    if std::env::var("RESTART_MANAGER_E2E").as_deref() != Ok("1") {
        eprintln!("{test}: skipped: needs a real cluster with KWOK's fake nodes: {how}");
        return None;
    }
    let kube = KubeCluster::connect(None, None, KubeOptions::default())
        .await
        .expect("a cluster from KUBECONFIG");
    let nodes: Api<KubeNode> = Api::all(kube.client());
    let kwok = nodes
        .list(&ListParams::default().labels(&format!("{KWOK_LABEL}=fake")))
        .await
        .expect("the nodes");
    if kwok.items.len() < 3 {
        eprintln!(
            "{test}: skipped: the cluster has {} KWOK node(s), 3 are needed: {how}",
            kwok.items.len()
        );
        return None;
    }
    Some(kube)
}

/// `scripts/cluster`'s `--node-monitor-grace-period` (`RM_CLUSTER_NODE_GRACE_PERIOD`, 20 s),
/// or upstream's 50 s for any other cluster: how long a stopped node still looks Ready.
fn grace_period() -> Duration {
    std::env::var("RM_CLUSTER_NODE_GRACE_PERIOD")
        .ok()
        .and_then(|g| fleetlock_core::config::parse_duration(&g).ok())
        .unwrap_or(Duration::from_secs(50))
}

/// The FleetLock part of the server's configuration for these tests: short waits, so that the
/// agents' polling and the drains move at the cluster's pace.
const REPLICA_CONFIG: &str = "fleetlock:\n  drain:\n    requestWait: 2s\n    budgetRetry: 1s\n    \
     retryInitial: 1s\n    retryMax: 2s\n    deleteEmptyDirData: true\n    preflight: false\n";

/// The real `restart-manager` binary, pointed at the cluster of `KUBECONFIG`, with its Leases
/// in `namespace`; killed when dropped.
struct Replica {
    child: tokio::process::Child,
    url: String,
    _config: TempFile,
}

impl Replica {
    async fn start(name: &str, namespace: &str) -> Self {
        let config = TempFile(std::env::temp_dir().join(format!("{namespace}-{name}.yaml")));
        std::fs::write(&config.0, REPLICA_CONFIG).unwrap();
        let kubeconfig = std::env::var_os("KUBECONFIG").expect("KUBECONFIG names the cluster");
        let port = common::free_port();
        let child = common::process::start_with(
            name,
            std::path::Path::new(&kubeconfig),
            &config.0,
            port,
            &["--pod-namespace", namespace],
        )
        .await;
        let url = format!("http://127.0.0.1:{port}");
        until("the replica's /readyz", async || {
            let ok = reqwest::get(format!("{url}/readyz"))
                .await
                .is_ok_and(|r| r.status().is_success());
            ok.then_some(())
        })
        .await;
        Replica {
            child,
            url,
            _config: config,
        }
    }

    async fn sigkill(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// Polls until `check` says yes, bounded by the agents' deadline.
async fn until<T>(what: &str, check: impl AsyncFnMut() -> Option<T>) -> T {
    common::until_within(what, AGENT_DEADLINE, check).await
}

/// Waits until the default group's Lease holds no slot.
async fn until_no_holder(kube: &KubeCluster, namespace: &str, what: &str) {
    until(what, async || {
        slot_holders(&kube.client(), namespace)
            .await
            .is_empty()
            .then_some(())
    })
    .await;
}

/// Where `app`'s pods run.
async fn nodes_of(kube: &KubeCluster, namespace: &str, app: &str) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(kube.client(), namespace);
    pods.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.spec.and_then(|s| s.node_name))
        .collect()
}

/// A schedulable KWOK node, other than `not`, preferring one where `app` runs.
async fn pick_node(kube: &KubeCluster, namespace: &str, app: &str, not: &[&str]) -> String {
    let running = nodes_of(kube, namespace, app).await;
    let nodes: Api<KubeNode> = Api::all(kube.client());
    let mut candidates: Vec<String> = nodes
        .list(&ListParams::default().labels(&format!("{KWOK_LABEL}=fake")))
        .await
        .unwrap()
        .into_iter()
        .filter(|n| {
            !n.spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false)
        })
        .filter_map(|n| n.metadata.name)
        .filter(|n| !not.contains(&n.as_str()))
        .collect();
    candidates.sort_by_key(|n| !running.contains(n));
    candidates
        .into_iter()
        .next()
        .expect("a schedulable KWOK node")
}

/// Zincati's boot order on the real API server: its steady-state arrives while the Node still
/// shows the old bootID and, after a reboot shorter than the grace period, Ready=True from
/// before. The slot stays until the kubelet has reported the new boot; only then does the
/// next node get it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_state_before_the_kubelet_reports_keeps_the_slot_on_a_real_cluster() {
    let test = "a_steady_state_before_the_kubelet_reports_keeps_the_slot_on_a_real_cluster";
    let Some(kube) = kwok_cluster(test).await else {
        return;
    };
    let scratch = Scratch::new(&kube.client(), "rm-e2e-boot").await;
    scratch.deployment("web", 2).await;
    scratch.budget("web", 1).await;
    let web = WorkloadRef::new(WorkloadKind::Deployment, &scratch.name, "web");
    wait_available(&kube, &web).await;
    let server = Replica::start("rm-boot", &scratch.name).await;
    let first = pick_node(&kube, &scratch.name, "web", &[]).await;
    let second = pick_node(&kube, &scratch.name, "web", &[&first]).await;
    let one = NodeAgent::new(&kube.client(), &first, &server.url, "default").await;
    let two = NodeAgent::new(&kube.client(), &second, &server.url, "default").await;

    // Zincati's steady-state at boot, before any update: nothing held.
    assert!(one.steady_state().await.allowed());
    one.until_approved(AGENT_DEADLINE).await;
    assert!(one.view().await.cordoned, "cordoned while approved");
    assert!(
        !nodes_of(&kube, &scratch.name, "web").await.contains(&first),
        "{first} approved with web's pods on it"
    );
    // The replacement, placed by the scheduler elsewhere, makes web whole again.
    wait_available(&kube, &web).await;

    let old = one.shut_down(Reboot::Short, grace_period()).await;
    let steady = one.zincati_starts(&old).await;
    assert!(steady.allowed(), "{steady:?}");
    let stale = one.view().await;
    assert_eq!(
        stale.ready, "True",
        "a short reboot still shows Ready from before"
    );
    assert_eq!(
        slot_holders(&kube.client(), &scratch.name).await,
        [first.as_str()]
    );
    refused_as(
        &two.pre_reboot().await,
        "lock_held",
        "the next node while the first one's kubelet has not reported",
    );

    // The kubelet reports the new boot: healed, the slot goes to the next node.
    one.kubelet_starts().await;
    until_no_holder(&kube, &scratch.name, "the slot's release").await;
    assert!(!one.view().await.cordoned, "uncordoned after healing");
    two.until_approved(AGENT_DEADLINE).await;
    let steady = two.reboot(Reboot::Short, grace_period()).await;
    assert!(steady.allowed(), "{steady:?}");
    until_no_holder(&kube, &scratch.name, "the second slot's release").await;
    assert!(!two.view().await.cordoned);
    wait_available(&kube, &web).await;
}

/// Two `restart-manager` processes on the real cluster, one slot. The replica a drain is
/// going through is SIGKILLed while a real PodDisruptionBudget holds the drain; the other
/// resumes it from the group Lease once the budget allows, the agent's reboot is approved
/// exactly once, and no other node is let go while the first is down (a long reboot: NotReady
/// and tainted by the node lifecycle controller) or back but not yet reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_drain_leaves_the_other_to_approve_once_on_a_real_cluster() {
    let test = "a_replica_killed_mid_drain_leaves_the_other_to_approve_once_on_a_real_cluster";
    let Some(kube) = kwok_cluster(test).await else {
        return;
    };
    let scratch = Scratch::new(&kube.client(), "rm-e2e-kill").await;
    // A budget that keeps both pods: the drain waits until the Deployment is scaled up.
    scratch.deployment("db", 2).await;
    scratch.budget("db", 2).await;
    let db = WorkloadRef::new(WorkloadKind::Deployment, &scratch.name, "db");
    wait_available(&kube, &db).await;
    let (a, b) = (
        Replica::start("rm-kill-a", &scratch.name).await,
        Replica::start("rm-kill-b", &scratch.name).await,
    );
    let first = pick_node(&kube, &scratch.name, "db", &[]).await;
    let second = pick_node(&kube, &scratch.name, "db", &[&first]).await;
    let one = NodeAgent::new(&kube.client(), &first, &a.url, "default").await;
    let two = NodeAgent::new(&kube.client(), &second, &b.url, "default").await;
    let approved_before = (
        approvals(&kube.client(), &first).await,
        approvals(&kube.client(), &second).await,
    );

    // The first node's drain starts through replica a and is held by the budget; the second
    // node, asking through b, finds the one slot taken.
    refused_as(
        &one.pre_reboot().await,
        "draining",
        "a drain the budget holds",
    );
    refused_as(&two.pre_reboot().await, "lock_held", "the second node");
    assert_eq!(
        slot_holders(&kube.client(), &scratch.name).await,
        [first.as_str()]
    );
    assert!(one.view().await.cordoned);

    a.sigkill().await;
    // The budget makes room: a third pod, placed by the scheduler on another node.
    let deployments: Api<Deployment> = Api::namespaced(kube.client(), &scratch.name);
    deployments
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    // Replica b (leading now, or once a's leader Lease expires) resumes the drain and
    // approves.
    let one = one.via(&b.url);
    one.until_approved(AGENT_DEADLINE).await;
    assert!(
        !nodes_of(&kube, &scratch.name, "db").await.contains(&first),
        "{first} approved with db's pods on it"
    );
    wait_available(&kube, &db).await;
    refused_as(
        &two.pre_reboot().await,
        "lock_held",
        "while the first is approved",
    );

    // A long reboot: the node lifecycle controller marks it NotReady and taints it.
    let old = one.shut_down(Reboot::Long, grace_period()).await;
    refused_as(
        &two.pre_reboot().await,
        "lock_held",
        "while the first is NotReady",
    );
    assert!(one.zincati_starts(&old).await.allowed());
    refused_as(
        &two.pre_reboot().await,
        "lock_held",
        "while the first is back but its kubelet has not reported",
    );
    one.kubelet_starts().await;
    until_no_holder(&kube, &scratch.name, "the first slot's release").await;

    // The second node's turn, through the same surviving replica.
    two.until_approved(AGENT_DEADLINE).await;
    assert!(two.reboot(Reboot::Short, grace_period()).await.allowed());
    until_no_holder(&kube, &scratch.name, "the second slot's release").await;
    assert_eq!(
        (
            approvals(&kube.client(), &first).await,
            approvals(&kube.client(), &second).await
        ),
        (approved_before.0 + 1, approved_before.1 + 1),
        "each reboot approved exactly once"
    );
    assert!(!one.view().await.cordoned && !two.view().await.cordoned);
    wait_available(&kube, &db).await;
}
