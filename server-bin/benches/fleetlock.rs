//! FleetLock throughput, latency and cost, measured side by side with a bare axum handler that
//! only parses the same body, over real HTTP on loopback.
//!
//! ```sh
//! cargo bench -p server-bin --bench fleetlock -- [--nodes 100000] [--seconds 5] [--connections 16] [--rows 2,6]
//! ```
//!
//! The server runs as in production, through `k8s-adapter` over HTTPS, against the simulated
//! cluster's Kubernetes API endpoint (`cluster_sim::apiserver`) in the same process, and is
//! served by its own listener with FleetLock's own router (as on the default FleetLock port);
//! one row serves the busy-group refusal through the whole router instead, as
//! `--fleetlock-listen same` does. The bare handler is served by the same listener, so that
//! the two differ only in the handler; one more row serves it with `axum::serve`, which shows
//! what the listener's limits cost. Prints a
//! Markdown report: requests per second, latency percentiles and requests to the API endpoint
//! per FleetLock request for each kind of request Zincati sends with nothing to change; and
//! the lag between a node's last evicted pod disappearing and its reboot being approved.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use bytes::Bytes;
use cluster_api::{ClusterApi, Node, SystemClock, WatchEvent};
use cluster_sim::{SimCluster, SimConfig, WorkloadSpec, machine_id_for};
use fleetlock_core::group::lease_selector;
use fleetlock_core::{FleetLockConfig, zincati_id};
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::Request;
mod support;

use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

struct Options {
    nodes: usize,
    seconds: u64,
    connections: usize,
    /// Only these rows, by position from 0 (for profiling one kind of request).
    rows: Option<Vec<usize>>,
}

fn options() -> Options {
    let mut o = Options {
        nodes: 100_000,
        seconds: 5,
        connections: 16,
        rows: None,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let value = args.get(i + 1).and_then(|v| v.parse().ok());
        match (args[i].as_str(), value) {
            ("--nodes", Some(v)) => o.nodes = v,
            ("--seconds", Some(v)) => o.seconds = v as u64,
            ("--connections", Some(v)) => o.connections = v,
            ("--rows", _) => {
                o.rows = args.get(i + 1).map(|v| {
                    v.split(',')
                        .map(|r| r.parse().expect("--rows: positions such as 2,6"))
                        .collect()
                });
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

fn body(id: &str) -> Bytes {
    Bytes::from(format!(
        "{{\n  \"client_params\": {{\n    \"id\": \"{id}\",\n    \"group\": \"default\"\n  }}\n}}"
    ))
}

/// The server's settings, without per-client rate limits: every load client here shares
/// one address.
fn settings() -> restart_manager::Settings {
    let mut settings = restart_manager::Settings::new(
        FleetLockConfig::default(),
        restart_core::Allowlist::default(),
    );
    let unlimited = restart_manager::ratelimit::Rate {
        per_second: 0,
        burst: 0,
    };
    settings.api_rate = unlimited;
    settings.fleetlock_rate = unlimited;
    settings
}

/// The whole server against `sim` behind its API endpoint, as production runs it against a
/// cluster; the endpoint is returned to count the requests it serves.
async fn server_on_endpoint(sim: &SimCluster) -> (restart_manager::App, support::Endpoint) {
    let endpoint = support::serve(sim).await;
    let kube = support::connect(endpoint.kubeconfig.path()).await;
    let app =
        restart_manager::build(Arc::new(kube), Arc::new(SystemClock), settings()).expect("build");
    tokio::spawn({
        let f = app.fleetlock.clone();
        async move { f.run().await }
    });
    app.fleetlock.wait_ready().await;
    (app, endpoint)
}

struct Run {
    requests: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
    statuses: std::collections::BTreeMap<u16, usize>,
}

/// A row: its name, the server, the path, the bodies sent in turn, and the bare row it is
/// compared with.
type Scenario = (
    &'static str,
    SocketAddr,
    &'static str,
    Arc<Vec<Bytes>>,
    Option<usize>,
);

/// `connections` keep-alive HTTP/1.1 connections, each sending requests back to back.
async fn load(
    addr: SocketAddr,
    path: &'static str,
    bodies: Arc<Vec<Bytes>>,
    length: Duration,
    connections: usize,
) -> Run {
    let until = Instant::now() + length;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let bodies = bodies.clone();
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).ok();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            let mut latencies = Vec::new();
            let mut statuses = std::collections::BTreeMap::new();
            let mut i = c;
            while Instant::now() < until {
                let request = Request::post(path)
                    .header("host", "bench")
                    .header("fleet-lock-protocol", "true")
                    .body(Full::new(bodies[i % bodies.len()].clone()))
                    .expect("request");
                i += connections;
                let t = Instant::now();
                let response = sender.send_request(request).await.expect("response");
                let status = response.status().as_u16();
                response.into_body().collect().await.expect("body");
                latencies.push(t.elapsed().as_micros() as u64);
                *statuses.entry(status).or_insert(0) += 1;
            }
            (latencies, statuses)
        }));
    }
    let mut run = Run {
        requests: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
        statuses: Default::default(),
    };
    for t in tasks {
        let (latencies, statuses) = t.await.expect("load task");
        run.requests += latencies.len();
        run.latencies_us.extend(latencies);
        for (k, v) in statuses {
            *run.statuses.entry(k).or_insert(0) += v;
        }
    }
    run.elapsed = started.elapsed();
    run.latencies_us.sort_unstable();
    run
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

