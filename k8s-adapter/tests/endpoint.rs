//! The adapter against the simulated cluster's Kubernetes API endpoint, over HTTPS with the
//! endpoint's own CA, with the FleetLock coordinator on top: the TLS path, list pagination,
//! watches with bookmarks and relists, evictions through budgets, Lease compare-and-swap,
//! Events, throttling, all through real HTTP.

use std::sync::Arc;
use std::time::Duration;

use cluster_api::{ClusterApi, CoreBuilder, Error, LabelSelector, WatchEvent};
use cluster_sim::apiserver::{ApiServer, KubeconfigDir, Running};
use cluster_sim::{Budget, IntOrPercent, Operation, SimCluster, WorkloadSpec, machine_id_for};
use fleetlock_core::{ClientParams, Coordinator, FleetLockConfig, zincati_id};
use futures::StreamExt;
use k8s_adapter::{KubeCluster, KubeOptions};

/// How long any one wait may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(60);

struct Setup {
    sim: SimCluster,
    kube: KubeCluster,
    _endpoint: Running,
    _kubeconfig: KubeconfigDir,
}

async fn setup(nodes: usize) -> Setup {
    let sim = SimCluster::new();
    sim.add_fleet(nodes);
    let endpoint = ApiServer::new(sim.clone())
        .serve_on_localhost()
        .await
        .unwrap();
    let kubeconfig = endpoint.temp_kubeconfig().unwrap();
    let options = KubeOptions {
        timeout: Duration::from_secs(10),
        ..KubeOptions::default()
    };
    let kube = KubeCluster::connect(Some(kubeconfig.path()), None, options)
        .await
        .unwrap();
    Setup {
        sim,
        kube,
        _endpoint: endpoint,
        _kubeconfig: kubeconfig,
    }
}

