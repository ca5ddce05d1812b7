//! Memory of the whole server (Kubernetes adapter, FleetLock and restart services, HTTP
//! router) with a large fleet served by the simulated cluster's API endpoint.
//!
//! ```sh
//! cargo bench -p server-bin --bench memory -- [--nodes 100000] [--node-images 50] [--watchers 10000]
//! ```
//!
//! The simulated cluster runs behind its Kubernetes API endpoint (`cluster_sim::apiserver`,
//! HTTPS with its own CA) in a child process, so its memory is not counted. Each Node lists
//! `--node-images` container images in its status as a kubelet does (a real kubelet reports
//! up to 50; they are most of a Node's size). The parent runs the server's services against
//! the endpoint through `k8s-adapter` and its kubeconfig, waits until every cache has
//! synced, and reports its resident memory and the time the sync took. With `--watchers N` it
//! then serves its router on a local port, and a second child process opens N status-stream
//! websockets that each take their snapshot and keep reading; the parent reports what the
//! connected watchers cost it.

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

/// The other child: `count` status-stream clients of the server at `addr`; prints a line once
/// every one has its snapshot, then keeps reading until killed.
async fn watch(addr: &str, count: usize) {
    use futures::StreamExt;
    let mut open = Vec::with_capacity(count);
    for _ in 0..count {
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/service/status"))
                .await
                .expect("a status-stream connection");
        ws.next().await.expect("a snapshot").expect("a frame");
        open.push(ws);
    }
    println!("connected");
    std::io::stdout().flush().expect("stdout");
    let readers: Vec<_> = open
        .into_iter()
        .map(|mut ws| tokio::spawn(async move { while ws.next().await.is_some() {} }))
        .collect();
    for r in readers {
        let _ = r.await;
    }
}

fn main() {
    let nodes = arg("--nodes", 100_000);
    let images = arg("--node-images", 50);
    let watchers = arg("--watchers", 0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if std::env::args().any(|a| a == "--serve-fleet") {
        runtime.block_on(serve_fleet(nodes, images));
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--watch") {
        runtime.block_on(watch(&args[i + 1], watchers));
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
        let allowlist = Allowlist::new(vec![ServiceEntry::new(cluster_api::WorkloadRef::new(cluster_api::WorkloadKind::Deployment, "shop", "web"))])
        .unwrap();
        let mut settings = restart_manager::Settings::new(FleetLockConfig::default(), allowlist);
        // Every watcher connects from 127.0.0.1: no per-address rate here.
        settings.api_rate = restart_manager::ratelimit::Rate {
            per_second: 0,
            burst: 0,
        };
        let app = Arc::new(restart_manager::build(Arc::new(kube), Arc::new(SystemClock), settings).unwrap());
        let child_pid = child.id().to_string();
        let cpu_before = (support::cpu_seconds("self"), support::cpu_seconds(&child_pid));
        let started = std::time::Instant::now();
        tokio::spawn({
            let app = app.clone();
            async move { app.run().await }
        });
        app.fleetlock.wait_ready().await;
        app.restarter.wait_ready().await;
        let synced = started.elapsed();
        let cpu = (
            support::cpu_seconds("self") - cpu_before.0,
            support::cpu_seconds(&child_pid) - cpu_before.1,
        );
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
        println!(
            "That is {:.2} KiB per Node. CPU time of the sync: {:.1} s in the server, {:.1} s in the simulated API server (the two share these cores and mostly take turns: the server asks for the next page when it has decoded the last).",
            after.saturating_sub(before) as f64 / nodes_seen.max(1) as f64,
            cpu.0,
            cpu.1
        );
        if watchers > 0 {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (_stop, stopped) = tokio::sync::watch::channel(false);
            let limits = restart_manager::listener::Limits {
                max_connections: watchers + 100,
                // Every watcher comes from this one address.
                max_per_client: 0,
                ..Default::default()
            };
            tokio::spawn(restart_manager::listener::serve(
                listener,
                app.router.clone(),
                limits,
                None,
                stopped,
            ));
            let base = support::rss_kib("VmRSS:");
            let mut clients = Command::new(std::env::current_exe().unwrap())
                .args(["--watch", &addr.to_string(), "--watchers", &watchers.to_string()])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut line = String::new();
            let mut out = BufReader::new(clients.stdout.take().unwrap());
            tokio::task::block_in_place(|| out.read_line(&mut line).unwrap());
            assert_eq!(line.trim(), "connected");
            let with = support::rss_kib("VmRSS:");
            println!(
                "\n{watchers} status-stream watchers connected: resident set {:.1} MiB, {:.1} MiB more, {:.1} KiB per watcher.",
                with as f64 / 1024.0,
                with.saturating_sub(base) as f64 / 1024.0,
                with.saturating_sub(base) as f64 / watchers as f64
            );
            let _ = clients.kill();
            let _ = clients.wait();
        }
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