/// Serves `router` as production does: through the server's own listener (a deadline for
/// each request's headers, a cap on connections, the peer's address on every request),
/// without TLS.
async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        restart_manager::listener::serve(listener, router, Default::default(), None, stopped)
            .await
            .expect("serve");
        drop(stop);
    });
    addr
}

/// Serves `router` with `axum::serve`, which has none of the listener's limits: what the
/// listener itself costs.
async fn serve_plain(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    addr
}

/// The same body parse and nothing else.
fn bare_router() -> Router {
    #[derive(serde::Deserialize)]
    struct Params {
        #[allow(dead_code)]
        id: String,
        #[allow(dead_code)]
        group: String,
    }
    #[derive(serde::Deserialize)]
    struct Body {
        #[allow(dead_code)]
        client_params: Params,
    }
    Router::new()
        .route(
            "/v1/pre-reboot",
            post(|body: Bytes| async move {
                match serde_json::from_slice::<Body>(&body) {
                    Ok(_) => StatusCode::OK,
                    Err(_) => StatusCode::BAD_REQUEST,
                }
            }),
        )
        // The same, answering as a refusal does: 423 with a JSON body of the same length.
        .route(
            "/v1/refuse",
            post(|body: Bytes| async move {
                match serde_json::from_slice::<Body>(&body) {
                    Ok(_) => (
                        StatusCode::LOCKED,
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        r#"{"kind":"lock_held","value":"all 1 reboot slots of group default are taken; ask again later"}"#,
                    )
                        .into_response(),
                    Err(_) => StatusCode::BAD_REQUEST.into_response(),
                }
            }),
        )
}

