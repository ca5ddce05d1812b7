//! The real `restart-manager` binary with `--kubeconfig`, against the simulated cluster's
//! Kubernetes API endpoint over HTTPS: start-up (permission check, caches, leader
//! election), a FleetLock cycle in Zincati's exact bytes, and a restart rolled out to
//! completion, all through the same adapter code a real cluster gets.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use cluster_api::{LabelSelector, Node, WorkloadKind, WorkloadRef};
use cluster_sim::access::{AccessRule, UserSpec};
use cluster_sim::apiserver::{ApiServer, KubeconfigDir, Running};
use cluster_sim::{Budget, IntOrPercent, SimCluster, WorkloadSpec, machine_id_for};
use common::{free_port, send};
use fleetlock_core::zincati_id;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const DEADLINE: Duration = Duration::from_secs(90);

fn zincati_request(path: &str, node: &str) -> Vec<u8> {
    let id = zincati_id(&machine_id_for(node)).unwrap();
    let body = format!(
        "{{\n  \"client_params\": {{\n    \"id\": \"{id}\",\n    \"group\": \"default\"\n  }}\n}}"
    );
    format!(
        "POST {path} HTTP/1.1\r\nfleet-lock-protocol: true\r\naccept: */*\r\nhost: localhost\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Starts the binary and waits (bounded) until it serves.
async fn start_as(
    name: &str,
    kubeconfig: &std::path::Path,
    config: &std::path::Path,
    port: u16,
) -> Child {
    start_with(name, kubeconfig, config, port, &[]).await
}

async fn start_with(
    name: &str,
    kubeconfig: &std::path::Path,
    config: &std::path::Path,
    port: u16,
    extra: &[&str],
) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_restart-manager"))
        .args(["--kubeconfig"])
        .arg(kubeconfig)
        .arg("--config")
        .arg(config)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "json",
        ])
        .args(extra)
        // Tests that do not give FleetLock a port of its own serve it beside the API.
        .args(
            (!extra.contains(&"--fleetlock-listen"))
                .then_some(["--fleetlock-listen", "same"])
                .into_iter()
                .flatten(),
        )
        .env("POD_NAME", name)
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn restart-manager");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let ready = tokio::time::timeout(DEADLINE, async {
        while let Ok(Some(line)) = lines.next_line().await {
            let serving = line.contains("\"serving\"");
            seen.push(line);
            if serving {
                return true;
            }
        }
        false
    })
    .await;
    if ready != Ok(true) {
        let mut err = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            use tokio::io::AsyncReadExt;
            let _ =
                tokio::time::timeout(Duration::from_secs(2), stderr.read_to_string(&mut err)).await;
        }
        panic!("restart-manager never served:\n{}\n{err}", seen.join("\n"));
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

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
async fn until<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let started = tokio::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{what} did not happen within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_a_reboot_cycle_and_a_restart_against_the_endpoint() {
    let sim = SimCluster::new();
    sim.add_fleet(3);
    sim.add_workload(
        WorkloadSpec::deployment("shop", "web")
            .replicas(3)
            .grace_period(1)
            .pod_start_secs(1),
    )
    .unwrap();
    sim.add_budget(Budget::min_available(
        "shop",
        "web",
        LabelSelector::eq("app", "web"),
        IntOrPercent::Int(2),
    ));
    let (_endpoint, kubeconfig, config) = serve_with_config(
        &sim,
        "services:\n  - kind: Deployment\n    name: web\n    namespace: shop\n",
    )
    .await;
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // FleetLock on a port of its own, as the binary serves it by default.
    let fleetlock: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let _server = start_with(
        "restart-manager-e2e",
        kubeconfig.path(),
        &config,
        port,
        &["--fleetlock-listen", &fleetlock.to_string()],
    )
    .await;

    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").into_bytes();
    until("readiness", async || {
        (send(addr, &get("/readyz")).await.0 == 200).then_some(())
    })
    .await;
    // The API's port does not take FleetLock requests, and FleetLock's serves nothing else.
    assert_eq!(
        send(addr, &zincati_request("/v1/pre-reboot", "n1")).await.0,
        404
    );
    assert_eq!(send(fleetlock, &get("/api/v1/service")).await.0, 404);
    assert_eq!(send(fleetlock, &get("/healthz")).await.0, 200);

    // Zincati asks until the drain is done: 423 while draining, then 200.
    let approved = until("the reboot approval", async || {
        let (status, _, body) = send(fleetlock, &zincati_request("/v1/pre-reboot", "n1")).await;
        match status {
            200 => Some(()),
            423 => None,
            other => panic!("pre-reboot answered {other}: {body}"),
        }
    })
    .await;
    let () = approved;
    assert!(
        sim.node("n1").unwrap().unschedulable,
        "cordoned through the API"
    );
    assert!(
        sim.pods_on("n1").iter().all(|p| p.is_daemonset_pod()),
        "drained through evictions"
    );
    assert_eq!(
        send(fleetlock, &zincati_request("/v1/steady-state", "n1"))
            .await
            .0,
        200
    );
    assert!(!sim.node("n1").unwrap().unschedulable, "uncordoned");
    assert!(
        sim.lease("restart-manager", "restart-manager-leader")
            .and_then(|l| l.holder_identity)
            .is_some_and(|h| h == "restart-manager-e2e"),
        "the binary took the leader Lease"
    );

    // A restart through the API, followed to completion on the status websocket.
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://{addr}/api/v1/service/status?kind=Deployment&namespace=shop&name=web"
    ))
    .await
    .expect("the status websocket");
    let mut next = async || -> serde_json::Value {
        loop {
            let msg = tokio::time::timeout(DEADLINE, ws.next())
                .await
                .expect("a status message in time")
                .expect("the socket stays open")
                .expect("a message");
            if let Message::Text(text) = msg {
                return serde_json::from_str(&text).unwrap();
            }
        }
    };
    assert_eq!(next().await["type"], "snapshot");
    let restart = "POST /api/v1/service/Deployment/shop/web/restart HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 0\r\n\r\n";
    let (status, _, body) = send(addr, restart.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    let web = WorkloadRef::new(WorkloadKind::Deployment, "shop", "web");
    let mut phases = Vec::new();
    loop {
        let update = next().await;
        let phase = update["service"]["phase"]
            .as_str()
            .unwrap_or("")
            .to_string();
        phases.push(phase.clone());
        if phase == "complete" && update["service"]["lock"].is_null() {
            break;
        }
    }
    assert!(
        phases.iter().any(|p| p == "progressing"),
        "the rollout's progress reached the socket: {phases:?}"
    );
    assert!(
        sim.workload(&web)
            .unwrap()
            .template_annotations
            .contains_key("kubectl.kubernetes.io/restartedAt")
    );
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

/// Two processes over one endpoint: one slot between them; SIGTERM hands leadership over at
/// once; the replica draining a node is killed with SIGKILL and the other, now leading,
/// resumes the drain from the group Lease and finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_slots_hand_over_leadership_and_survive_a_kill_mid_drain() {
    let sim = SimCluster::new();
    sim.add_fleet(4);
    // Two replicas on n1 and n2 under a budget that keeps both: draining either waits until
    // the Deployment is scaled up.
    for n in ["n3", "n4"] {
        sim.edit_node(n, |n| n.unschedulable = true).unwrap();
    }
    sim.add_workload(
        WorkloadSpec::deployment("shop", "db")
            .replicas(2)
            .grace_period(1)
            .pod_start_secs(1),
    )
    .unwrap();
    for n in ["n3", "n4"] {
        sim.edit_node(n, |n| n.unschedulable = false).unwrap();
    }
    sim.add_budget(Budget::min_available(
        "shop",
        "db",
        LabelSelector::eq("app", "db"),
        IntOrPercent::Int(2),
    ));
    let (_endpoint, kubeconfig, config) = serve_with_config(
        &sim,
        "fleetlock:\n  drain:\n    requestWait: 1s\n    retryInitial: 1s\n    retryMax: 2s\n",
    )
    .await;
    let ports = [free_port(), free_port(), free_port()];
    let addr = |i: usize| -> SocketAddr { format!("127.0.0.1:{}", ports[i]).parse().unwrap() };
    let a = start_as("rm-a", kubeconfig.path(), &config, ports[0]).await;
    let b = start_as("rm-b", kubeconfig.path(), &config, ports[1]).await;
    let first = until("a leader", async || leader(&sim)).await;

    // SIGTERM: the leader gives the Lease back and the other takes over at once, not a
    // whole lease (15 s) later.
    let (stopping, staying, staying_port, staying_name) = if first == "rm-a" {
        (a, b, 1, "rm-b")
    } else {
        (b, a, 0, "rm-a")
    };
    terminate(&stopping);
    let asked = tokio::time::Instant::now();
    until("the hand-over", async || {
        (leader(&sim).as_deref() == Some(staying_name)).then_some(())
    })
    .await;
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "took {:?}: the Lease was not given back",
        asked.elapsed()
    );
    let _ = stopping.wait_with_output().await;
    // Back to two replicas, both ready.
    let third = start_as("rm-c", kubeconfig.path(), &config, ports[2]).await;
    let readyz = b"GET /readyz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n";
    for i in [staying_port, 2] {
        until("readiness", async || {
            (send(addr(i), readyz).await.0 == 200).then_some(())
        })
        .await;
    }

    // One slot: n1 and n2 ask at once, through different replicas; one of them gets it.
    let (ask_n1, ask_n2) = (
        zincati_request("/v1/pre-reboot", "n1"),
        zincati_request("/v1/pre-reboot", "n2"),
    );
    let (one, two) = tokio::join!(send(addr(staying_port), &ask_n1), send(addr(2), &ask_n2),);
    let kind = |body: &str| -> String {
        serde_json::from_str::<serde_json::Value>(body).unwrap()["kind"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let mut kinds = [kind(&one.2), kind(&two.2)];
    kinds.sort();
    assert_eq!(kinds, ["draining", "lock_held"], "{} / {}", one.2, two.2);
    assert_eq!(slot_holders(&sim), 1);
    let (draining_node, draining_port) = if kind(&one.2) == "draining" {
        ("n1", staying_port)
    } else {
        ("n2", 2)
    };
    // The leader (staying) resumes drains too; kill the draining replica that is not the
    // leader only if the request went there, else kill the leader itself.
    let (mut killed, survivor_port) = if draining_port == staying_port {
        (staying, 2)
    } else {
        (third, staying_port)
    };
    killed.kill().await.unwrap();
    let _ = killed.wait().await;

    // The budget makes room; the survivor (leader now, or after the lease expires) resumes
    // the drain from the Lease and approves.
    sim.scale(&WorkloadSpec::deployment("shop", "db").reference(), 3)
        .unwrap();
    until("the resumed drain", async || {
        let (status, _, _) = send(
            addr(survivor_port),
            &zincati_request("/v1/pre-reboot", draining_node),
        )
        .await;
        (status == 200).then_some(())
    })
    .await;
    assert!(sim.node(draining_node).unwrap().unschedulable);
    assert!(
        sim.pods_on(draining_node).is_empty(),
        "{draining_node} approved with pods on it"
    );
    assert_eq!(slot_holders(&sim), 1);
    assert_eq!(
        send(
            addr(survivor_port),
            &zincati_request("/v1/steady-state", draining_node)
        )
        .await
        .0,
        200
    );
    assert_eq!(slot_holders(&sim), 0);
    assert!(!sim.node(draining_node).unwrap().unschedulable);
}

/// `--auth kubernetes` against the endpoint: the binary reviews a caller's token
/// (TokenReview, for restart-manager's audience) and asks whether it may `restart` or see the
/// workload (SubjectAccessReview), and the endpoint answers both from the scenario's users
/// and RBAC rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_only_rbac_through_token_and_access_reviews() {
    let sim = rbac_cluster();
    // A token made for the API server itself is no token for restart-manager.
    sim.add_user(UserSpec::new("dave", "dave-api-token"));
    let (_endpoint, kubeconfig, config) = serve_with_config(&sim, WEB_ONLY).await;
    let (mut child, addr) = start_kubernetes_auth(&kubeconfig, &config, &[]).await;
    let (status, _, body) = send(addr, &restart_request("bob-token")).await;
    assert_eq!(status, 403, "{body}");
    let (status, _, body) = send(addr, &restart_request("nobody-knows")).await;
    assert_eq!(status, 401, "{body}");
    let (status, _, body) = send(addr, &restart_request("dave-api-token")).await;
    assert_eq!(status, 401, "{body}");
    let (status, _, body) = send(addr, &restart_request("alice-token")).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["lock"]["holder"], "alice");

    // Reading is authorised as well: alice may get the Deployment, bob may not.
    let (status, _, body) = send(addr, &get_request("/api/v1/service", "alice-token")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"web\""), "{body}");
    let (status, _, body) = send(addr, &get_request("/api/v1/service", "bob-token")).await;
    assert_eq!((status, body.as_str()), (200, "[]"));
    for path in [
        "/api/v1/service/Deployment/shop/web/history",
        "/api/v1/fleet",
    ] {
        let (status, _, body) = send(addr, &get_request(path, "bob-token")).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    let (status, _, body) = send(addr, &get_request("/api/v1/fleet", "alice-token")).await;
    assert_eq!(status, 200, "{body}");
    let _ = child.kill().await;
}