fn zincati(node: &str) -> ClientParams {
    ClientParams {
        id: zincati_id(&machine_id_for(node)).unwrap(),
        group: "default".into(),
    }
}

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within {DEADLINE:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapter_speaks_to_the_endpoint_over_tls_with_pages_and_watches() {
    // More Nodes than one list page (the adapter asks for 100 at a time).
    let s = setup(250).await;
    assert!(s.kube.server_version().await.unwrap().starts_with("v1.33"));
    assert!(
        s.kube
            .missing_permissions(&k8s_adapter::required_permissions("restart-manager", []))
            .await
            .unwrap()
            .is_empty()
    );
    let nodes = within("the node list", s.kube.list_nodes()).await.unwrap();
    assert_eq!(nodes.len(), 250);
    let n7 = nodes.iter().find(|n| n.name == "n7").unwrap();
    assert_eq!(n7.machine_id, machine_id_for("n7"));
    assert_eq!(n7.boot_id, s.sim.node("n7").unwrap().boot_id);

    // A change made in the simulation reaches the adapter's watch.
    // The list comes Node by Node (never held whole in the adapter), then ends.
    let mut watch = s.kube.watch_nodes().await.unwrap();
    for _ in 0..250 {
        assert!(matches!(
            watch.next().await,
            Some(Ok(WatchEvent::Listed(_)))
        ));
    }
    assert!(matches!(
        watch.next().await,
        Some(Ok(WatchEvent::Restarted(rest))) if rest.is_empty()
    ));
    // The kubelet stops reporting Ready (a reboot shows this only after the node
    // controller's grace period).
    s.sim.set_node_ready("n7", false).unwrap();
    let seen = within("the change in the watch", async {
        loop {
            if let Some(Ok(WatchEvent::Applied(n))) = watch.next().await
                && n.name == "n7"
                && !n.ready
            {
                return n;
            }
        }
    })
    .await;
    assert!(!seen.ready);

    // A watch whose version has left the window (410 Gone) lists again by itself: the
    // consumer sees a new list, never an error, and what changed meanwhile is in it.
    s.sim.edit_node("n9", |n| n.unschedulable = true).unwrap();
    s.sim.break_watches();
    let mut listed = Vec::new();
    within("the relist", async {
        loop {
            match watch.next().await {
                Some(Ok(WatchEvent::Listed(n))) => listed.push(n),
                Some(Ok(WatchEvent::Restarted(rest))) => {
                    listed.extend(rest);
                    break;
                }
                Some(Ok(WatchEvent::Applied(_) | WatchEvent::Deleted(_))) => {}
                Some(Err(e)) => panic!("an error reached the consumer: {e}"),
                None => panic!("the stream ended"),
            }
        }
    })
    .await;
    assert_eq!(listed.len(), 250);
    assert!(listed.iter().any(|n| n.name == "n9" && n.unschedulable));

    // Leases: compare-and-swap through PUT.
    let lease =
        cluster_api::Lease::new("restart-manager", "lock").label("restart-manager.io/lock", "test");
    let created = s.kube.create_lease(&lease).await.unwrap();
    let mut mine = created.clone();
    mine.holder_identity = Some("a".into());
    s.kube.replace_lease(&mine).await.unwrap();
    let mut stale = created.clone();
    stale.holder_identity = Some("b".into());
    let err = s.kube.replace_lease(&stale).await.unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    let listed = s
        .kube
        .list_leases(
            "restart-manager",
            &LabelSelector::eq("restart-manager.io/lock", "test"),
        )
        .await
        .unwrap();
    assert_eq!(listed[0].holder_identity.as_deref(), Some("a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleetlock_cycle_through_the_adapter_and_the_endpoint() {
    let s = setup(3).await;
    s.sim
        .add_workload(
            WorkloadSpec::deployment("shop", "web")
                .replicas(3)
                .grace_period(1)
                .pod_start_secs(1),
        )
        .unwrap();
    s.sim.add_budget(Budget::min_available(
        "shop",
        "web",
        LabelSelector::eq("app", "web"),
        IntOrPercent::Int(2),
    ));
    // The first eviction is throttled the way priority and fairness does it: a plain-text
    // 429 with Retry-After. The drain must wait it out and go on.
    s.sim.fail_next(
        Operation::EvictPod,
        1,
        Error::TooManyRequests {
            message: "Too many requests, please try again later.".into(),
            retry_after: Some(Duration::from_secs(1)),
        },
    );
    let mut config = FleetLockConfig::default();
    config.drain.request_wait = Duration::from_secs(30);
    config.drain.retry_initial = Duration::from_millis(200);
    config.drain.retry_max = Duration::from_secs(1);
    let api: Arc<dyn ClusterApi> = Arc::new(s.kube.clone());
    let c = Coordinator::builder(api, config)
        .instance("endpoint-test")
        .build();
    let run = tokio::spawn({
        let c = c.clone();
        async move { c.run().await }
    });
    within("the caches", c.wait_ready()).await;

    within("the drain", c.pre_reboot(&zincati("n1")))
        .await
        .unwrap();
    let n1 = s.sim.node("n1").unwrap();
    assert!(n1.unschedulable, "cordoned through the endpoint");
    assert!(s.sim.pods_on("n1").is_empty(), "drained through evictions");
    let evictions = s.sim.evictions();
    assert!(
        evictions.iter().any(|e| e.node.as_deref() == Some("n1")),
        "{evictions:?}"
    );
    // The throttled attempt is in the call count but not among the answered evictions.
    assert!(s.sim.calls().get(Operation::EvictPod) > evictions.len() as u64);

    within("the release", c.steady_state(&zincati("n1")))
        .await
        .unwrap();
    assert!(!s.sim.node("n1").unwrap().unschedulable);
    let events: Vec<_> = s
        .sim
        .events()
        .into_iter()
        .filter(|e| e.regarding.name == "n1")
        .collect();
    assert!(events.iter().any(|e| e.reason == "RebootApproved"));
    assert!(
        events
            .iter()
            .all(|e| e.regarding.uid.as_deref() == Some(n1.uid.as_str())),
        "{events:?}"
    );
    run.abort();
}

/// Disruption budgets read through the endpoint are the budgets the simulation applies:
/// the same selector (set-based requirements included) and the same status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disruption_budgets_read_through_the_endpoint_match_the_simulation() {
    let s = setup(3).await;
    s.sim
        .add_workload(WorkloadSpec::deployment("shop", "web").replicas(3))
        .unwrap();
    s.sim.add_budget(Budget::min_available(
        "shop",
        "web",
        "app=web,tier in (front,edge),!canary".parse().unwrap(),
        IntOrPercent::Int(2),
    ));
    s.sim.add_budget(Budget::max_unavailable(
        "shop",
        "all",
        LabelSelector::default(),
        IntOrPercent::Int(0),
    ));
    let direct = s.sim.list_disruption_budgets().await.unwrap();
    let through = within("the budget list", s.kube.list_disruption_budgets())
        .await
        .unwrap();
    assert_eq!(through, direct);
    let web = through.iter().find(|b| b.name == "web").unwrap();
    assert_eq!(web.selector.as_ref().unwrap().match_expressions.len(), 2);
    assert_eq!((web.expected_pods, web.desired_healthy), (0, 2));
}

/// The ConfigMaps and Secrets a workload's pods use, as the simulation keeps them, are what
/// the adapter reads from the endpoint's rendering of its pod template.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_references_read_through_the_endpoint_match_the_simulation() {
    let s = setup(1).await;
    for spec in [
        WorkloadSpec::deployment("shop", "web")
            .uses_config_map("web-config")
            .uses_secret("api-keys")
            .uses_config_map("flags"),
        WorkloadSpec::statefulset("shop", "db").uses_secret("db"),
        WorkloadSpec::daemonset("ops", "agent"),
    ] {
        let r = spec.reference();
        s.sim.add_workload(spec).unwrap();
        let direct = s.sim.workload(&r).unwrap().config_refs;
        let through = within("the workload read", s.kube.get_workload(&r))
            .await
            .unwrap()
            .config_refs;
        assert_eq!(through, direct, "{r}");
    }
    let web = s
        .sim
        .workload(&WorkloadSpec::deployment("shop", "web").reference())
        .unwrap();
    let names: Vec<String> = web.config_refs.iter().map(ToString::to_string).collect();
    assert_eq!(
        names,
        ["ConfigMap flags", "ConfigMap web-config", "Secret api-keys"]
    );
}

/// Secrets through the endpoint: one created through the adapter is read back whole (by the
/// adapter and by the simulation), a second create of the name is AlreadyExists, and one the
/// scenario put is served with its data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_created_and_read_whole_through_the_endpoint() {
    let s = setup(1).await;
    let key = cluster_api::Secret::new("restart-manager", "restart-manager-event-key")
        .with("key", (0u8..32).collect::<Vec<u8>>());
    let written = within("a create", s.kube.create_secret(&key))
        .await
        .unwrap();
    assert!(!written.resource_version.is_empty());
    let read = within("a get", s.kube.get_secret("restart-manager", &key.name))
        .await
        .unwrap();
    assert_eq!(read.data, key.data);
    let in_sim = ClusterApi::get_secret(&s.sim, "restart-manager", &key.name)
        .await
        .unwrap();
    assert_eq!(in_sim.data, key.data);
    let again = within("a second create", s.kube.create_secret(&key)).await;
    assert!(
        matches!(again, Err(Error::AlreadyExists { .. })),
        "{again:?}"
    );

    s.sim
        .put_secret("shop", "db-password", &[("password", "hunter2")]);
    let put = within("a get", s.kube.get_secret("shop", "db-password"))
        .await
        .unwrap();
    assert_eq!(put.data["password"], b"hunter2");
    let missing = within("a get", s.kube.get_secret("shop", "nothing")).await;
    assert!(
        matches!(missing, Err(Error::NotFound { .. })),
        "{missing:?}"
    );
}
