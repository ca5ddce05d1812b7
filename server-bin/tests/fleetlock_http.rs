//! The FleetLock endpoints over a real socket, with the bytes Zincati sends.

mod common;

use std::sync::Arc;
use std::time::Duration;

use cluster_api::{Error, Node, Pod};
use cluster_sim::{Operation, SimCluster, machine_id_for};
use common::{Server, send};
use fleetlock_core::{FleetLockConfig, zincati_id};
use restart_core::Allowlist;
use restart_manager::Settings;

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

fn kind(body: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{body:?}: {e}"));
    assert!(
        v["value"].as_str().is_some_and(|s| !s.is_empty()),
        "a refusal explains itself: {body}"
    );
    v["kind"].as_str().unwrap().to_string()
}

#[tokio::test(start_paused = true)]
async fn a_reboot_cycle_as_zincati_speaks_it() {
    let s = serve(&fleet(), FleetLockConfig::default(), "/").await;
    assert_eq!(
        zincati(&s, "steady-state", "n1", "default").await,
        (200, String::new())
    );
    assert_eq!(zincati(&s, "pre-reboot", "n1", "default").await.0, 200);
    assert!(s.sim.node("n1").unwrap().unschedulable);
    // Asked again while holding (Zincati postpones for logged-in users): still yes.
    assert_eq!(zincati(&s, "pre-reboot", "n1", "default").await.0, 200);
    // The other node waits its turn: 423, not a server error.
    let (status, body) = zincati(&s, "pre-reboot", "n2", "default").await;
    assert_eq!((status, kind(&body).as_str()), (423, "lock_held"));
    // Other nodes report steady-state meanwhile: 200, nothing changes.
    assert_eq!(zincati(&s, "steady-state", "n2", "default").await.0, 200);
    // n1 reboots; its Zincati says steady-state once it is up, and the slot is given back
    // once the kubelet has reported the new boot.
    s.sim.reboot_node("n1").unwrap();
    let boot = cluster_sim::SimConfig::default();
    tokio::time::advance(boot.reboot_duration).await;
    assert_eq!(zincati(&s, "steady-state", "n1", "default").await.0, 200);
    assert!(!s.sim.node("n1").unwrap().unschedulable);
    let (status, body) = zincati(&s, "pre-reboot", "n2", "default").await;
    assert_eq!((status, kind(&body).as_str()), (423, "lock_held"));
    tokio::time::advance(boot.kubelet_start).await;
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    assert_eq!(zincati(&s, "pre-reboot", "n2", "default").await.0, 200);
}

