//! The FleetLock endpoints over a real socket, with the bytes Zincati sends.

#[path = "../common/mod.rs"]
mod common;

mod health;
mod ids;
mod protocol;

use std::sync::Arc;
use std::time::Duration;

use cluster_api::{Error, Node, Pod};
use cluster_sim::{Operation, SimCluster, machine_id_for};
use common::{Server, send};
use fleetlock_core::{FleetLockConfig, zincati_id};
use restart_core::Allowlist;
use restart_manager::Settings;
use tower::ServiceExt;

async fn serve(sim: &SimCluster, config: FleetLockConfig, prefix: &str) -> Server {
    let mut settings = Settings::new(config, Allowlist::default());
    settings.fleetlock_prefix = prefix.into();
    common::serve(sim, settings).await
}

fn fleet() -> SimCluster {
    let sim = SimCluster::new();
    for n in ["n1", "n2"] {
        sim.add_node(Node::new(n).machine_id(machine_id_for(n)));
    }
    sim
}

fn id(node: &str) -> String {
    zincati_id(&machine_id_for(node)).unwrap()
}

/// Zincati's body: serde_json::to_string_pretty of its request.
fn zincati_body(id: &str, group: &str) -> String {
    format!(
        "{{\n  \"client_params\": {{\n    \"id\": \"{id}\",\n    \"group\": \"{group}\"\n  }}\n}}"
    )
}

/// The request as Zincati's HTTP client writes it: no Content-Type.
fn zincati_request(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nfleet-lock-protocol: true\r\naccept: */*\r\nhost: localhost\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

async fn zincati(s: &Server, endpoint: &str, node: &str, group: &str) -> (u16, String) {
    let request = zincati_request(&format!("/v1/{endpoint}"), &zincati_body(&id(node), group));
    let (status, _, body) = s.send(request.as_bytes()).await;
    (status, body)
}

/// `GET /readyz` on `router`, in process: (status, body).
async fn readyz(router: axum::Router) -> (u16, String) {
    let response = router
        .oneshot(
            axum::http::Request::get("/readyz")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).to_string())
}

fn kind(body: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{body:?}: {e}"));
    assert!(
        v["value"].as_str().is_some_and(|s| !s.is_empty()),
        "a refusal explains itself: {body}"
    );
    v["kind"].as_str().unwrap().to_string()
}
