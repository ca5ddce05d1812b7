//! restartctl against a running server, and its FleetLock client against a deployment.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_mode_does_the_same_through_the_api() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s = server().await;

    let r = remote(&s, Some(DEV), &["list"]).await;
    assert_eq!(r.exit, Exit::Ok, "{}", r.err);
    assert!(
        r.out.contains(" web ") && r.out.contains(" db "),
        "{}",
        r.out
    );
    assert!(
        r.err
            .contains("warning: a token given with --token can be read by other users"),
        "{}",
        r.err
    );

    // A token file wins over --token, and says nothing about it.
    let file = std::env::temp_dir().join(format!("restartctl-token-{}", std::process::id()));
    std::fs::write(&file, format!("{DEV}\n")).unwrap();
    let path = file.to_str().unwrap();
    let r = remote(
        &s,
        Some("wrong-token-0123456789"),
        &["list", "--token-file", path],
    )
    .await;
    std::fs::remove_file(&file).unwrap();
    assert_eq!(r.exit, Exit::Ok, "{}", r.err);
    assert!(!r.err.contains("warning"), "{}", r.err);

    let r = remote(
        &s,
        Some(DEV),
        &[
            "restart",
            "deployment/web",
            "-n",
            "shop",
            "--reason",
            "via server",
            "--wait",
        ],
    )
    .await;
    assert_eq!(r.exit, Exit::Ok, "{}{}", r.out, r.err);
    assert!(r.out.contains("successfully rolled out"), "{}", r.out);
    let lease = s
        .sim
        .lease("restart-manager", "restart.deployment.shop.web")
        .unwrap();
    assert_eq!(
        lease.annotations["restart-manager.io/restarted-by"], "dev",
        "the server records the token's user"
    );

    let r = remote(&s, Some(DEV), &["status", "deploy/shop/web", "-o", "json"]).await;
    let status: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(status["phase"], "complete");
    assert_eq!(status["lastRestart"]["reason"], "via server");

    let r = remote(&s, Some(DEV), &["history", "deploy/shop/web"]).await;
    assert!(r.out.contains("RolloutComplete"), "{}", r.out);

    // A lock, seen and broken; only an admin may.
    s.sim
        .stall_rollouts(&WorkloadSpec::deployment("shop", "web").reference(), true)
        .unwrap();
    assert_eq!(
        remote(&s, Some(ADMIN), &["restart", "deploy/shop/web"])
            .await
            .exit,
        Exit::Ok
    );
    let r = remote(&s, Some(DEV), &["restart", "deploy/shop/web"]).await;
    assert_eq!(r.exit, Exit::Refused);
    assert!(r.err.contains("being restarted by root"), "{}", r.err);
    let r = remote(&s, Some(DEV), &["locks"]).await;
    assert!(r.out.contains("Deployment/shop/web  root"), "{}", r.out);
    let r = remote(&s, Some(DEV), &["watch", "deploy/shop/web", "--count", "1"]).await;
    assert!(r.out.contains("locked by root"), "{}", r.out);
    let r = remote(
        &s,
        Some(DEV),
        &["unlock", "deploy/shop/web", "--reason", "mine now"],
    )
    .await;
    assert_eq!(r.exit, Exit::Denied, "{}", r.err);
    let r = remote(
        &s,
        Some(ADMIN),
        &["unlock", "deploy/shop/web", "--reason", "stuck"],
    )
    .await;
    assert_eq!(r.exit, Exit::Ok, "{}", r.err);

    let r = remote(&s, Some(DEV), &["nodes"]).await;
    assert_eq!(r.out.lines().count(), 4, "{}", r.out);
    s.sim
        .add_pod(cluster_api::Pod::new("default", "debug-shell").on("n3"))
        .unwrap();
    let r = remote(&s, Some(DEV), &["plan", "node", "n3", "-o", "json"]).await;
    assert_eq!(r.exit, Exit::FleetLockRefused, "{}", r.err);
    let plan: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(plan["refuse"][0]["pod"], "default/debug-shell");
    assert_eq!(plan["refuse"][0]["reason"], "unmanaged");
    assert_eq!(
        remote(&s, Some(DEV), &["fleet", "pause", "default"])
            .await
            .exit,
        Exit::Denied
    );
    assert_eq!(
        remote(&s, Some(ADMIN), &["fleet", "pause", "default"])
            .await
            .exit,
        Exit::Ok
    );
    assert_eq!(
        remote(&s, Some(ADMIN), &["fleet", "resume", "default"])
            .await
            .exit,
        Exit::Ok
    );

    let r = remote(&s, Some(DEV), &["restart", "deploy/shop/frozen"]).await;
    assert_eq!(r.exit, Exit::Refused);
    let r = remote(&s, Some(DEV), &["status", "deploy/shop/payments"]).await;
    assert_eq!(r.exit, Exit::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_mode_failures_say_what_to_do() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s = server().await;
    let r = remote(&s, None, &["list"]).await;
    assert_eq!(r.exit, Exit::Denied);
    assert!(
        r.err.contains("hint: pass a token with --token"),
        "{}",
        r.err
    );
    let r = remote(&s, Some("wrong-token-0123456789"), &["list"]).await;
    assert_eq!(r.exit, Exit::Denied);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = cli(
        &["--server", &format!("http://127.0.0.1:{port}"), "list"],
        None,
    )
    .await;
    assert_eq!(r.exit, Exit::Failure);
    assert!(
        r.err.contains("cannot reach the server") && r.err.contains("hint: check --server"),
        "{}",
        r.err
    );
    let r = cli(&["--server", "restart-manager:8080", "list"], None).await;
    assert_eq!(r.exit, Exit::Usage);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleetlock_client_speaks_to_a_deployment() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s = server().await;
    let id = fleetlock_core::zincati_id(&machine_id_for("n1")).unwrap();
    let r = cli(
        &["fleetlock", "steady-state", "--url", &s.url, "--id", &id],
        None,
    )
    .await;
    assert_eq!(r.exit, Exit::Ok, "{}{}", r.out, r.err);
    let r = cli(
        &[
            "fleetlock",
            "pre-reboot",
            "--url",
            &format!("{}/", s.url),
            "--id",
            &id,
        ],
        None,
    )
    .await;
    assert_eq!(r.exit, Exit::Ok, "{}{}", r.out, r.err);
    assert!(r.out.contains("pre-reboot: allowed (200)"), "{}", r.out);
    let other = fleetlock_core::zincati_id(&machine_id_for("n2")).unwrap();
    let r = cli(
        &[
            "fleetlock",
            "pre-reboot",
            "--url",
            &s.url,
            "--id",
            &other,
            "-o",
            "json",
        ],
        None,
    )
    .await;
    assert_eq!(r.exit, Exit::FleetLockRefused);
    let answer: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(
        (answer["status"].as_u64(), answer["kind"].as_str()),
        (Some(423), Some("lock_held"))
    );
    let r = cli(
        &[
            "fleetlock",
            "pre-reboot",
            "--url",
            &s.url,
            "--id",
            "x",
            "--group",
            "nope",
        ],
        None,
    )
    .await;
    assert_eq!(r.exit, Exit::FleetLockRefused);
    assert!(r.out.contains("400 unknown_group"), "{}", r.out);
}

/// `restart --dry-run` through the server: the API's `?dryRun=true`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_through_the_server() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s = server().await;
    let writes = s.sim.calls().writes();
    let r = remote(
        &s,
        Some(DEV),
        &["restart", "deployment/shop/web", "--dry-run", "-o", "json"],
    )
    .await;
    assert_eq!(r.exit, Exit::Ok, "{}{}", r.out, r.err);
    let plan: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(plan["dryRun"], true);
    assert_eq!(plan["allowed"], true);
    assert_eq!(s.sim.calls().writes(), writes, "nothing written");
}
