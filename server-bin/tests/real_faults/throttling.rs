//! A restart and a reboot while the API server's priority and fairness throttles the server.

use super::*;

/// `kubectl ARGS...` as the cluster's admin, `stdin` on its input; its stdout.
fn kubectl(args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let mut child = std::process::Command::new(kubectl)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl ($KUBECTL)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a throttling test changed outside its namespace, put back when dropped: the API
/// server started again without the tiny in-flight limits, the cluster-scoped objects deleted.
struct Restore {
    cluster_scoped: Vec<String>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let mut args = vec!["delete", "--ignore-not-found"];
        args.extend(self.cluster_scoped.iter().map(String::as_str));
        let _ = std::panic::catch_unwind(|| kubectl(&args, ""));
        let _ = std::panic::catch_unwind(|| cluster(&["restart-apiserver"]));
    }
}

/// The API server restarted with a tiny `--max-requests-inflight`, the server's
/// ServiceAccount given a priority level of its own with one seat and queues of two (API
/// priority and fairness; an admin's requests are exempt from both). A load from another
/// ServiceAccount of the same level keeps the seat busy and is answered 429 when its queues
/// are full; the server's own bursts (its lists and watches at start) meet 429s too. A
/// workload restart and a FleetLock cycle through it still complete: it waits as each
/// Retry-After says and tries again, and the level's fair queuing gives it its turns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a disposable real cluster whose API server it restarts; see the file's doc"]
async fn a_restart_and_a_reboot_complete_while_priority_and_fairness_throttles() {
    let client = client().await;
    let scratch = Scratch::new(&client, "rm-apf").await;
    let ns = scratch.name.clone();
    let id = std::process::id();
    let (level, schema, binding) = (
        format!("rm-apf-{id}"),
        format!("rm-apf-{id}"),
        format!("rm-apf-{id}"),
    );
    let _restore = Restore {
        cluster_scoped: vec![
            format!("flowschema/{schema}"),
            format!("prioritylevelconfiguration/{level}"),
            format!("clusterrolebinding/{binding}"),
        ],
    };
    kubectl(&["create", "serviceaccount", "-n", &ns, "rm"], "");
    kubectl(&["create", "serviceaccount", "-n", &ns, "load"], "");
    kubectl(
        &[
            "create",
            "rolebinding",
            "-n",
            &ns,
            "load",
            "--clusterrole=view",
            &format!("--serviceaccount={ns}:load"),
        ],
        "",
    );
    kubectl(
        &[
            "create",
            "clusterrolebinding",
            &binding,
            "--clusterrole=cluster-admin",
            &format!("--serviceaccount={ns}:rm"),
        ],
        "",
    );
    kubectl(
        &["apply", "-f", "-"],
        &json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration",
             "metadata": {"name": level},
             "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 1,
                      "lendablePercent": 0, "limitResponse": {"type": "Queue",
                      "queuing": {"queues": 16, "handSize": 2, "queueLengthLimit": 2}}}}},
            {"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
             "metadata": {"name": schema},
             "spec": {"priorityLevelConfiguration": {"name": level}, "matchingPrecedence": 500,
                      "distinguisherMethod": {"type": "ByUser"},
                      "rules": [{"subjects": [{"kind": "ServiceAccount",
                                               "serviceAccount": {"name": "rm", "namespace": ns}},
                                              {"kind": "ServiceAccount",
                                               "serviceAccount": {"name": "load", "namespace": ns}}],
                                 "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"],
                                                    "resources": ["*"], "clusterScope": true,
                                                    "namespaces": ["*"]}],
                                 "nonResourceRules": [{"verbs": ["*"],
                                                       "nonResourceURLs": ["*"]}]}]}}
        ]})
        .to_string(),
    );
    let token = kubectl(&["create", "token", "-n", &ns, "rm"], "")
        .trim()
        .to_string();
    let load_token = kubectl(&["create", "token", "-n", &ns, "load"], "")
        .trim()
        .to_string();
    let kubeconfig = TempFile(std::env::temp_dir().join(format!("{ns}-rm.kubeconfig")));
    let server =
        std::env::var("RM_CLUSTER_SERVER").expect("RM_CLUSTER_SERVER (scripts/cluster env)");
    let ca = std::env::var("RM_CLUSTER_CA").expect("RM_CLUSTER_CA (scripts/cluster env)");
    std::fs::write(
        &kubeconfig.0,
        json!({
            "apiVersion": "v1", "kind": "Config", "current-context": "rm",
            "clusters": [{"name": "c", "cluster": {"server": server, "certificate-authority": ca}}],
            "users": [{"name": "rm", "user": {"token": token}}],
            "contexts": [{"name": "rm", "context": {"cluster": "c", "user": "rm", "namespace": ns}}]
        })
        .to_string(),
    )
    .unwrap();
    cluster(&[
        "restart-apiserver",
        "--max-requests-inflight=1",
        "--max-mutating-requests-inflight=1",
    ]);

    scratch.deployment_ready_for("web", 2, 1).await;
    available(&scratch, "web").await;

    // The load: the server's own identity listing pods, a few at a time, all along.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answers = Arc::new(Mutex::new(BTreeMap::<u16, usize>::new()));
    let load = tokio::spawn({
        let (stop, answers) = (stop.clone(), answers.clone());
        let http = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap(),
            )
            .build()
            .unwrap();
        let url = format!("{server}/api/v1/namespaces/{ns}/pods");
        async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let round = (0..8).map(|_| http.get(&url).bearer_auth(&load_token).send());
                for r in futures::future::join_all(round).await {
                    let code = r.map(|r| r.status().as_u16()).unwrap_or(0);
                    *answers.lock().unwrap().entry(code).or_insert(0) += 1;
                }
            }
        }
    });

    let rm = Replica::start_as("rm-apf", &ns, &kubeconfig.0).await;
    let web = format!("Deployment/{ns}/web");
    let started = reqwest::Client::new()
        .post(format!("{}/api/v1/service/{web}/restart", rm.url))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200, "{:?}", started.text().await);
    let (node, _) = two_nodes(&client, &ns, "web").await;
    let agent = NodeAgent::new(&client, &node, &rm.url, "default").await;
    agent.until_approved(FAULT_DEADLINE).await;
    let status = until("web's restart to end", async || {
        let s = rm.service(&web).await;
        (s["lock"].is_null() && !s["lastRestart"]["outcome"].is_null()).then_some(s)
    })
    .await;
    assert_eq!(status["lastRestart"]["outcome"], "complete", "{status}");
    assert!(agent.reboot(Reboot::Short, grace()).await.allowed());
    until("the slot's release", async || {
        slot_holders(&client, &ns).await.is_empty().then_some(())
    })
    .await;
    assert!(!agent.view().await.cordoned);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.await.unwrap();

    let answers = answers.lock().unwrap().clone();
    eprintln!(
        "the load's answers by status: {answers:?}; the server's log lines of 429s: {}",
        rm.throttled()
    );
    assert!(
        answers.get(&429).copied().unwrap_or(0) > 0,
        "priority and fairness never answered 429: {answers:?}"
    );
    available(&scratch, "web").await;
}