/// A status-stream client is identified and authorised again while it stays connected: a
/// withdrawn right takes the workload out of its view, a revoked token closes the socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_stream_client_loses_what_it_may_no_longer_see() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let sim = rbac_cluster();
    let (_endpoint, kubeconfig, config) = serve_with_config(&sim, WEB_ONLY).await;
    let (mut child, addr) = start_kubernetes_auth(
        &kubeconfig,
        &config,
        &["--status-recheck-interval", "1s", "--auth-cache-ttl", "1s"],
    )
    .await;
    let mut req = format!("ws://{addr}/api/v1/service/status")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", "Bearer alice-token".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut next = async || -> Message {
        tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .expect("a frame")
    };
    let Message::Text(first) = next().await else {
        panic!("no snapshot first")
    };
    assert!(first.contains("\"web\""), "{first}");

    // alice's RoleBinding goes: the next check sends her a snapshot without the workload.
    assert_eq!(sim.remove_access_rules("alice"), 2);
    loop {
        match next().await {
            Message::Text(text) if text.contains("\"snapshot\"") => {
                assert!(text.contains("\"services\":[]"), "{text}");
                break;
            }
            Message::Text(_) | Message::Ping(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // Her token goes: the socket is closed with policy violation (1008), saying why.
    assert!(sim.remove_user("alice"));
    loop {
        match next().await {
            Message::Close(Some(frame)) => {
                assert_eq!(u16::from(frame.code), 1008);
                assert!(frame.reason.contains("not valid"), "{}", frame.reason);
                break;
            }
            Message::Text(_) | Message::Ping(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let _ = child.kill().await;
}

/// Made-up tokens cost access reviews, which have a budget of their own: 5,000 of them,
/// presented while a node drains, neither hold up the drain's evictions and lock writes nor
/// queue inside the server; past the budget callers are told to come back (429).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_made_up_tokens_do_not_hold_up_a_drain() {
    let sim = rbac_cluster();
    sim.add_node(Node::new("n2").machine_id(machine_id_for("n2")));
    let (_endpoint, kubeconfig, config) = serve_with_config(&sim, WEB_ONLY).await;
    // The client-side limit is low: with reviews on the same budget, 5,000 of them would
    // queue for over eight minutes in front of the drain.
    let (mut child, addr) = start_kubernetes_auth(
        &kubeconfig,
        &config,
        &["--kube-qps", "10", "--kube-burst", "20", "--api-rate", "0"],
    )
    .await;
    let flood = tokio::spawn(async move {
        let mut answers = std::collections::BTreeMap::<u16, usize>::new();
        let mut workers = tokio::task::JoinSet::new();
        // 250 callers at once: on a shared budget, each of the drain's requests would wait
        // behind up to 250 reviews (25 s at 10 per second).
        for worker in 0..250 {
            workers.spawn(async move {
                let mut seen = Vec::new();
                for i in 0..20 {
                    let token = format!("made-up-{worker}-{i}-{}", std::process::id());
                    seen.push(send(addr, &get_request("/api/v1/service", &token)).await.0);
                }
                seen
            });
        }
        while let Some(seen) = workers.join_next().await {
            for status in seen.unwrap() {
                *answers.entry(status).or_default() += 1;
            }
        }
        answers
    });
    let pre_reboot = zincati_request("/v1/pre-reboot", "n1");
    until("the drain of n1 while the flood goes on", async || {
        (send(addr, &pre_reboot).await.0 == 200).then_some(())
    })
    .await;
    assert!(
        sim.pods_on("n1").iter().all(|p| p.namespace != "shop"),
        "n1 was drained"
    );
    let answers = flood.await.unwrap();
    assert_eq!(answers.values().sum::<usize>(), 5_000, "{answers:?}");
    assert!(
        answers.keys().all(|s| *s == 401 || *s == 429),
        "only refusals, never a timeout: {answers:?}"
    );
    assert!(answers.get(&429).is_some_and(|n| *n > 0), "{answers:?}");
    let _ = child.kill().await;
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

/// A narrowed install: the service account holds exactly the base's ClusterRole and Role and
/// the component's per-namespace Roles for the example allowlist, as the endpoint enforces
/// them. The server passes its start-up check, syncs its namespaced watches and restarts an
/// allowlisted workload; with one workload more in its allowlist than the Roles cover, it
/// refuses to start and names the right it lacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrowed_rbac_install_starts_and_restarts() {
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kustomize");
    let sim = SimCluster::new();
    sim.add_node(Node::new("n1").machine_id(machine_id_for("n1")));
    for spec in [
        WorkloadSpec::deployment("shop", "web"),
        WorkloadSpec::deployment("shop", "other"),
        WorkloadSpec::statefulset("shop", "db"),
        WorkloadSpec::daemonset("monitoring", "node-exporter"),
    ] {
        sim.add_workload(spec.grace_period(1).pod_start_secs(1))
            .unwrap();
    }
    let account = "system:serviceaccount:restart-manager:restart-manager";
    sim.add_user(UserSpec {
        groups: vec!["system:serviceaccounts".into()],
        ..UserSpec::new(account, "service-account-token")
    });
    for file in [
        "base/clusterrole.yaml",
        "base/role.yaml",
        "components/workload-roles/roles.yaml",
    ] {
        let text = std::fs::read_to_string(deploy.join(file)).unwrap();
        for rule in rbac_rules(&text, account) {
            sim.add_access_rule(rule);
        }
    }
    let overlay = std::fs::read_to_string(deploy.join("examples/allowlist/config.yaml")).unwrap();
    let configmap: serde_json::Value = serde_saphyr::from_str(&overlay).unwrap();
    let config = configmap["data"]["config.yaml"]
        .as_str()
        .unwrap()
        .to_string();
    let (endpoint, kubeconfig, config_path) = serve_with_config(&sim, &config).await;
    let narrowed = kubeconfig.dir().join("service-account.kubeconfig");
    std::fs::write(&narrowed, endpoint.kubeconfig_for("service-account-token")).unwrap();

    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = start_with("rm-narrowed", &narrowed, &config_path, port, &[]).await;
    until("readiness with namespaced watches", async || {
        (send(addr, b"GET /readyz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            .await
            .0
            == 200)
            .then_some(())
    })
    .await;
    let (status, _, body) = send(
        addr,
        b"POST /api/v1/service/Deployment/shop/web/restart HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 0\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        sim.workload(&WorkloadRef::new(WorkloadKind::Deployment, "shop", "web"))
            .unwrap()
            .template_annotations
            .contains_key("kubectl.kubernetes.io/restartedAt")
    );
    let _ = child.kill().await;

    // The same Roles with shop/other added to the allowlist: not enough, and it says so.
    let wider = config.replace(
        "services:\n",
        "services:\n  - kind: Deployment\n    name: other\n    namespace: shop\n",
    );
    assert_ne!(wider, config);
    std::fs::write(&config_path, wider).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_restart-manager"))
        .arg("--kubeconfig")
        .arg(&narrowed)
        .arg("--config")
        .arg(&config_path)
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(DEADLINE, out).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("patch deployments.apps other in namespace shop"),
        "{stderr}"
    );
    assert!(stderr.contains("restart-manager rbac"), "{stderr}");
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