/// Real-time lag between a node's last evicted pod disappearing and its approval being
/// stored, over several drains.
async fn approval_lag() -> Vec<Duration> {
    let sim = SimCluster::with_config(SimConfig {
        start_time: jiff::Timestamp::now(),
        ..SimConfig::default()
    });
    for i in 1..=12 {
        let name = format!("n{i}");
        sim.add_node(Node::new(&name).machine_id(machine_id_for(&name)));
    }
    sim.add_workload(
        WorkloadSpec::deployment("shop", "web")
            .replicas(24)
            .grace_period(1)
            .pod_start_secs(0),
    )
    .expect("workload");
    let (app, _endpoint) = server_on_endpoint(&sim).await;
    let mut lags = Vec::new();
    for i in 1..=8 {
        let node = format!("n{i}");
        let params = fleetlock_core::ClientParams {
            id: zincati_id(&machine_id_for(&node)).expect("id"),
            group: "default".into(),
        };
        let mut pods = sim
            .watch_pods(&cluster_api::PodFilter::on_node(&node))
            .await
            .expect("watch");
        let mut leases = sim
            .watch_leases("restart-manager", &lease_selector())
            .await
            .expect("watch");
        let watcher = tokio::spawn(async move {
            let mut last_gone = None;
            let mut remaining = 0;
            let mut approved = None;
            loop {
                tokio::select! {
                    Some(Ok(e)) = pods.next() => match e {
                        WatchEvent::Listed(_) => remaining += 1,
                        WatchEvent::Restarted(rest) => remaining += rest.len(),
                        WatchEvent::Deleted(_) => { remaining -= 1; if remaining == 0 { last_gone = Some(Instant::now()); } }
                        WatchEvent::Applied(_) => {}
                    },
                    Some(Ok(WatchEvent::Applied(l))) = leases.next() => {
                        if l.annotations.get("restart-manager.io/holders").is_some_and(|h| h.contains("\"approved\"")) {
                            approved = Some(Instant::now());
                        }
                    }
                }
                if let (Some(g), Some(a)) = (last_gone, approved) {
                    return a.saturating_duration_since(g);
                }
            }
        });
        app.fleetlock.pre_reboot(&params).await.expect("approved");
        lags.push(
            tokio::time::timeout(Duration::from_secs(5), watcher)
                .await
                .expect("lag measured")
                .expect("task"),
        );
        app.fleetlock.steady_state(&params).await.expect("released");
    }
    lags
}

