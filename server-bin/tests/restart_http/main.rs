//! The restart API and the status stream over real sockets.

#[path = "../common/mod.rs"]
mod common;

use std::time::Duration;

use cluster_api::{Node, WorkloadKind, WorkloadRef};
use cluster_sim::{SimCluster, WorkloadSpec};
use common::{Server, request, serve};
use fleetlock_core::FleetLockConfig;
use futures::{SinkExt, StreamExt};
use restart_core::{Allowlist, ServiceEntry};
use restart_manager::Settings;
use restart_manager::auth::{Auth, Authenticator, parse_tokens};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const ALICE: &str = "alice-token-0123456789";

const BOB: &str = "bob-token-0123456789ab";

fn cluster() -> SimCluster {
    let sim = SimCluster::new();
    for n in ["n1", "n2"] {
        sim.add_node(Node::new(n));
    }
    sim.add_workload(
        WorkloadSpec::deployment("shop", "web")
            .replicas(2)
            .pod_start_secs(1)
            .grace_period(0),
    )
    .unwrap();
    sim.add_workload(WorkloadSpec::deployment("shop", "frozen").paused())
        .unwrap();
    sim.add_workload(WorkloadSpec::deployment("ops", "vault"))
        .unwrap();
    sim
}

fn entry(kind: WorkloadKind, namespace: &str, name: &str, allowed: &[&str]) -> ServiceEntry {
    ServiceEntry {
        description: Some(format!("the {name}")),
        allowed: allowed.iter().map(|s| s.to_string()).collect(),
        ..ServiceEntry::new(WorkloadRef::new(kind, namespace, name))
    }
}

fn settings(auth: Auth) -> Settings {
    let allowlist = Allowlist::new(vec![
        entry(WorkloadKind::Deployment, "shop", "web", &[]),
        entry(WorkloadKind::Deployment, "shop", "frozen", &[]),
        entry(WorkloadKind::Deployment, "ops", "vault", &["group:sre"]),
    ])
    .unwrap();
    let mut s = Settings::new(FleetLockConfig::default(), allowlist);
    s.auth = auth;
    s
}

fn tokens() -> Auth {
    Auth {
        authenticator: Authenticator::Tokens(
            parse_tokens(&format!("{ALICE},alice,1,\"sre\"\n{BOB},bob,2\n")).unwrap(),
        ),
        admins: vec!["group:sre".into()],
        viewers: vec![],
        allowed_origins: vec![],
    }
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{body:?}: {e}"))
}

async fn call(
    s: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let auth = token.map(|t| format!("authorization: Bearer {t}"));
    let headers: Vec<&str> = auth.iter().map(String::as_str).collect();
    let (status, _, body) = s.send(&request(method, path, &headers, body)).await;
    (
        status,
        if body.is_empty() {
            Value::Null
        } else {
            json(&body)
        },
    )
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(
    s: &Server,
    query: &str,
    origin: Option<&str>,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{}/api/v1/service/status{query}", s.addr)
        .into_client_request()
        .unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

async fn next_json(ws: &mut Socket) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a message in time")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = msg {
            return json(&text);
        }
    }
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

mod api;
mod bounds;
mod browser;
mod reads;
mod sets;
mod stream;
