//! Probes, metrics and the fleet view; who may ask, how often; drain plans.

use super::*;

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
    let readyz = || readyz(app.router.clone());
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

/// A group's rate over HTTP: a refusal Zincati retries (423, never a 5xx), the grants left in
/// the metrics, and where the group stands in the fleet view.
#[tokio::test(start_paused = true)]
async fn a_rate_limited_group_answers_423_and_shows_its_rate() {
    let mut config = FleetLockConfig::default();
    let group = config.groups.get_mut("default").unwrap();
    group.slots = 2;
    group.rate = Some(fleetlock_core::RateLimit {
        reboots: 1,
        per: Duration::from_secs(3600),
    });
    let s = serve(&fleet(), config, "/").await;
    assert_eq!(zincati(&s, "pre-reboot", "n1", "default").await.0, 200);
    let (status, body) = zincati(&s, "pre-reboot", "n2", "default").await;
    assert_eq!(
        (status, kind(&body).as_str()),
        (423, "rate_limited"),
        "{body}"
    );
    assert!(body.contains("the next can be granted at"), "{body}");

    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    let (_, _, metrics) = s.send(get("/metrics").as_bytes()).await;
    for line in [
        "fleetlock_rate_grants_left{group=\"default\"} 0",
        "fleetlock_requests_total{endpoint=\"pre-reboot\",outcome=\"rate_limited\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line}:\n{metrics}");
    }
    let (_, _, fleet) = s.send(get("/api/v1/fleet").as_bytes()).await;
    let fleet: serde_json::Value = serde_json::from_str(&fleet).unwrap();
    let rate = &fleet["groups"][0]["rate"];
    assert_eq!(
        (&rate["reboots"], &rate["perSeconds"]),
        (&1.into(), &3600.into())
    );
    assert_eq!(rate["granted"], 1);
    assert!(rate["nextGrantAt"].is_string(), "{rate}");
}