fn main() {
    let o = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let sim = SimCluster::with_config(SimConfig { start_time: jiff::Timestamp::now(), ..SimConfig::default() });
        sim.add_fleet(o.nodes);
        let ids: Vec<String> = (1..=o.nodes)
            .map(|i| zincati_id(&machine_id_for(&format!("n{i}"))).expect("id"))
            .collect();
        let synced = Instant::now();
        let (app, endpoint) = server_on_endpoint(&sim).await;
        let synced = synced.elapsed();
        let holder = fleetlock_core::ClientParams { id: ids[0].clone(), group: "default".into() };
        app.fleetlock.pre_reboot(&holder).await.expect("holder approved");

        // FleetLock's own listener (the default, `--fleetlock-listen :8081`) serves its own
        // router; with `--fleetlock-listen same` the API's listener serves everything.
        let ours = serve(app.fleetlock_router.clone()).await;
        let shared = serve(app.router.clone()).await;
        let bare = serve(bare_router()).await;
        let plain = serve_plain(bare_router()).await;
        let holder_body = Arc::new(vec![body(&ids[0])]);
        let others = Arc::new(ids[1..].iter().map(|id| body(id)).collect::<Vec<_>>());

        // Warm up both servers.
        load(bare, "/v1/pre-reboot", holder_body.clone(), Duration::from_secs(1), o.connections).await;
        load(ours, "/v1/pre-reboot", holder_body.clone(), Duration::from_secs(1), o.connections).await;
        load(shared, "/v1/pre-reboot", holder_body.clone(), Duration::from_secs(1), o.connections).await;

        // Each of ours is compared with the bare handler fed the very same bodies (one
        // holder's, or 100,000 nodes' in turn) and answering alike (200 with no body, or a
        // refusal's 423 with its JSON): the row named in the last field.
        let scenarios: Vec<Scenario> = vec![
            ("bare axum handler, parse only (one body)", bare, "/v1/pre-reboot", holder_body.clone(), None),
            ("bare axum handler, parse only (100,000 bodies)", bare, "/v1/pre-reboot", others.clone(), None),
            ("bare axum handler, parse, answer a 423 JSON body (100,000 bodies)", bare, "/v1/refuse", others.clone(), None),
            ("the same bare handler on axum::serve (100,000 bodies)", plain, "/v1/pre-reboot", others.clone(), None),
            ("pre-reboot from the holder (200)", ours, "/v1/pre-reboot", holder_body.clone(), Some(0)),
            ("steady-state holding nothing (200)", ours, "/v1/steady-state", others.clone(), Some(1)),
            ("pre-reboot, group busy (423 lock_held)", ours, "/v1/pre-reboot", others.clone(), Some(2)),
            ("the same on the API's listener (--fleetlock-listen same)", shared, "/v1/pre-reboot", others.clone(), Some(2)),
        ];
        println!("## FleetLock requests with nothing to change\n");
        println!("{} nodes (caches synced through the endpoint in {:.1} s), {} connections, {} s per row in quarter-second turns (each round starting one row later), 2 worker threads; client, server and API endpoint share the machine.\n", o.nodes, synced.as_secs_f64(), o.connections, o.seconds);
        println!("| request | req/s | CPU µs/req | p50 ms | p90 ms | p99 ms | max ms | API requests/req | statuses |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
        // The rows take turns of a quarter second, so that the machine's drift over the run
        // (other load, clock speed) falls on every row alike rather than on the later ones.
        let mut runs: Vec<(Run, u64, f64)> = scenarios
            .iter()
            .map(|_| (Run { requests: 0, elapsed: Duration::ZERO, latencies_us: Vec::new(), statuses: Default::default() }, 0, 0.0))
            .collect();
        // Each round also starts at the next row, so that no row always follows the same one.
        let rows = scenarios.len();

        for round in 0..o.seconds.max(1) as usize * 4 {
            for i in (0..rows).map(|k| (round + k) % rows) {
                if o.rows.as_ref().is_some_and(|only| !only.contains(&i)) {
                    continue;
                }
                let ((_, addr, path, bodies, _), (total, calls, cpu)) = (&scenarios[i], &mut runs[i]);
                let api_before = endpoint.running.requests();
                let cpu_before = support::cpu_seconds("self");
                let run = load(*addr, path, bodies.clone(), Duration::from_millis(250), o.connections).await;
                *cpu += support::cpu_seconds("self") - cpu_before;
                *calls += endpoint.running.requests() - api_before;
                total.requests += run.requests;
                total.elapsed += run.elapsed;
                total.latencies_us.extend(run.latencies_us);
                for (k, v) in run.statuses {
                    *total.statuses.entry(k).or_insert(0) += v;
                }
            }
        }
        let mut rates = Vec::new();
        for ((name, _, _, _, baseline), (mut run, calls, cpu)) in scenarios.into_iter().zip(runs) {
            run.latencies_us.sort_unstable();
            let rps = run.requests as f64 / run.elapsed.as_secs_f64();
            rates.push(rps);
            let cpu_us = 1e6 * cpu / run.requests.max(1) as f64;
            let calls = calls as f64 / run.requests.max(1) as f64;
            let statuses: Vec<String> = run.statuses.iter().map(|(s, n)| format!("{s}×{n}")).collect();
            let relative = match baseline {
                Some(i) => format!(" ({:.0}% of bare)", 100.0 * rps / rates[i]),
                None => String::new(),
            };
            println!(
                "| {name} | {rps:.0}{relative} | {cpu_us:.1} | {:.3} | {:.3} | {:.3} | {:.3} | {calls:.3} | {} |",
                percentile(&run.latencies_us, 0.50),
                percentile(&run.latencies_us, 0.90),
                percentile(&run.latencies_us, 0.99),
                percentile(&run.latencies_us, 1.0),
                statuses.join(" ")
            );
        }

        let lags = approval_lag().await;
        let mut ms: Vec<f64> = lags.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        println!("\n## Approval after the last pod leaves\n");
        println!(
            "{} drains: lag from the node's last evicted pod disappearing to the approval being stored: median {:.2} ms, max {:.2} ms.",
            ms.len(),
            ms[ms.len() / 2],
            ms[ms.len() - 1]
        );

    });
}
