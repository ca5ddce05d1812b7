//! Memory of the whole server (Kubernetes adapter, FleetLock and restart services, HTTP
//! router) with a large fleet served by the simulated cluster's API endpoint.
//!
//! ```sh
//! cargo bench -p server-bin --bench memory -- [--nodes 100000] [--node-images 50]
//! ```
//!
//! The simulated cluster runs behind its Kubernetes API endpoint (`cluster_sim::apiserver`,
//! HTTPS with its own CA) in a child process, so its memory is not counted. Each Node lists
//! `--node-images` container images in its status as a kubelet does (a real kubelet reports
//! up to 50; they are most of a Node's size). The parent runs the server's services against
//! the endpoint through `k8s-adapter` and its kubeconfig, waits until every cache has
//! synced, and reports its resident memory and the time the sync took.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use cluster_api::SystemClock;
use cluster_sim::{SimCluster, SimConfig, WorkloadSpec};
use fleetlock_core::FleetLockConfig;
use k8s_adapter::KubeCluster;
use restart_core::{Allowlist, ServiceEntry};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The child: a fleet behind the endpoint; prints the kubeconfig's path and one Node's size,
/// then serves until killed.
async fn serve_fleet(nodes: usize, images: usize) {
    let sim = SimCluster::with_config(SimConfig {
        start_time: jiff::Timestamp::now(),
        node_images: images,
        ..SimConfig::default()
    });
    sim.add_fleet(nodes);
    sim.add_workload(WorkloadSpec::deployment("shop", "web").replicas(3))
        .expect("workload");
    let endpoint = support::serve(&sim).await;
    println!("{}", endpoint.kubeconfig.path().display());
    std::io::stdout().flush().expect("stdout");
    // Serves until the parent kills the process.
    std::future::pending::<()>().await;
}

fn main() {
    let nodes = arg("--nodes", 100_000);
    let images = arg("--node-images", 50);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if std::env::args().any(|a| a == "--serve-fleet") {
        runtime.block_on(serve_fleet(nodes, images));
        return;
    }

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--serve-fleet",
            "--nodes",
            &nodes.to_string(),
            "--node-images",
            &images.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut kubeconfig = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut kubeconfig)
        .unwrap();
    let kubeconfig = std::path::PathBuf::from(kubeconfig.trim());

    runtime.block_on(async {
        let before = support::rss_kib("VmRSS:");
        let kube = support::connect(&kubeconfig).await;
        let node_bytes = node_size(&kube).await;
        let allowlist = Allowlist::new(vec![ServiceEntry {
            kind: cluster_api::WorkloadKind::Deployment,
            namespace: "shop".into(),
            name: "web".into(),
            description: None,
            allowed: vec![],
        }])
        .unwrap();
        let settings = restart_manager::Settings::new(FleetLockConfig::default(), allowlist);
        let app = Arc::new(restart_manager::build(Arc::new(kube), Arc::new(SystemClock), settings).unwrap());
        let started = std::time::Instant::now();
        tokio::spawn({
            let app = app.clone();
            async move { app.run().await }
        });
        app.fleetlock.wait_ready().await;
        app.restarter.wait_ready().await;
        let synced = started.elapsed();
        let nodes_seen = app.fleetlock.snapshot().nodes.len();
        let after = support::rss_kib("VmRSS:");
        println!("## Memory with the Kubernetes adapter\n");
        println!(
            "{nodes_seen} Nodes of {:.1} KiB of JSON each ({images} images; {:.0} MiB listed) synced in {:.1} s. Resident set of the server process: {:.1} MiB before connecting, {:.1} MiB with every cache synced (peak {:.1} MiB, reached while decoding the list).",
            node_bytes as f64 / 1024.0,
            (nodes * node_bytes) as f64 / (1024.0 * 1024.0),
            synced.as_secs_f64(),
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            support::rss_kib("VmHWM:") as f64 / 1024.0
        );
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Some(dir) = kubeconfig.parent() {
        // The child, killed, did not clean up after itself.
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The size of one Node as the endpoint serves it, in bytes of JSON.
async fn node_size(kube: &KubeCluster) -> usize {
    let request = axum::http::Request::get("/api/v1/nodes/n1")
        .body(Vec::new())
        .expect("request");
    kube.client()
        .request_text(request)
        .await
        .expect("a node")
        .len()
}
