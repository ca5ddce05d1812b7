//! Every command, directly on a simulated cluster and through an in-process server, with the
//! failures and exit codes a script would see.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use cluster_api::{Node, WorkloadKind, WorkloadRef};
use cluster_sim::{SimCluster, WorkloadSpec, machine_id_for};
use fleetlock_core::FleetLockConfig;
use manager_config::FileConfig;
use restart_core::{Allowlist, Identity, ServiceEntry};
use restart_manager::Settings;
use restart_manager::auth::{Auth, Authenticator, parse_tokens};
use restartctl::backend::{Backend, Exit};
use restartctl::direct::{Direct, Follow};
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
        .map(|n| ServiceEntry::new(WorkloadRef::new(WorkloadKind::Deployment, "shop", n)))
        .chain([ServiceEntry {
            description: Some("the database".into()),
            schedule: Some(restart_core::schedule::Schedule::new(
                cluster_api::cron::Cron::parse("0 3 * * *", None).unwrap(),
            )),
            ..ServiceEntry::new(WorkloadRef::new(WorkloadKind::StatefulSet, "shop", "db"))
        }])
        .collect()
}

/// `shop`: web, then db. `fragile`: broken (its rollout fails), then web.
fn set_entries() -> Vec<restart_core::sets::SetEntry> {
    let set = |name: &str, members: &[&str]| restart_core::sets::SetEntry {
        name: name.into(),
        description: None,
        members: members.iter().map(|m| m.to_string()).collect(),
        concurrency: 1,
        on_failure: restart_core::sets::OnFailure::Stop,
        schedule: None,
    };
    vec![
        set("shop", &["Deployment/shop/web", "StatefulSet/shop/db"]),
        set(
            "fragile",
            &["Deployment/shop/broken", "Deployment/shop/web"],
        ),
    ]
}

/// restartctl in direct mode, following what a `--wait` of its command would.
fn direct(sim: &SimCluster, follow: Follow) -> Direct {
    let config = FileConfig {
        services: services(),
        restart_sets: set_entries(),
        fleetlock: FleetLockConfig::default(),
        ..FileConfig::default()
    };
    Direct::start(
        Arc::new(sim.clone()),
        Arc::new(sim.clone()),
        config,
        Identity::user("tester"),
        follow,
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
    settings.sets = restart_core::sets::check_sets(set_entries(), &settings.allowlist).unwrap();
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

mod direct;
mod server;
mod sets;
