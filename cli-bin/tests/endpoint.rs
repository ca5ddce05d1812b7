//! `restartctl` in direct mode, the real binary with a kubeconfig, against the simulated
//! cluster's Kubernetes API endpoint over HTTPS.

use std::path::PathBuf;
use std::time::Duration;

use cluster_api::{WorkloadKind, WorkloadRef};
use cluster_sim::apiserver::{ApiServer, KubeconfigDir, Running};
use cluster_sim::{SimCluster, WorkloadSpec};

const DEADLINE: Duration = Duration::from_secs(90);

async fn restartctl(
    kubeconfig: &std::path::Path,
    config: &std::path::Path,
    args: &[&str],
) -> (i32, String, String) {
    let out = tokio::time::timeout(
        DEADLINE,
        tokio::process::Command::new(env!("CARGO_BIN_EXE_restartctl"))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--config")
            .arg(config)
            .args(["--identity", "alice"])
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("restartctl finished in time")
    .expect("restartctl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The simulation behind its API endpoint, a kubeconfig for it, and restart-manager's
/// configuration file beside it.
struct Served {
    _endpoint: Running,
    kubeconfig: KubeconfigDir,
    config: PathBuf,
}

async fn serve(sim: &SimCluster, config: &str) -> Served {
    let endpoint = ApiServer::new(sim.clone())
        .serve_on_localhost()
        .await
        .unwrap();
    let kubeconfig = endpoint.temp_kubeconfig().unwrap();
    let path = kubeconfig.dir().join("config.yaml");
    std::fs::write(&path, config).unwrap();
    Served {
        _endpoint: endpoint,
        kubeconfig,
        config: path,
    }
}

impl Served {
    async fn restartctl(&self, args: &[&str]) -> (i32, String, String) {
        restartctl(self.kubeconfig.path(), &self.config, args).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restartctl_restarts_and_waits_through_the_endpoint() {
    let sim = SimCluster::new();
    sim.add_fleet(2);
    sim.add_workload(
        WorkloadSpec::deployment("shop", "web")
            .replicas(2)
            .grace_period(1)
            .pod_start_secs(1),
    )
    .unwrap();
    let s = serve(
        &sim,
        "services:\n  - kind: Deployment\n    name: web\n    namespace: shop\n",
    )
    .await;

    let (code, out, err) = s
        .restartctl(&[
            "restart",
            "deployment/shop/web",
            "--reason",
            "e2e",
            "--wait",
            "--timeout",
            "60s",
        ])
        .await;
    assert_eq!(code, 0, "{out}\n{err}");
    let web = sim
        .workload(&WorkloadRef::new(WorkloadKind::Deployment, "shop", "web"))
        .unwrap();
    assert!(
        web.template_annotations
            .contains_key("kubectl.kubernetes.io/restartedAt")
    );
    let (code, out, err) = s.restartctl(&["history", "deployment/shop/web"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Restarted") && out.contains("RolloutComplete"),
        "{out}"
    );
    let (code, out, err) = s.restartctl(&["nodes"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("n1") && out.contains("n2"), "{out}");
}

/// restartctl keeps its locks where the server keeps them: the configuration's own
/// `fleetlock.namespace` when it names one, not the namespace the server runs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restartctl_takes_its_locks_where_the_configuration_says() {
    let sim = SimCluster::new();
    sim.add_fleet(1);
    sim.add_workload(WorkloadSpec::deployment("shop", "web").replicas(1))
        .unwrap();
    let s = serve(
        &sim,
        "services:\n  - kind: Deployment\n    name: web\n    namespace: shop\nfleetlock:\n  namespace: locks\n",
    )
    .await;
    let (code, out, err) = s
        .restartctl(&[
            "--manager-namespace",
            "ops",
            "restart",
            "deployment/shop/web",
            "--reason",
            "namespace",
        ])
        .await;
    assert_eq!(code, 0, "{out}\n{err}");
    let namespaces: Vec<String> = sim.leases().into_iter().map(|l| l.namespace).collect();
    assert!(!namespaces.is_empty(), "the restart took a lock");
    assert!(
        namespaces.iter().all(|ns| ns == "locks"),
        "every lock is in the configured namespace: {namespaces:?}"
    );

    // A configuration that the server would refuse is refused here too, naming the problem.
    std::fs::write(
        &s.config,
        "services:\n  - kind: Deployment\n    name: web\n    namespace: shop\nfleetlock:\n  groups:\n    workers: {slots: 0}\n",
    )
    .unwrap();
    let (code, _, err) = s.restartctl(&["list"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("slots must be at least 1"), "{err}");
}
