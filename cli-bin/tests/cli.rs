//! Every command, directly on a simulated cluster and through an in-process server, with the
//! failures and exit codes a script would see.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use cluster_api::{Node, WorkloadKind};
use cluster_sim::{SimCluster, WorkloadSpec, machine_id_for};
use fleetlock_core::FleetLockConfig;
use restart_core::{Allowlist, Identity, ServiceEntry};
use restart_manager::Settings;
use restart_manager::auth::{Auth, Authenticator, parse_tokens};
use restartctl::backend::{Backend, Exit};
use restartctl::direct::{Direct, ManagerConfig};
use restartctl::output::Io;
use restartctl::{Cli, run};

const ADMIN: &str = "admin-token-0123456789";
const DEV: &str = "dev-token-0123456789ab";

fn cluster() -> SimCluster {
    let sim = SimCluster::new();
    for n in ["n1", "n2", "n3"] {
        sim.add_node(
            Node::new(n)
                .machine_id(machine_id_for(n))
                .label("zone", "a"),
        );
    }
    sim.add_workload(
        WorkloadSpec::deployment("shop", "web")
            .replicas(2)
            .pod_start_secs(1)
            .grace_period(0),
    )
    .unwrap();
    sim.add_workload(
        WorkloadSpec::statefulset("shop", "db")
            .replicas(1)
            .pod_start_secs(1)
            .grace_period(0),
    )
    .unwrap();
    sim.add_workload(WorkloadSpec::deployment("shop", "frozen").paused())
        .unwrap();
    sim.add_workload(
        WorkloadSpec::deployment("shop", "broken")
            .replicas(1)
            .progress_deadline(2)
            .pod_start_secs(1)
            .grace_period(0),
    )
    .unwrap();
    sim.stall_rollouts(
        &WorkloadSpec::deployment("shop", "broken").reference(),
        true,
    )
    .unwrap();
    sim
}

fn services() -> Vec<ServiceEntry> {
    ["web", "frozen", "broken"]
        .into_iter()
        .map(|n| ServiceEntry {
            kind: WorkloadKind::Deployment,
            namespace: "shop".into(),
            name: n.into(),
            description: None,
            allowed: vec![],
        })
        .chain([ServiceEntry {
            kind: WorkloadKind::StatefulSet,
            namespace: "shop".into(),
            name: "db".into(),
            description: Some("the database".into()),
            allowed: vec![],
        }])
        .collect()
}

fn direct(sim: &SimCluster) -> Direct {
    let config = ManagerConfig {
        services: services(),
        fleetlock: FleetLockConfig::default(),
    };
    Direct::start(
        Arc::new(sim.clone()),
        Arc::new(sim.clone()),
        config,
        Identity::user("tester"),
        true,
    )
    .unwrap()
}

struct Ran {
    exit: Exit,
    out: String,
    err: String,
}

