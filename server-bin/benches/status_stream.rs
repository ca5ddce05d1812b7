//! How long a rollout's progress takes to reach a status-stream (websocket) client.
//!
//! ```sh
//! cargo bench -p server-bin --bench status_stream -- [--restarts 5]
//! ```
//!
//! The server runs in real time, through `k8s-adapter` over HTTPS, against the simulated
//! cluster's API endpoint, so each change reaches it through a real watch. A watch inside the
//! simulation stamps each workload status change as it happens; a websocket client of the server stamps each update
//! as it arrives; each update is matched with the first change of the same replica counts.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster_api::{
    ClusterApi, Node, SystemClock, WatchEvent, WorkloadFilter, WorkloadKind, WorkloadRef,
};
use cluster_sim::{SimCluster, SimConfig, WorkloadSpec};
use fleetlock_core::FleetLockConfig;
use futures::StreamExt;
use restart_core::{Allowlist, Identity, ServiceEntry};
use tokio_tungstenite::tungstenite::Message;

type Counts = (i32, i32, i32);

fn main() {
    let restarts: usize = std::env::args()
        .collect::<Vec<_>>()
        .windows(2)
        .find(|w| w[0] == "--restarts")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let sim = SimCluster::with_config(SimConfig { start_time: jiff::Timestamp::now(), ..SimConfig::default() });
        for i in 1..=6 {
            sim.add_node(Node::new(format!("n{i}")));
        }
        sim.add_workload(WorkloadSpec::deployment("shop", "web").replicas(6).pod_start_secs(1).grace_period(0)).unwrap();
        let allowlist = Allowlist::new(vec![ServiceEntry::new(WorkloadRef::new(WorkloadKind::Deployment, "shop", "web"))])
        .unwrap();
        let endpoint = support::serve(&sim).await;
        let kube = support::connect(endpoint.kubeconfig.path()).await;
        let app = Arc::new(restart_manager::build(Arc::new(kube), Arc::new(SystemClock), restart_manager::Settings::new(FleetLockConfig::default(), allowlist)).unwrap());
        tokio::spawn({
            let app = app.clone();
            async move { app.run().await }
        });
        app.restarter.wait_ready().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let router = app.router.clone();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

        // The cluster's side: every status change of the workload, stamped.
        let changes: Arc<Mutex<Vec<(Instant, Counts)>>> = Arc::default();
        let mut watch = sim.watch_workloads(&WorkloadFilter::kind(WorkloadKind::Deployment)).await.unwrap();
        tokio::spawn({
            let changes = changes.clone();
            async move {
                while let Some(Ok(event)) = watch.next().await {
                    if let WatchEvent::Applied(w) = event {
                        let s = &w.status;
                        changes.lock().unwrap().push((Instant::now(), (s.updated_replicas, s.ready_replicas, s.available_replicas)));
                    }
                }
            }
        });

        // The client's side.
        let url = format!("ws://{addr}/api/v1/service/status?kind=Deployment&namespace=shop&name=web");
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let _snapshot = ws.next().await;
        let mut updates: Vec<(Instant, Counts)> = Vec::new();
        let web = WorkloadSpec::deployment("shop", "web").reference();
        for _ in 0..restarts {
            app.restarter.restart(&web, &Identity::user("bench"), None).await.unwrap();
            loop {
                let Some(Ok(Message::Text(text))) = ws.next().await else { break };
                let arrived = Instant::now();
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                let s = &v["service"];
                let counts: Counts = (s["updated"].as_i64().unwrap() as i32, s["ready"].as_i64().unwrap() as i32, s["available"].as_i64().unwrap() as i32);
                updates.push((arrived, counts));
                if s["phase"] == "complete" && s["lock"].is_null() {
                    break;
                }
            }
        }
        // Matched after the run, in order: the cluster-side watch shares the two cores with
        // everything else and may stamp a change after the client has already seen it.
        let changes = changes.lock().unwrap().clone();
        let mut lags = match_updates(&updates, &changes);
        lags.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!("## Status stream latency\n");
        println!(
            "{} of {} progress updates matched over {restarts} restarts of a 6-replica Deployment: from the cluster's status change to the websocket client, median {:.2} ms, p99 {:.2} ms, max {:.2} ms.",
            lags.len(),
            updates.len(),
            ms(lags[lags.len() / 2]),
            ms(lags[(lags.len() * 99 / 100).min(lags.len() - 1)]),
            ms(*lags.last().unwrap())
        );
    });
}

/// Each update the client received, matched in order with the cluster change it reports: of
/// the changes with the same counts (at or after the previous match), the one stamped nearest
/// its arrival. A change stamped after the arrival (the cluster-side watch ran late) counts as
/// no lag.
fn match_updates(updates: &[(Instant, Counts)], changes: &[(Instant, Counts)]) -> Vec<Duration> {
    let distance = |a: Instant, b: Instant| a.max(b) - a.min(b);
    let mut from = 0;
    let mut lags = Vec::new();
    for (arrived, counts) in updates {
        let nearest = changes
            .iter()
            .enumerate()
            .skip(from)
            .filter(|(_, (_, c))| c == counts)
            .min_by_key(|(_, (at, _))| distance(*at, *arrived));
        if let Some((i, (at, _))) = nearest {
            lags.push(arrived.saturating_duration_since(*at));
            from = i;
        }
    }
    lags
}
