//! Node reboots played by agents, on a real cluster with KWOK's fake nodes.

use super::*;

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
    nodes_running(&kube.client(), namespace, app).await
}

/// A schedulable KWOK node, other than `not`, preferring one where `app` runs.
async fn pick_node(kube: &KubeCluster, namespace: &str, app: &str, not: &[&str]) -> String {
    let running = nodes_of(kube, namespace, app).await;
    let mut candidates: Vec<String> = schedulable_nodes(&kube.client())
        .await
        .into_iter()
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
