//! The least-privilege install (`restart-manager rbac`) enforced by real RBAC.

use super::*;

/// The least-privilege install on real RBAC: the server runs as a ServiceAccount holding
/// exactly what `restart-manager rbac` prints for its configuration; it starts, syncs its
/// watches and restarts its allowlisted Deployment. With one Deployment more in the
/// allowlist than those Roles cover, it refuses to start and names the right it lacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (scripts/cluster up; see the file's doc)"]
async fn a_least_privilege_install_is_enforced_by_real_rbac() {
    let real = real();
    let mut made = Made::new(&real, "narrow");
    let home = made.namespace("narrow-home", &[]);
    let apps = made.namespace("narrow-apps", &[]);
    real.apply(&workload("Deployment", &apps, "web", 1, Value::Null));
    real.apply(&workload("Deployment", &apps, "other", 1, Value::Null));
    real.ok(&["create", "serviceaccount", "rm", "-n", &home]);
    let config = format!("services:\n  - {{kind: Deployment, name: web, namespace: {apps}}}\n");
    let config_path = made.file("narrow.yaml", &config);

    // The project's own rendering of the RBAC for this configuration.
    let name = format!("rm-real-narrow-{}", std::process::id());
    made.cluster_scoped.push(format!("clusterrole/{name}"));
    made.cluster_scoped
        .push(format!("clusterrolebinding/{name}"));
    let rbac = Command::new(env!("CARGO_BIN_EXE_restart-manager"))
        .arg("--config")
        .arg(&config_path)
        .args([
            "rbac",
            "--namespace",
            &home,
            "--service-account",
            "rm",
            "--name",
            &name,
        ])
        .output()
        .unwrap();
    assert!(
        rbac.status.success(),
        "{}",
        String::from_utf8_lossy(&rbac.stderr)
    );
    real.apply(&String::from_utf8(rbac.stdout).unwrap());
    real.wait_rolled_out(&apps, "deployment/web");

    let token = real.token(&home, "rm", None);
    let kubeconfig = real.kubeconfig_for(&token, &made.dir);
    let server = start(&made, "rm-real-narrow", &kubeconfig, &config, &home, &[]).await;
    let (code, _, body) = send(
        server.addr,
        &post(
            &format!("/api/v1/service/Deployment/{apps}/web/restart"),
            None,
        ),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let web = until("the narrowed restart to roll out", async || {
        let s = status(server.addr, &format!("Deployment/{apps}/web")).await;
        (s["lastRestart"]["outcome"] == "complete").then_some(s)
    })
    .await;
    assert_eq!(
        web["message"],
        real.rollout_status(&apps, "deployment/web").as_str()
    );
    drop(server);

    // One workload more than the Roles cover: refused at start, naming the missing right.
    let wider = made.file(
        "wider.yaml",
        &format!("{config}  - {{kind: Deployment, name: other, namespace: {apps}}}\n"),
    );
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_restart-manager"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--config")
        .arg(&wider)
        .args(["--listen", "127.0.0.1:0", "--fleetlock-listen", "same"])
        .args(["--pod-namespace", &home, "--log-format", "json"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(DEADLINE, out)
        .await
        .expect("it stops at start-up")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it started: {stderr}");
    assert!(
        stderr.contains(&format!("patch deployments.apps other in namespace {apps}")),
        "{stderr}"
    );
    assert!(stderr.contains("restart-manager rbac"), "{stderr}");
}
