//! Restarts of a Deployment, a StatefulSet and a DaemonSet rolled out by the real controllers.

use super::*;

/// A Deployment restarted through `restartctl --wait`, a StatefulSet and a DaemonSet through
/// the HTTP API, rolled out by the real controllers: when the server says complete, `kubectl
/// rollout status` says the same sentence; the pod template carries `restartedAt` as `kubectl
/// rollout restart` writes it; the restart's Events show in `kubectl describe`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (scripts/cluster up; see the file's doc)"]
async fn restarts_agree_with_kubectl_rollout_status() {
    let real = real();
    let mut made = Made::new(&real, "restarts");
    let ns = made.namespace("restarts", &[]);
    real.apply(&workload("Deployment", &ns, "web", 2, Value::Null));
    real.apply(&workload("StatefulSet", &ns, "db", 2, Value::Null));
    real.apply(&workload("DaemonSet", &ns, "agent", 0, Value::Null));
    real.wait_rolled_out(&ns, "deployment/web");
    real.wait_rolled_out(&ns, "statefulset/db");
    real.wait_rolled_out(&ns, "daemonset/agent");
    let config = format!(
        r#"
services:
  - {{kind: Deployment, name: web, namespace: {ns}}}
  - {{kind: StatefulSet, name: db, namespace: {ns}}}
  - {{kind: DaemonSet, name: agent, namespace: {ns}}}
"#
    );
    let server = start(
        &made,
        "rm-real-restarts",
        &real.kubeconfig,
        &config,
        &ns,
        &[],
    )
    .await;
    let url = format!("http://{}", server.addr);

    // The Deployment, through restartctl, which waits for our outcome.
    let out = restartctl_run(
        &[
            "--server",
            &url,
            "restart",
            &format!("Deployment/{ns}/web"),
            "--reason",
            "real cluster",
            "--wait",
            "--timeout",
            "90s",
        ],
        None,
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let web = status(server.addr, &format!("Deployment/{ns}/web")).await;
    assert_eq!(web["phase"], "complete", "{web}");
    let kubectl_says = real.rollout_status(&ns, "deployment/web");
    assert_eq!(web["message"], kubectl_says.as_str());
    assert!(said.contains(&kubectl_says), "{said}");
    let at = restarted_at(&real, &ns, "deployment/web").expect("restartedAt on the template");
    // kubectl writes time.Now().Format(time.RFC3339): seconds, no fraction.
    let parsed: jiff::Timestamp = at.parse().unwrap();
    assert_eq!(parsed.subsec_nanosecond(), 0, "{at}");
    let events = described_events(&real, &ns, "deployment/web");
    assert!(
        events.contains("Restarted") && events.contains("restarted by anonymous: real cluster"),
        "{events}"
    );
    assert!(
        events.contains("RolloutComplete") && events.contains(&kubectl_says),
        "{events}"
    );

    // The StatefulSet and the DaemonSet, through the HTTP API, followed until we say how
    // each ended.
    for (kind, name) in [("StatefulSet", "db"), ("DaemonSet", "agent")] {
        let workload = format!("{kind}/{ns}/{name}");
        let (code, _, body) = send(
            server.addr,
            &post(&format!("/api/v1/service/{workload}/restart"), None),
        )
        .await;
        assert_eq!(code, 200, "{body}");
        let s = until(&format!("the restart of {workload} to end"), async || {
            let s = status(server.addr, &workload).await;
            (s["lock"].is_null() && !s["lastRestart"]["outcome"].is_null()).then_some(s)
        })
        .await;
        assert_eq!(s["lastRestart"]["outcome"], "complete", "{s}");
        assert_eq!(s["phase"], "complete", "{s}");
        let what = format!("{}/{name}", kind.to_lowercase());
        assert_eq!(
            s["message"],
            real.rollout_status(&ns, &what).as_str(),
            "our sentence and kubectl's"
        );
        assert!(restarted_at(&real, &ns, &what).is_some());
        let events = described_events(&real, &ns, &what);
        assert!(
            events.contains("Restarted") && events.contains("RolloutComplete"),
            "{events}"
        );
    }
    let sts = real.json(&["get", "-n", &ns, "statefulset/db"]);
    assert_eq!(
        sts["status"]["currentRevision"], sts["status"]["updateRevision"],
        "the controller finished: {sts}"
    );
}