#[tokio::test(start_paused = true)]
async fn every_malformed_request_gets_its_kind_and_status() {
    let s = serve(&fleet(), FleetLockConfig::default(), "/").await;
    let body = zincati_body(&id("n1"), "default");

    // No protocol header.
    let request = format!(
        "POST /v1/pre-reboot HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, _, answer) = s.send(request.as_bytes()).await;
    assert_eq!(
        (status, kind(&answer).as_str()),
        (400, "missing_protocol_header")
    );

    // Wrong method.
    let (status, head, answer) = s
        .send(
            b"GET /v1/pre-reboot HTTP/1.1\r\nhost: 127.0.0.1\r\nfleet-lock-protocol: true\r\n\r\n",
        )
        .await;
    assert_eq!(
        (status, kind(&answer).as_str()),
        (405, "method_not_allowed")
    );
    assert!(head.to_ascii_lowercase().contains("allow: post"), "{head}");

    let cases: [(&str, u16, &str); 6] = [
        ("{not json", 400, "invalid_body"),
        (
            r#"{"client_params":{"group":"default"}}"#,
            400,
            "invalid_body",
        ),
        (
            r#"{"client_params":{"id":"","group":"default"}}"#,
            400,
            "invalid_id",
        ),
        (
            r#"{"client_params":{"id":"x","group":"bad group!"}}"#,
            400,
            "invalid_group",
        ),
        (
            r#"{"client_params":{"id":"x","group":"workers"}}"#,
            400,
            "unknown_group",
        ),
        (
            r#"{"client_params":{"id":"ffffffffffffffffffffffffffffffff","group":"default"}}"#,
            404,
            "unknown_node",
        ),
    ];
    for (body, want_status, want_kind) in cases {
        let (status, _, answer) = s
            .send(zincati_request("/v1/pre-reboot", body).as_bytes())
            .await;
        assert_eq!(
            (status, kind(&answer).as_str()),
            (want_status, want_kind),
            "{body}"
        );
    }

    // Oversized, even when Content-Length lies about it.
    let huge = format!(
        r#"{{"client_params":{{"id":"{}","group":"default"}}}}"#,
        "a".repeat(20_000)
    );
    let (status, _, answer) = s
        .send(zincati_request("/v1/pre-reboot", &huge).as_bytes())
        .await;
    assert_eq!((status, kind(&answer).as_str()), (413, "body_too_large"));
    let chunked = format!(
        "POST /v1/steady-state HTTP/1.1\r\nhost: 127.0.0.1\r\nfleet-lock-protocol: true\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{huge}\r\n0\r\n\r\n",
        huge.len()
    );
    let (status, _, answer) = send(s.addr, chunked.as_bytes()).await;
    assert_eq!((status, kind(&answer).as_str()), (413, "body_too_large"));

    // Refusals are JSON, with the content type saying so.
    let (_, head, _) = s
        .send(zincati_request("/v1/pre-reboot", "{").as_bytes())
        .await;
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
}

#[tokio::test(start_paused = true)]
async fn draining_is_a_refusal_and_a_dead_api_is_503() {
    let sim = fleet();
    sim.add_pod(
        Pod::new("shop", "slow")
            .on("n1")
            .owned_by("ReplicaSet", "x"),
    )
    .unwrap();
    sim.set_pod_stuck("shop", "slow", true);
    let mut config = FleetLockConfig::default();
    config.drain.request_wait = Duration::ZERO;
    let s = serve(&sim, config, "/").await;
    let (status, body) = zincati(&s, "pre-reboot", "n1", "default").await;
    assert_eq!(
        (status, kind(&body).as_str()),
        (423, "draining"),
        "never 2xx while pods remain"
    );

    s.sim.fail_always(
        Operation::GetLease,
        Error::unavailable("dial tcp 10.0.0.1:443: connect: connection refused"),
    );
    let (status, body) = zincati(&s, "steady-state", "n1", "default").await;
    assert_eq!((status, kind(&body).as_str()), (503, "cluster_unavailable"));
    assert!(
        !body.contains("connection refused") && !body.contains("10.0.0.1"),
        "the API's words stay in the log: {body}"
    );
}

/// FleetLock callers are not authenticated: what they are told names no other node, no
/// ServiceAccount and no API error; the log has the details.
#[tokio::test(start_paused = true)]
async fn refusals_tell_an_unauthenticated_caller_nothing_about_others() {
    let sim = fleet();
    sim.add_node(Node::new("n3").machine_id(machine_id_for("n1")));
    sim.add_node(Node::new("n4").machine_id(machine_id_for("n4")));
    let s = serve(&sim, FleetLockConfig::default(), "/").await;

    // n4 gets the slot; n2 is told the group is full, not by whom.
    assert_eq!(zincati(&s, "pre-reboot", "n4", "default").await.0, 200);
    let (status, body) = zincati(&s, "pre-reboot", "n2", "default").await;
    assert_eq!((status, kind(&body).as_str()), (423, "lock_held"), "{body}");
    assert!(!body.contains("n4"), "{body}");

    // n1 and n3 share a machine id: the caller learns that, not the names.
    let (status, body) = zincati(&s, "pre-reboot", "n1", "default").await;
    assert_eq!(
        (status, kind(&body).as_str()),
        (404, "unknown_node"),
        "{body}"
    );
    assert!(!body.contains("n3"), "{body}");

    // RBAC refuses restart-manager: the caller is not told who restart-manager runs as.
    s.sim.fail_always(
        Operation::ReplaceLease,
        Error::Forbidden {
            message: "leases.coordination.k8s.io \"fleetlock-default\" is forbidden: User \"system:serviceaccount:restart-manager:restart-manager\" cannot update resource".into(),
        },
    );
    let (status, body) = zincati(&s, "steady-state", "n4", "default").await;
    assert_eq!((status, kind(&body).as_str()), (500, "internal"), "{body}");
    assert!(
        !body.contains("serviceaccount") && !body.contains("forbidden"),
        "{body}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_endpoints_live_under_the_configured_prefix() {
    let s = serve(&fleet(), FleetLockConfig::default(), "/fleetlock").await;
    let body = zincati_body(&id("n1"), "default");
    let (status, _, _) = s
        .send(zincati_request("/fleetlock/v1/steady-state", &body).as_bytes())
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = s
        .send(zincati_request("/v1/steady-state", &body).as_bytes())
        .await;
    assert_eq!(status, 404);
}

#[tokio::test(start_paused = true)]
async fn probes_metrics_and_the_fleet_view() {
    let s = serve(&fleet(), FleetLockConfig::default(), "/").await;
    zincati(&s, "pre-reboot", "n1", "default").await;
    zincati(&s, "pre-reboot", "n2", "default").await;

    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    assert_eq!(s.send(get("/healthz").as_bytes()).await.0, 200);
    assert_eq!(s.send(get("/readyz").as_bytes()).await.0, 200);

    let (status, _, metrics) = s.send(get("/metrics").as_bytes()).await;
    assert_eq!(status, 200);
    for line in [
        "fleetlock_requests_total{endpoint=\"pre-reboot\",outcome=\"ok\"} 1",
        "fleetlock_requests_total{endpoint=\"pre-reboot\",outcome=\"lock_held\"} 1",
        "fleetlock_slots_held{group=\"default\"} 1",
        "fleetlock_slots{group=\"default\"} 1",
        "fleetlock_drain_duration_seconds_count{group=\"default\",outcome=\"completed\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line}:\n{metrics}");
    }

    let (status, _, fleet) = s.send(get("/api/v1/fleet").as_bytes()).await;
    assert_eq!(status, 200);
    let fleet: serde_json::Value = serde_json::from_str(&fleet).unwrap();
    assert_eq!(fleet["groups"][0]["name"], "default");
    assert_eq!(fleet["groups"][0]["holders"][0]["node"], "n1");
    assert_eq!(fleet["groups"][0]["holders"][0]["phase"], "approved");
    let n1 = fleet["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "n1")
        .unwrap();
    assert_eq!(n1["state"], "rebooting");
    assert_eq!(n1["cordonedByUs"], true);
}

/// `/readyz` says why while a watch of the cluster has been failing past the grace time,
/// and is ready again once a fresh list arrived.
#[tokio::test(start_paused = true)]
async fn readiness_reports_a_failing_watch_after_the_grace_time() {
    use tower::ServiceExt;
    let sim = fleet();
    let app = Arc::new(
        restart_manager::build(
            Arc::new(sim.clone()),
            Arc::new(sim.clone()),
            Settings::new(FleetLockConfig::default(), Allowlist::default()),
        )
        .unwrap(),
    );
    tokio::spawn({
        let app = app.clone();
        async move { app.run().await }
    });
    app.fleetlock.wait_ready().await;
    app.restarter.wait_ready().await;
    let readyz = || async {
        let response = app
            .router
            .clone()
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
    };
    assert_eq!(readyz().await.0, 200);

    sim.fail_always(
        cluster_sim::Operation::WatchLeases,
        cluster_api::Error::unavailable("connection refused"),
    );
    sim.break_watches();
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert_eq!(readyz().await.0, 200, "a short outage is tolerated");
    tokio::time::sleep(fleetlock_core::DEFAULT_CACHE_GRACE).await;
    let (status, body) = readyz().await;
    assert_eq!(status, 503);
    assert!(
        body.contains("group lock watch has been failing") && body.contains("connection refused"),
        "{body}"
    );
    sim.clear_faults();
    tokio::time::sleep(std::time::Duration::from_secs(31)).await;
    assert_eq!(readyz().await.0, 200);
}

/// A failing config-trigger watch (ConfigMaps, Secrets) is the restart service's problem,
/// not FleetLock's: the FleetLock listener's `/readyz`, which the pods' readiness probe
/// asks, stays ready while the main `/readyz` names the watch.
#[tokio::test(start_paused = true)]
async fn fleetlock_readiness_is_only_what_fleetlock_needs() {
    use restart_core::ServiceEntry;
    use restart_core::trigger::ConfigTrigger;
    use tower::ServiceExt;
    let sim = fleet();
    let web = cluster_sim::WorkloadSpec::deployment("shop", "web");
    let allowlist = Allowlist::new(vec![ServiceEntry {
        restart_on_config_change: Some(ConfigTrigger::default()),
        ..ServiceEntry::new(web.reference())
    }])
    .unwrap();
    sim.add_workload(web).unwrap();
    sim.fail_always(
        Operation::WatchConfig,
        Error::Forbidden {
            message: "configmaps is forbidden".into(),
        },
    );
    let app = Arc::new(
        restart_manager::build(
            Arc::new(sim.clone()),
            Arc::new(sim.clone()),
            Settings::new(FleetLockConfig::default(), allowlist),
        )
        .unwrap(),
    );
    tokio::spawn({
        let app = app.clone();
        async move { app.run().await }
    });
    app.fleetlock.wait_ready().await;
    tokio::time::sleep(fleetlock_core::DEFAULT_CACHE_GRACE + Duration::from_secs(1)).await;
    let readyz = |router: axum::Router| async move {
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
    };
    let (status, body) = readyz(app.router.clone()).await;
    assert_eq!(status, 503);
    assert!(body.contains("configmaps in shop"), "{body}");
    assert_eq!(
        readyz(app.fleetlock_router.clone()).await,
        (200, "ready".to_string())
    );
}

/// With verifyCaller on, the connection's address must be the node's: a request over
/// loopback for a node whose address is elsewhere is refused, and one for the node that
/// lives at 127.0.0.1 is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_from_another_address_than_the_nodes_is_refused() {
    let sim = SimCluster::new();
    for (name, address) in [("n1", "127.0.0.1"), ("n2", "10.9.9.9")] {
        sim.add_node(
            cluster_api::Node::new(name)
                .machine_id(cluster_sim::machine_id_for(name))
                .address(address),
        );
    }
    let config = FleetLockConfig {
        verify_caller: true,
        ..FleetLockConfig::default()
    };
    let s = serve(&sim, config, "/").await;

    let (status, body) = zincati(&s, "pre-reboot", "n2", "default").await;
    assert_eq!(
        (status, kind(&body)),
        (403, "unverified_caller".to_string()),
        "{body}"
    );
    assert!(
        !body.contains("n2") && !body.contains("10.9.9.9"),
        "names nothing: {body}"
    );
    assert!(!sim.node("n2").unwrap().unschedulable);

    let (status, body) = zincati(&s, "pre-reboot", "n1", "default").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = zincati(&s, "steady-state", "n1", "default").await;
    assert_eq!(status, 200, "{body}");
}

/// A FleetLock client asking too often is told to come back later (429, Retry-After), before
/// its request is even read.
#[tokio::test(start_paused = true)]
async fn a_node_asking_too_often_is_slowed_down() {
    let mut settings = Settings::new(FleetLockConfig::default(), Allowlist::default());
    settings.fleetlock_rate = restart_manager::ratelimit::Rate {
        per_second: 1,
        burst: 2,
    };
    let s = common::serve(&fleet(), settings).await;
    for _ in 0..2 {
        assert_eq!(zincati(&s, "steady-state", "n1", "default").await.0, 200);
    }
    let request = zincati_request("/v1/steady-state", &zincati_body(&id("n1"), "default"));
    let (status, head, body) = s.send(request.as_bytes()).await;
    assert_eq!(
        (status, kind(&body).as_str()),
        (429, "too_many_requests"),
        "{body}"
    );
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
}

/// A drain that could not finish is refused before the cordon, and the plan behind the
/// refusal is what the fleet API shows.
#[tokio::test(start_paused = true)]
async fn a_drain_that_would_block_is_refused_and_its_plan_is_served() {
    let sim = fleet();
    sim.add_pod(Pod::new("default", "debug-shell").on("n1").grace_period(7))
        .unwrap();
    sim.add_pod(
        Pod::new("shop", "web-a")
            .on("n1")
            .owned_by("ReplicaSet", "web-1")
            .grace_period(12),
    )
    .unwrap();
    let s = serve(&sim, FleetLockConfig::default(), "/").await;

    let (status, body) = zincati(&s, "pre-reboot", "n1", "default").await;
    assert_eq!(
        (status, kind(&body).as_str()),
        (423, "drain_would_block"),
        "{body}"
    );
    assert!(body.contains("default/debug-shell"), "{body}");
    assert!(!sim.node("n1").unwrap().unschedulable, "not cordoned");

    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    let (status, _, plan) = s.send(get("/api/v1/fleet/nodes/n1/plan").as_bytes()).await;
    assert_eq!(status, 200, "{plan}");
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    assert_eq!(plan["node"], "n1");
    assert_eq!(plan["refuse"][0]["pod"], "default/debug-shell");
    assert_eq!(plan["refuse"][0]["reason"], "unmanaged");
    assert_eq!(plan["evict"][0]["pod"], "shop/web-a");
    assert_eq!(plan["evict"][0]["graceSeconds"], 12);
    assert_eq!(plan["estimatedSeconds"], 12);
    assert!(
        plan["blocked"]
            .as_str()
            .unwrap()
            .contains("default/debug-shell"),
        "{plan}"
    );

    let (status, _, missing) = s
        .send(get("/api/v1/fleet/nodes/nope/plan").as_bytes())
        .await;
    assert_eq!(status, 404, "{missing}");
    assert!(missing.contains("\"kind\":\"unknown_node\""), "{missing}");
}

/// The server with room for many FleetLock requests from 127.0.0.1, where every client asks
/// from here: the per-address rate is not what these tests are about.
async fn serve_unlimited(sim: &SimCluster, config: FleetLockConfig) -> Server {
    let mut settings = Settings::new(config, Allowlist::default());
    settings.fleetlock_rate = restart_manager::ratelimit::Rate {
        per_second: 1000,
        burst: 1000,
    };
    common::serve(sim, settings).await
}

/// A FleetLock request with the id spelt as given.
async fn ask(s: &Server, endpoint: &str, id: &str, group: &str) -> (u16, String) {
    let request = zincati_request(&format!("/v1/{endpoint}"), &zincati_body(id, group));
    let (status, _, body) = s.send(request.as_bytes()).await;
    (status, body)
}

/// The holders' nodes in every group Lease, by group.
fn holders(sim: &SimCluster) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = sim
        .leases()
        .iter()
        .filter_map(|l| fleetlock_core::group::GroupState::from_lease(l).ok())
        .map(|g| (g.group, g.holders.into_iter().map(|h| h.node).collect()))
        .collect();
    groups.sort();
    groups
}

