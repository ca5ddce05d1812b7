//! Who may do what through the binary: access reviews, narrowed views, review floods, a least-privilege install.

use super::*;

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

/// Issue 27 item 4, at the level of the attack: clients on four addresses keep sending
/// made-up tokens (no request rate holds them back), so every review they cause comes out of
/// the server's review budget. A caller whose token was accepted before, and whose cached
/// answer has since expired (`--auth-cache-ttl 0s`: at once), is reviewed again and answered
/// every time, never told to come back (429): made-up tokens get only their addresses' shares
/// and half the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_tokens_from_many_addresses_do_not_lock_out_a_known_caller() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let sim = rbac_cluster();
    let (_endpoint, kubeconfig, config) = serve_with_config(&sim, WEB_ONLY).await;
    let (mut child, addr) = start_kubernetes_auth(
        &kubeconfig,
        &config,
        &["--api-rate", "0", "--auth-cache-ttl", "0s"],
    )
    .await;
    let alice = get_request("/api/v1/service", "alice-token");
    let (status, _, body) = send(addr, &alice).await;
    assert_eq!(status, 200, "alice's token is accepted once: {body}");

    let stop = Arc::new(AtomicBool::new(false));
    let busy = Arc::new(AtomicUsize::new(0));
    let mut flood = tokio::task::JoinSet::new();
    for worker in 0..32u32 {
        let (stop, busy) = (stop.clone(), busy.clone());
        let from: std::net::IpAddr = format!("127.0.0.{}", 2 + worker % 4).parse().unwrap();
        flood.spawn(async move {
            let mut i = 0u32;
            while !stop.load(Ordering::SeqCst) {
                let token = format!("made-up-{worker}-{i}-{}", std::process::id());
                match send_from(from, addr, &get_request("/api/v1/service", &token)).await {
                    401 => {}
                    429 => {
                        busy.fetch_add(1, Ordering::SeqCst);
                    }
                    other => panic!("a made-up token got {other}"),
                }
                i += 1;
            }
        });
    }
    // Once the flood is being turned away, its shares are spent.
    until("the made-up tokens' shares spent", async || {
        (busy.load(Ordering::SeqCst) >= 32).then_some(())
    })
    .await;
    for attempt in 0..4 {
        let (status, _, body) = send(addr, &alice).await;
        assert_eq!(
            status, 200,
            "alice's request {attempt} during the flood: {body}"
        );
    }
    stop.store(true, Ordering::SeqCst);
    while let Some(done) = flood.join_next().await {
        done.unwrap();
    }
    let _ = child.kill().await;
}

/// [`send`] from a client address of our choosing (any of 127.0.0.0/8 reaches the server);
/// the status only.
async fn send_from(from: std::net::IpAddr, addr: SocketAddr, request: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let head = String::from_utf8_lossy(&response);
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"))
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
    // The restart's Event is marked with the key the server made in its Secret, which the
    // narrowed Role lets it create and read by name alone.
    until("the Event key's Secret", async || {
        cluster_api::ClusterApi::get_secret(&sim, "restart-manager", restart_core::KEY_SECRET)
            .await
            .ok()
            .filter(|s| s.data[restart_core::KEY_ENTRY].len() == 32)
    })
    .await;
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

/// A fresh install with `--auth kubernetes`: `/metrics` (which names the allowlisted
/// workloads) needs a token allowed to `get` the non-resource URL `/metrics`, as Prometheus'
/// ServiceAccount token is (for the API server's own audience); a dry run and a plan need
/// the rights that see what they show (`get` on the workload, `list` on pods), not only the
/// restart right or `list` on nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_dry_runs_and_plans_need_their_own_rights() {
    let sim = rbac_cluster();
    sim.add_user(UserSpec::new("prometheus", "prometheus-token"));
    sim.add_access_rule(AccessRule {
        subjects: vec!["prometheus".into()],
        api_groups: vec![],
        resources: vec!["/metrics".into()],
        verbs: vec!["get".into()],
        namespaces: vec![],
        resource_names: vec![],
    });
    // carol may do what alice may, and list pods everywhere.
    sim.add_user(UserSpec::new("carol", "carol-token").audiences(&["restart-manager"]));
    sim.add_access_rule(AccessRule {
        subjects: vec!["carol".into()],
        api_groups: vec!["apps".into()],
        resources: vec!["deployments".into()],
        verbs: vec!["restart".into(), "get".into()],
        namespaces: vec!["shop".into()],
        resource_names: vec!["web".into()],
    });
    sim.add_access_rule(AccessRule {
        subjects: vec!["carol".into()],
        api_groups: vec![String::new()],
        resources: vec!["nodes".into(), "pods".into()],
        verbs: vec!["list".into()],
        namespaces: vec![],
        resource_names: vec![],
    });
    let (_endpoint, kubeconfig, config) = serve_with_config(&sim, WEB_ONLY).await;
    let (mut child, addr) = start_kubernetes_auth(&kubeconfig, &config, &[]).await;

    let (status, _, body) = send(
        addr,
        b"GET /metrics HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("shop"), "{body}");
    let (status, _, body) = send(addr, &get_request("/metrics", "alice-token")).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("non-resource URL /metrics"), "{body}");
    let (status, _, body) = send(addr, &get_request("/metrics", "prometheus-token")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#"namespace="shop""#), "{body}");

    let dry_run = |token: &str| {
        format!(
            "POST /api/v1/service/Deployment/shop/web/restart?dryRun=true HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {token}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )
        .into_bytes()
    };
    let (status, _, body) = send(addr, &dry_run("alice-token")).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("list on pods in shop"), "{body}");
    let (status, _, body) = send(
        addr,
        &get_request("/api/v1/fleet/nodes/n1/plan", "alice-token"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("list on pods cluster-wide"), "{body}");
    let (status, _, body) = send(addr, &dry_run("carol-token")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"dryRun\":true"), "{body}");
    let (status, _, body) = send(
        addr,
        &get_request("/api/v1/fleet/nodes/n1/plan", "carol-token"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let _ = child.kill().await;
}
