//! The real `restart-manager` binary with `--kubeconfig`, against the simulated cluster's
//! Kubernetes API endpoint over HTTPS: start-up (permission check, caches, leader
//! election), a FleetLock cycle in Zincati's exact bytes, and a restart rolled out to
//! completion, all through the same adapter code a real cluster gets.

#[path = "../common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use cluster_api::{LabelSelector, Node, WorkloadKind, WorkloadRef};
use cluster_sim::access::{AccessRule, UserSpec};
use cluster_sim::apiserver::{ApiServer, KubeconfigDir, Running};
use cluster_sim::{Budget, IntOrPercent, SimCluster, WorkloadSpec, machine_id_for};
use common::process::{DEADLINE, start_as, start_with, zincati_request};
use common::{free_port, send};

use tokio::process::{Child, Command};

/// `sim` served over the API, its kubeconfig, and a configuration file with `config` beside
/// it (both removed when the guard is dropped).
async fn serve_with_config(
    sim: &SimCluster,
    config: &str,
) -> (Running, KubeconfigDir, std::path::PathBuf) {
    let endpoint = ApiServer::new(sim.clone())
        .serve_on_localhost()
        .await
        .unwrap();
    let kubeconfig = endpoint.temp_kubeconfig().unwrap();
    let path = kubeconfig.dir().join("config.yaml");
    std::fs::write(&path, config).unwrap();
    (endpoint, kubeconfig, path)
}

/// Polls until `done` says yes, or fails after the deadline.
async fn until<T>(what: &str, check: impl AsyncFnMut() -> Option<T>) -> T {
    common::until_within(what, DEADLINE, check).await
}

fn leader(sim: &SimCluster) -> Option<String> {
    sim.lease("restart-manager", "restart-manager-leader")
        .and_then(|l| l.holder_identity)
        .filter(|h| !h.is_empty())
}

fn slot_holders(sim: &SimCluster) -> usize {
    sim.lease("restart-manager", "fleetlock-default")
        .and_then(|l| l.annotations.get("restart-manager.io/holders").cloned())
        .map(|h| {
            serde_json::from_str::<Vec<serde_json::Value>>(&h)
                .unwrap()
                .len()
        })
        .unwrap_or(0)
}

fn terminate(child: &Child) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

const WEB_ONLY: &str = "services:\n  - kind: Deployment\n    name: web\n    namespace: shop\n";

/// n1 with shop/web on it; alice (restart and get on web, list on nodes) and bob (nothing),
/// both with tokens made for restart-manager.
fn rbac_cluster() -> SimCluster {
    let sim = SimCluster::new();
    sim.add_node(Node::new("n1").machine_id(machine_id_for("n1")));
    sim.add_workload(
        WorkloadSpec::deployment("shop", "web")
            .replicas(2)
            .grace_period(1)
            .pod_start_secs(1),
    )
    .unwrap();
    for (name, token) in [("alice", "alice-token"), ("bob", "bob-token")] {
        sim.add_user(UserSpec::new(name, token).audiences(&["restart-manager"]));
    }
    sim.add_access_rule(AccessRule {
        subjects: vec!["alice".into()],
        api_groups: vec!["apps".into()],
        resources: vec!["deployments".into()],
        verbs: vec!["restart".into(), "get".into()],
        namespaces: vec!["shop".into()],
        resource_names: vec!["web".into()],
    });
    sim.add_access_rule(AccessRule {
        subjects: vec!["alice".into()],
        api_groups: vec![String::new()],
        resources: vec!["nodes".into()],
        verbs: vec!["list".into()],
        namespaces: vec![],
        resource_names: vec![],
    });
    sim
}

/// The binary with `--auth kubernetes`, serving and ready.
async fn start_kubernetes_auth(
    kubeconfig: &KubeconfigDir,
    config: &std::path::Path,
    extra: &[&str],
) -> (Child, SocketAddr) {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut args = vec!["--auth", "kubernetes"];
    args.extend_from_slice(extra);
    let child = start_with("rm-rbac", kubeconfig.path(), config, port, &args).await;
    let get = b"GET /readyz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n";
    until("readiness", async || {
        (send(addr, get).await.0 == 200).then_some(())
    })
    .await;
    (child, addr)
}

fn restart_request(token: &str) -> Vec<u8> {
    format!(
        "POST /api/v1/service/Deployment/shop/web/restart HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {token}\r\ncontent-length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn get_request(path: &str, token: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// The RBAC rules of every Role and ClusterRole in a YAML file, granted to `user`.
fn rbac_rules(text: &str, user: &str) -> Vec<AccessRule> {
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_str_multiple::<serde_json::Value, Vec<_>>(text).unwrap();
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut rules = Vec::new();
    for doc in docs
        .iter()
        .filter(|d| d["kind"] == "Role" || d["kind"] == "ClusterRole")
    {
        let namespaces: Vec<String> = doc["metadata"]["namespace"]
            .as_str()
            .map(|ns| vec![ns.to_string()])
            .unwrap_or_default();
        for rule in doc["rules"].as_array().unwrap() {
            rules.push(AccessRule {
                subjects: vec![user.to_string()],
                api_groups: strings(&rule["apiGroups"]),
                resources: strings(&rule["resources"]),
                verbs: strings(&rule["verbs"]),
                namespaces: namespaces.clone(),
                resource_names: strings(&rule["resourceNames"]),
            });
        }
    }
    rules
}

mod access;
mod cycles;