/// Every spelling of n1's id the lookup accepts: its Zincati id in either case, with UUID
/// dashes or padded with spaces, and its raw machine id.
const N1_MACHINE: &str = "0123456789abcdef0123456789abcdef";
const N1_SPELLINGS: [&str; 7] = [
    "583627a932274834a8ebd99f4ed41c0d",
    "583627A932274834A8EBD99F4ED41C0D",
    "583627a9-3227-4834-a8eb-d99f4ed41c0d",
    " 583627a932274834a8ebd99f4ed41c0d ",
    "0123456789abcdef0123456789abcdef",
    "0123456789ABCDEF0123456789ABCDEF",
    "01234567-89AB-CDEF-0123-456789abcdef",
];

fn spelling_fleet() -> SimCluster {
    let sim = SimCluster::new();
    sim.add_node(Node::new("n1").machine_id(N1_MACHINE));
    sim.add_node(Node::new("n2").machine_id(machine_id_for("n2")));
    sim
}

/// Issue 27: a node holds one slot of its group however it spells its id. A second spelling
/// gets the node's own grant back, never a second slot, and the node's steady-state (in any
/// spelling) gives back everything it holds.
#[tokio::test(start_paused = true)]
async fn one_node_holds_one_slot_however_its_id_is_spelt() {
    let mut config = FleetLockConfig::default();
    config.groups.get_mut("default").unwrap().slots = 2;
    let s = serve(&spelling_fleet(), config, "/").await;

    for spelling in N1_SPELLINGS {
        let (status, body) = ask(&s, "pre-reboot", spelling, "default").await;
        assert_eq!(status, 200, "{spelling:?}: {body}");
    }
    assert_eq!(
        holders(&s.sim),
        [("default".to_string(), vec!["n1".to_string()])],
        "one slot for n1, whatever the spelling"
    );
    // So the group's second slot is still free for another node.
    assert_eq!(zincati(&s, "pre-reboot", "n2", "default").await.0, 200);

    // n1 reboots and says steady-state with its usual id: nothing of it stays behind.
    s.sim.reboot_node("n1").unwrap();
    let boot = cluster_sim::SimConfig::default();
    tokio::time::advance(boot.reboot_duration + boot.kubelet_start).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let (status, body) = ask(&s, "steady-state", N1_SPELLINGS[0], "default").await;
    assert_eq!(status, 200, "{body}");
    for _ in 0..10 {
        s.app.fleetlock.maintain().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(
        holders(&s.sim),
        [("default".to_string(), vec!["n2".to_string()])],
        "n1 holds nothing after its steady-state"
    );
    assert!(!s.sim.node("n1").unwrap().unschedulable);
}

/// Issue 27: on a one-slot group, a slot taken with an odd spelling of the raw machine id is
/// the node's: its own Zincati, with the usual id, gets that grant's answer and gives it
/// back; it is not locked out.
#[tokio::test(start_paused = true)]
async fn an_odd_spelling_does_not_lock_the_nodes_own_zincati_out() {
    let s = serve(&spelling_fleet(), FleetLockConfig::default(), "/").await;
    let (status, body) = ask(&s, "pre-reboot", N1_SPELLINGS[6], "default").await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = ask(&s, "pre-reboot", N1_SPELLINGS[0], "default").await;
    assert_eq!(status, 200, "the node's own grant: {body}");
    let (status, body) = zincati(&s, "pre-reboot", "n2", "default").await;
    assert_eq!((status, kind(&body).as_str()), (423, "lock_held"));

    s.sim.reboot_node("n1").unwrap();
    let boot = cluster_sim::SimConfig::default();
    tokio::time::advance(boot.reboot_duration + boot.kubelet_start).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let (status, body) = ask(&s, "steady-state", N1_SPELLINGS[0], "default").await;
    assert_eq!(status, 200, "{body}");
    for _ in 0..10 {
        s.app.fleetlock.maintain().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (status, body) = zincati(&s, "pre-reboot", "n2", "default").await;
    assert_eq!(status, 200, "n1's slot was given back: {body}");
}

/// Issue 27: with the group a request names believed (`groupLabel: ""`) and unknown groups
/// allowed, spellings of one node's id in many groups still take one slot, in one group.
#[tokio::test(start_paused = true)]
async fn spellings_in_many_groups_take_one_slot_in_one_group() {
    let config = FleetLockConfig {
        group_label: String::new(),
        unknown_groups: fleetlock_core::UnknownGroups::Allow,
        ..FleetLockConfig::default()
    };
    let s = serve_unlimited(&spelling_fleet(), config).await;
    for i in 0..20 {
        let spelling = N1_SPELLINGS[i % N1_SPELLINGS.len()];
        let (status, body) = ask(&s, "pre-reboot", spelling, &format!("g{i}")).await;
        assert_eq!(status, 200, "{spelling:?} in g{i}: {body}");
    }
    assert_eq!(
        holders(&s.sim),
        [("g0".to_string(), vec!["n1".to_string()])],
        "one Lease, one slot"
    );
    // Its steady-state, named with any group and spelling, gives that slot back.
    let (status, body) = ask(&s, "steady-state", N1_SPELLINGS[4], "g7").await;
    assert_eq!(status, 200, "{body}");
    let get = "GET /metrics HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n";
    let (_, _, metrics) = s.send(get.as_bytes()).await;
    let series = metrics
        .lines()
        .filter(|l| l.starts_with("fleetlock_slots{"))
        .count();
    assert_eq!(series, 2, "default and g0 only:\n{metrics}");
}

/// Issue 27: unknown groups, when allowed, are bounded: past `maxUnknownGroups` (32 unless
/// configured) a request for yet another is refused with `too_many_groups`, and makes no
/// Lease and no metric series; the groups that exist keep working.
#[tokio::test(start_paused = true)]
async fn unknown_groups_are_bounded() {
    const CAP: usize = 32;
    let sim = SimCluster::new();
    for i in 0..=CAP {
        let name = format!("n{i}");
        sim.add_node(Node::new(&name).machine_id(machine_id_for(&name)));
    }
    let config = FleetLockConfig {
        group_label: String::new(),
        unknown_groups: fleetlock_core::UnknownGroups::Allow,
        ..FleetLockConfig::default()
    };
    let s = serve_unlimited(&sim, config).await;
    for i in 0..CAP {
        let (status, body) = zincati(&s, "pre-reboot", &format!("n{i}"), &format!("u{i}")).await;
        assert_eq!(status, 200, "u{i}: {body}");
    }
    let last = format!("n{CAP}");
    let (status, body) = zincati(&s, "pre-reboot", &last, "one-too-many").await;
    assert_eq!(
        (status, kind(&body).as_str()),
        (423, "too_many_groups"),
        "{body}"
    );
    assert!(
        body.contains("maxUnknownGroups"),
        "names the setting: {body}"
    );
    let group_leases = s
        .sim
        .leases()
        .iter()
        .filter(|l| l.name.starts_with("fleetlock-"))
        .count();
    assert_eq!(group_leases, CAP, "no Lease for the refused group");
    // A group that exists is still served: u0's slot is taken, so the answer is lock_held.
    let (status, body) = zincati(&s, "pre-reboot", &last, "u0").await;
    assert_eq!((status, kind(&body).as_str()), (423, "lock_held"), "{body}");
    // So is a configured one.
    assert_eq!(zincati(&s, "pre-reboot", &last, "default").await.0, 200);
}
