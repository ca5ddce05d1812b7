//! restartctl in direct mode (its own kubeconfig), offline, and without a kubeconfig.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_mode_lists_restarts_waits_and_refuses() {
    let sim = cluster();
    let d = direct(&sim, Follow::Nothing);
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
        Some(&direct(&sim, Follow::Workload(deploy("web")))),
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
        Some(&direct(&sim, Follow::Workload(deploy("broken")))),
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
    let d = direct(&sim, Follow::Nothing);
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

    // The drain a node would get: a pod no controller would bring back stops it (exit 7,
    // as a pre-reboot would be refused), named in the plan.
    sim.add_pod(cluster_api::Pod::new("default", "debug-shell").on("n3"))
        .unwrap();
    let r = cli(&["plan", "node", "n3"], b).await;
    assert_eq!(r.exit, Exit::FleetLockRefused, "{}{}", r.out, r.err);
    assert!(
        r.out
            .starts_with("BLOCKED the drain of n3 could not finish"),
        "{}",
        r.out
    );
    assert!(r.out.contains("default/debug-shell"), "{}", r.out);
    let r = cli(&["plan", "node", "nope"], b).await;
    assert_eq!(r.exit, Exit::NotFound, "{}", r.err);
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

/// `restart --dry-run` prints what would happen and restarts nothing; a refusal exits 4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_prints_the_plan_and_changes_nothing() {
    let sim = cluster();
    let d = direct(&sim, Follow::Nothing);
    let b: Option<&dyn Backend> = Some(&d);
    let r = cli(&["restart", "deployment/web", "-n", "shop", "--dry-run"], b).await;
    assert_eq!(r.exit, Exit::Ok, "{}{}", r.out, r.err);
    assert!(
        r.out
            .starts_with("a restart of Deployment/shop/web would go ahead:"),
        "{}",
        r.out
    );
    assert!(r.out.contains("Pods it would replace"), "{}", r.out);
    assert!(
        r.out.trim_end().ends_with("(dry run: nothing was changed)"),
        "{}",
        r.out
    );
    assert!(
        sim.lease("restart-manager", "restart.deployment.shop.web")
            .is_none_or(|l| !l
                .annotations
                .contains_key("restart-manager.io/restarted-by")),
        "no lock taken"
    );

    // Locked by someone else: the plan says so, and the exit code is a refusal's.
    let r = cli(
        &["restart", "deployment/web", "-n", "shop", "--reason", "r"],
        b,
    )
    .await;
    assert_eq!(r.exit, Exit::Ok, "{}", r.err);
    let r = cli(
        &[
            "restart",
            "deployment/web",
            "-n",
            "shop",
            "--dry-run",
            "-o",
            "json",
        ],
        b,
    )
    .await;
    assert_eq!(r.exit, Exit::Refused, "{}{}", r.out, r.err);
    let plan: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(plan["refusal"]["kind"], "locked");
    assert_eq!(plan["lock"]["holder"], "tester");

    let r = Cli::try_parse_from([
        "restartctl",
        "restart",
        "deployment/web",
        "--dry-run",
        "--wait",
    ]);
    assert!(r.is_err(), "--dry-run and --wait do not go together");
}

/// `restart --wait` in direct mode follows the rollout it started, and does nothing else a
/// leader does: it restarts no workload on its schedule and drives no set's run (a server's
/// leader does those, once), whatever it finds due or going on.
#[tokio::test(start_paused = true)]
async fn direct_mode_waits_for_its_restart_and_acts_as_no_leader() {
    let sim = cluster();
    let web = WorkloadRef::new(WorkloadKind::Deployment, "shop", "web");
    let db = WorkloadRef::new(WorkloadKind::StatefulSet, "shop", "db");
    let config = || FileConfig {
        services: vec![
            ServiceEntry {
                schedule: Some(restart_core::schedule::Schedule::new(
                    cluster_api::cron::Cron::parse("* * * * *", None).unwrap(),
                )),
                ..ServiceEntry::new(web.clone())
            },
            ServiceEntry::new(db.clone()),
        ],
        restart_sets: vec![restart_core::sets::SetEntry {
            name: "shop".into(),
            description: None,
            members: vec![web.to_string(), db.to_string()],
            concurrency: 1,
            on_failure: restart_core::sets::OnFailure::Stop,
            schedule: None,
        }],
        fleetlock: FleetLockConfig::default(),
        ..FileConfig::default()
    };
    let start = |follow| {
        Direct::start(
            Arc::new(sim.clone()),
            Arc::new(sim.clone()),
            config(),
            Identity::user("tester"),
            follow,
        )
        .unwrap()
    };
    // Someone started a run of the set (its driver is the server's leader, down just now).
    let other = start(Follow::Nothing);
    let r = cli(&["restart", "set", "shop"], Some(&other)).await;
    assert_eq!(r.exit, Exit::Ok, "{}{}", r.out, r.err);

    let d = start(Follow::Workload(db.clone()));
    let r = cli(&["restart", "sts/shop/db", "--wait"], Some(&d)).await;
    assert_eq!(r.exit, Exit::Ok, "{}{}", r.out, r.err);
    assert!(r.out.contains("partitioned roll out complete"), "{}", r.out);
    // A minute on, with web due every minute and the set's run waiting for a driver.
    tokio::time::sleep(std::time::Duration::from_secs(90)).await;
    let restarted: Vec<String> = sim
        .events()
        .into_iter()
        .filter(|e| e.reason == "Restarted" && e.reporting_controller == restart_core::CONTROLLER)
        .map(|e| format!("{}: {}", e.regarding.name, e.note))
        .collect();
    assert_eq!(restarted, ["db: restarted by tester"]);
    assert!(
        sim.lease("restart-manager", "restart-schedule.deployment.shop.web")
            .is_none(),
        "no due time claimed"
    );
}

fn deploy(name: &str) -> WorkloadRef {
    WorkloadRef::new(WorkloadKind::Deployment, "shop", name)
}
