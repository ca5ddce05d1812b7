//! A reboot cycle and a restart through the binary; two replicas sharing slots, handing over leadership and surviving a kill mid-drain.

use super::*;

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
    // Without the pre-flight, which would refuse to start a drain this budget never lets
    // finish: here the drain must be under way when its replica is killed.
    let (_endpoint, kubeconfig, config) = serve_with_config(
        &sim,
        // Zincati's steady-state comes here without a reboot: it gives the slot back at once.
        "fleetlock:\n  groups:\n    default: {recovery: {unchangedBootId: release}}\n  drain:\n    \
         requestWait: 1s\n    retryInitial: 1s\n    retryMax: 2s\n    preflight: false\n",
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