async fn cli(args: &[&str], backend: Option<&dyn Backend>) -> Ran {
    let argv: Vec<&str> = ["restartctl"]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    let cli = Cli::try_parse_from(argv).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = {
        let mut io = Io {
            out: &mut out,
            err: &mut err,
            terminal: false,
            format: cli.output,
        };
        run(&cli, backend, &mut io).await
    };
    Ran {
        exit,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

// === direct mode ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_mode_lists_restarts_waits_and_refuses() {
    let sim = cluster();
    let d = direct(&sim);
    let b: Option<&dyn Backend> = Some(&d);

    let r = cli(&["list"], b).await;
    assert_eq!(r.exit, Exit::Ok, "{}", r.err);
    let header = r.out.lines().next().unwrap();
    assert!(
        header.starts_with("KIND") && header.contains("LOCKED BY"),
        "{}",
        r.out
    );
    assert!(
        r.out
            .lines()
            .any(|l| l.starts_with("Deployment") && l.contains(" web ") && l.contains("idle")),
        "{}",
        r.out
    );

    let r = cli(&["list", "-o", "json"], b).await;
    let json: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 4);

    let r = cli(
        &[
            "restart",
            "deployment/web",
            "-n",
            "shop",
            "--reason",
            "config change",
            "--wait",
        ],
        b,
    )
    .await;
    assert_eq!(r.exit, Exit::Ok, "{}{}", r.out, r.err);
    assert!(r.out.contains("progressing"), "{}", r.out);
    assert!(
        r.out
            .trim_end()
            .ends_with("deployment \"web\" successfully rolled out"),
        "{}",
        r.out
    );
    let lease = sim
        .lease("restart-manager", "restart.deployment.shop.web")
        .unwrap();
    assert_eq!(
        lease.annotations["restart-manager.io/restarted-by"],
        "tester"
    );

    let r = cli(&["status", "sts/shop/db", "-o", "yaml"], b).await;
    assert!(
        r.out.contains("phase: idle") && r.out.contains("description: the database"),
        "{}",
        r.out
    );

    // Refusals, with exit codes and a hint each.
    let r = cli(&["restart", "deploy/shop/frozen"], b).await;
    assert_eq!(r.exit, Exit::Refused);
    assert!(
        r.err.contains("paused") && r.err.contains("hint: resume it first"),
        "{}",
        r.err
    );
    let r = cli(&["restart", "deploy/shop/payments"], b).await;
    assert_eq!(r.exit, Exit::NotFound);
    assert!(
        r.err.contains("not in the allowlist") && r.err.contains("restartctl list"),
        "{}",
        r.err
    );
    let r = cli(&["restart", "cronjob/shop/nightly"], b).await;
    assert_eq!(r.exit, Exit::Usage);
    let r = cli(&["restart", "web"], b).await;
    assert_eq!(r.exit, Exit::Usage);
    assert!(r.err.contains("KIND/NAMESPACE/NAME"), "{}", r.err);

    // A rollout that fails: exit 6.
    let r = cli(
        &[
            "restart",
            "deploy/shop/broken",
            "--wait",
            "--timeout",
            "60s",
        ],
        b,
    )
    .await;
    assert_eq!(r.exit, Exit::RolloutFailed, "{}{}", r.out, r.err);
    assert!(
        r.out.contains("exceeded its progress deadline"),
        "{}",
        r.out
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_mode_locks_unlock_history_watch_nodes_and_fleet() {
    let sim = cluster();
    sim.stall_rollouts(&WorkloadSpec::deployment("shop", "web").reference(), true)
        .unwrap();
    let d = direct(&sim);
    let b: Option<&dyn Backend> = Some(&d);

    assert_eq!(
        cli(&["restart", "deploy/shop/web", "--reason", "first"], b)
            .await
            .exit,
        Exit::Ok
    );
    let r = cli(&["restart", "deploy/shop/web"], b).await;
    assert_eq!(r.exit, Exit::Refused);
    assert!(
        r.err.contains("being restarted by tester") && r.err.contains("restartctl unlock"),
        "{}",
        r.err
    );

    let r = cli(&["locks"], b).await;
    assert!(
        r.out.contains("Restart locks") && r.out.contains("Deployment/shop/web  tester"),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("Reboot slots") && r.out.contains("default  0/1"),
        "{}",
        r.out
    );

    let r = cli(&["watch", "deploy/shop/web", "--count", "1"], b).await;
    assert!(
        r.out.contains("Deployment/shop/web") && r.out.contains("locked by tester"),
        "{}",
        r.out
    );

    // unlock needs a reason.
    assert!(Cli::try_parse_from(["restartctl", "unlock", "deploy/shop/web"]).is_err());
    let r = cli(&["unlock", "deploy/shop/web", "--reason", "stuck"], b).await;
    assert_eq!(r.exit, Exit::Ok);
    assert!(r.out.contains("broke the lock held by tester"), "{}", r.out);
    let r = cli(&["history", "deploy/shop/web"], b).await;
    assert!(
        r.out.contains("RestartLockForceReleased") && r.out.contains("Restarted"),
        "{}",
        r.out
    );

    let r = cli(&["nodes"], b).await;
    assert!(r.out.starts_with("NODE"), "{}", r.out);
    assert_eq!(r.out.lines().count(), 4, "{}", r.out);
    assert_eq!(cli(&["fleet", "pause", "default"], b).await.exit, Exit::Ok);
    let lease = sim.lease("restart-manager", "fleetlock-default").unwrap();
    assert_eq!(lease.annotations["restart-manager.io/paused"], "true");
    assert_eq!(cli(&["fleet", "resume", "default"], b).await.exit, Exit::Ok);
    let r = cli(&["nodes", "-o", "json"], b).await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r.out)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn offline_commands() {
    let r = cli(&["zincati-id", "0123456789abcdef0123456789abcdef"], None).await;
    assert_eq!(
        (r.exit, r.out.as_str()),
        (Exit::Ok, "583627a932274834a8ebd99f4ed41c0d\n")
    );
    let r = cli(&["zincati-id", "nope"], None).await;
    assert_eq!(r.exit, Exit::Usage);
    let r = cli(&["completion", "bash"], None).await;
    assert!(
        r.out.contains("_restartctl") && r.out.contains("restart"),
        "completions are generated"
    );
}

// === server mode ===

struct Server {
    url: String,
    sim: SimCluster,
}

async fn server() -> Server {
    let sim = cluster();
    let mut settings = Settings::new(
        FleetLockConfig::default(),
        Allowlist::new(services()).unwrap(),
    );
    settings.auth = Auth {
        authenticator: Authenticator::Tokens(
            parse_tokens(&format!("{ADMIN},root,0,\"ops\"\n{DEV},dev,1\n")).unwrap(),
        ),
        admins: vec!["group:ops".into()],
        viewers: vec![],
        allowed_origins: vec![],
    };
    let app = Arc::new(
        restart_manager::build(Arc::new(sim.clone()), Arc::new(sim.clone()), settings).unwrap(),
    );
    tokio::spawn({
        let app = app.clone();
        async move { app.run().await }
    });
    app.restarter.wait_ready().await;
    app.fleetlock.wait_ready().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let service = app
        .router
        .clone()
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
    Server {
        url: format!("http://{addr}"),
        sim,
    }
}

async fn remote(s: &Server, token: Option<&str>, args: &[&str]) -> Ran {
    let mut argv = vec!["--server", s.url.as_str()];
    if let Some(t) = token {
        argv.extend(["--token", t]);
    }
    argv.extend(args);
    cli(&argv, None).await
}

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

#[tokio::test]
async fn without_a_kubeconfig_the_binary_says_what_to_do() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_restartctl"))
        .arg("list")
        .env_remove("RESTARTCTL_SERVER")
        .env("HOME", "/nonexistent")
        .env("KUBECONFIG", "/nonexistent/config")
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no cluster configuration")
            && err.contains("hint: pass --kubeconfig, or --server"),
        "{err}"
    );
    assert!(!err.contains("panicked"));

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_restartctl"))
        .args(["restart"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}
