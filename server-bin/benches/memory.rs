//! Memory of the whole server (Kubernetes adapter, FleetLock and restart services, HTTP
//! router) with a large fleet served by an API server.
//!
//! ```sh
//! cargo bench -p server-bin --bench memory -- [--nodes 5000] [--node-kib 31]
//! ```
//!
//! A fake API server runs in a child process (so its own memory is not counted) and lists
//! `--nodes` Nodes shaped like the real one in the fixtures, padded with image entries to
//! `--node-kib` KiB of JSON each (a real Node with its images and managed fields weighs about
//! 31 KiB). The parent runs the server's services against it through `k8s-adapter`, waits
//! until every cache has synced, and reports its resident memory.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Query;
use axum::routing::get;
use cluster_api::SystemClock;
use fleetlock_core::FleetLockConfig;
use k8s_adapter::{KubeCluster, KubeOptions};
use restart_core::{Allowlist, ServiceEntry};
use serde_json::{Value, json};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One Node shaped like the fixture's, padded to about `kib` KiB of JSON.
fn node(template: &Value, i: usize, kib: usize) -> Value {
    let mut n = template.clone();
    let name = format!("node-{i}");
    n["metadata"]["name"] = json!(name);
    n["metadata"]["uid"] = json!(format!("00000000-0000-4000-8000-{i:012}"));
    n["metadata"]["labels"]["kubernetes.io/hostname"] = json!(name);
    n["status"]["nodeInfo"]["machineID"] = json!(cluster_sim::machine_id_for(&name));
    n["status"]["nodeInfo"]["bootID"] = json!(format!("b0000000-0000-4000-8000-{i:012}"));
    let image = n["status"]["images"][0].clone();
    let mut k = 0;
    while serde_json::to_vec(&n).unwrap().len() < kib * 1024 {
        let mut extra = image.clone();
        extra["names"] = json!([
            format!("registry.example/team-{k}/service@sha256:{k:064x}"),
            format!("registry.example/team-{k}/service:v{k}")
        ]);
        n["status"]["images"].as_array_mut().unwrap().push(extra);
        k += 1;
    }
    n
}

async fn fake_api(nodes: usize, kib: usize) {
    let template: Value = serde_json::from_str(include_str!(
        "../../k8s-adapter/tests/fixtures/node-list.json"
    ))
    .unwrap();
    let template = template["items"][0].clone();
    // Serialized once; pages are cut from it as the API server cuts them (limit/continue).
    let items: Arc<Vec<String>> = Arc::new(
        (0..nodes)
            .map(|i| node(&template, i, kib).to_string())
            .collect(),
    );
    let empty = |kind: &'static str, api: &'static str| {
        move |Query(q): Query<std::collections::HashMap<String, String>>| async move {
            if q.get("watch").map(String::as_str) == Some("true") {
                // A watch that stays open and quiet.
                Body::from_stream(futures::stream::pending::<Result<Vec<u8>, std::io::Error>>())
            } else {
                Body::from(json!({"kind": kind, "apiVersion": api, "metadata": {"resourceVersion": "1"}, "items": []}).to_string())
            }
        }
    };
    let app = Router::new()
        .route(
            "/api/v1/nodes",
            get(move |Query(q): Query<std::collections::HashMap<String, String>>| {
                let items = items.clone();
                async move {
                    if q.get("watch").map(String::as_str) == Some("true") {
                        return Body::from_stream(futures::stream::pending::<Result<Vec<u8>, std::io::Error>>());
                    }
                    let start: usize = q.get("continue").and_then(|c| c.parse().ok()).unwrap_or(0);
                    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(items.len());
                    let end = (start + limit).min(items.len());
                    let cont = if end < items.len() { format!(r#","continue":"{end}""#) } else { String::new() };
                    let page = items[start..end].join(",");
                    Body::from(format!(r#"{{"kind":"NodeList","apiVersion":"v1","metadata":{{"resourceVersion":"1"{cont}}},"items":[{page}]}}"#))
                }
            }),
        )
        .route("/apis/coordination.k8s.io/v1/namespaces/restart-manager/leases", get(empty("LeaseList", "coordination.k8s.io/v1")))
        .route("/apis/apps/v1/deployments", get(empty("DeploymentList", "apps/v1")));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap().port());
    std::io::stdout().flush().unwrap();
    axum::serve(listener, app).await.unwrap();
}

fn main() {
    let nodes = arg("--nodes", 5000);
    let kib = arg("--node-kib", 31);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if std::env::args().any(|a| a == "--fake-api") {
        runtime.block_on(fake_api(nodes, kib));
        return;
    }

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--fake-api",
            "--nodes",
            &nodes.to_string(),
            "--node-kib",
            &kib.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let url = format!("http://127.0.0.1:{}", port.trim());

    runtime.block_on(async {
        let before = support::rss_kib("VmRSS:");
        let config = kube::Config::new(url.parse().unwrap());
        let options = KubeOptions {
            node_metadata_prefixes: Some(vec![restart_manager::server::NODE_METADATA_PREFIX.into()]),
            ..KubeOptions::default()
        };
        let kube = KubeCluster::new(kube::Client::try_from(config).unwrap(), options);
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
            "{nodes_seen} Nodes of about {kib} KiB of JSON each ({:.0} MiB listed) synced in {:.1} s. Resident set of the server process: {:.1} MiB before connecting, {:.1} MiB with every cache synced (peak {:.1} MiB, reached while decoding the list).",
            (nodes * kib) as f64 / 1024.0,
            synced.as_secs_f64(),
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            support::rss_kib("VmHWM:") as f64 / 1024.0
        );
    });
    let _ = child.kill();
    let _ = child.wait();
}
