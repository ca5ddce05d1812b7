//! Faults from the real control plane (issue 28, item 6), against the real `restart-manager`
//! binary on the cluster `scripts/cluster up` starts: while a drain and a workload restart are
//! under way, the replica serving them is SIGKILLed, the API server alone is restarted (every
//! watch breaks) and etcd is compacted (watches resumed from before get 410 Gone). What a user
//! would notice must hold: the drain completes and is approved exactly once, no second node of
//! the one-slot group is let go meanwhile, the restart ends with its outcome said and its lock
//! released, the surviving replica is ready again once the API server is back, and its
//! watches recover by resuming, listing again once at most each (no relist storm).
//!
//! Ignored by default: it needs a disposable real cluster with KWOK's fake nodes, whose API
//! server it restarts (`scripts/cluster restart-apiserver`, `scripts/cluster compact`):
//!
//! ```sh
//! export RM_CLUSTER_DIR=/tmp/rm-cluster-mine
//! scripts/cluster up && eval "$(scripts/cluster env)"
//! cargo test -p server-bin --test real_faults -- --ignored --test-threads=1
//! ```
//!
//! `scripts/real-faults MINUTES` repeats these faults for longer and prints the figures
//! (docs/reliability.md).

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::agent::{KWOK_LABEL, NodeAgent, Reboot};
use common::real::{Scratch, TempFile, approvals, refused_as, slot_holders};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node as KubeNode, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const HOW: &str = "export RM_CLUSTER_DIR=/tmp/rm-cluster-mine; scripts/cluster up && \
                   eval \"$(scripts/cluster env)\" && cargo test -p server-bin --test real_faults \
                   -- --ignored --test-threads=1";

fn client_env() -> (std::path::PathBuf, String) {
    let kubeconfig = std::env::var_os("KUBECONFIG")
        .unwrap_or_else(|| panic!("KUBECONFIG names no cluster; to run these tests: {HOW}"));
    let dir = std::env::var("RM_CLUSTER_DIR").unwrap_or_else(|_| {
        panic!("RM_CLUSTER_DIR names no cluster of scripts/cluster; to run these tests: {HOW}")
    });
    (kubeconfig.into(), dir)
}

async fn client() -> kube::Client {
    let (kubeconfig, _) = client_env();
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig).expect("the kubeconfig"),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("a client config");
    kube::Client::try_from(config).expect("a client")
}

/// `scripts/cluster ARGS...` on this test's cluster; its stdout.
fn cluster(args: &[&str]) -> String {
    let (_, dir) = client_env();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/cluster");
    let out = std::process::Command::new(script)
        .args(args)
        .env("RM_CLUSTER_DIR", dir)
        .stdin(Stdio::null())
        .output()
        .expect("scripts/cluster");
    assert!(
        out.status.success(),
        "scripts/cluster {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until `name` in `scratch` has all its replicas updated and available.
async fn available(scratch: &Scratch, name: &str) {
    let api: Api<Deployment> = Api::namespaced(scratch.client.clone(), &scratch.name);
    until(&format!("{name} available"), async || {
        let d = api.get(name).await.ok()?;
        let want = d.spec.as_ref()?.replicas.unwrap_or(1);
        let status = d.status?;
        (status.available_replicas.unwrap_or(0) >= want
            && status.updated_replicas.unwrap_or(0) >= want
            && status.replicas.unwrap_or(0) == want)
            .then_some(())
    })
    .await;
}

/// How long any one wait here may take: after a SIGKILL the survivor waits out the dead
/// replica's leader Lease, and after an API server restart every watch lists again; cycles
/// took 25-109 s on 2 shared cores, so the bound leaves room.
const FAULT_DEADLINE: Duration = Duration::from_secs(300);

/// Polls until `check` says yes, bounded by [`FAULT_DEADLINE`].
async fn until<T>(what: &str, check: impl AsyncFnMut() -> Option<T>) -> T {
    common::until_within(what, FAULT_DEADLINE, check).await
}

/// The real `restart-manager`, its Leases in `namespace`, allowed to restart `web` there; its
/// log lines kept, to count its watches' relists. Killed when dropped.
struct Replica {
    child: tokio::process::Child,
    url: String,
    log: Arc<Mutex<Vec<String>>>,
    _config: TempFile,
}

impl Replica {
    async fn start(name: &str, namespace: &str) -> Self {
        let (kubeconfig, _) = client_env();
        Self::start_as(name, namespace, &kubeconfig).await
    }

    async fn start_as(name: &str, namespace: &str, kubeconfig: &std::path::Path) -> Self {
        let config = TempFile(std::env::temp_dir().join(format!("{namespace}-{name}.yaml")));
        std::fs::write(
            &config.0,
            format!(
                "services:\n  - {{kind: Deployment, name: web, namespace: {namespace}}}\n\
                 fleetlock:\n  drain:\n    requestWait: 2s\n    budgetRetry: 1s\n    \
                 retryInitial: 1s\n    retryMax: 2s\n    deleteEmptyDirData: true\n    \
                 preflight: false\n"
            ),
        )
        .unwrap();
        let port = common::free_port();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_restart-manager"))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--config")
            .arg(&config.0)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--log-format", "json", "--fleetlock-listen", "same"])
            .args(["--pod-namespace", namespace])
            .env("POD_NAME", name)
            .kill_on_drop(true)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn restart-manager");
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::spawn({
            let log = log.clone();
            async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    log.lock().unwrap().push(line);
                }
            }
        });
        let url = format!("http://127.0.0.1:{port}");
        let replica = Replica {
            child,
            url,
            log,
            _config: config,
        };
        until(&format!("{name}'s /readyz"), async || {
            replica.ready().await.then_some(())
        })
        .await;
        replica
    }

    async fn ready(&self) -> bool {
        reqwest::get(format!("{}/readyz", self.url))
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    /// How many of its log lines tell of an answer 429 from the API server.
    fn throttled(&self) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("429") || l.to_lowercase().contains("too many requests"))
            .count()
    }

    /// How many times each watch listed again (after a 410), by the watch's URL; the reasons
    /// given, for the test's output.
    fn relists(&self) -> (BTreeMap<String, usize>, Vec<String>) {
        let (mut by_watch, mut reasons) = (BTreeMap::new(), Vec::new());
        for line in self.log.lock().unwrap().iter() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let fields = v.get("fields").unwrap_or(&v);
            if fields["message"] == "listing again" {
                let watch = fields["watch"].as_str().unwrap_or("?").to_string();
                reasons.push(format!("{watch}: {}", fields["reason"]));
                *by_watch.entry(watch).or_insert(0) += 1;
            }
        }
        (by_watch, reasons)
    }

    async fn sigkill(mut self) {
        self.child.kill().await.unwrap();
    }

    async fn service(&self, workload: &str) -> Value {
        let r = reqwest::get(format!("{}/api/v1/service/{workload}", self.url))
            .await
            .unwrap();
        r.json().await.unwrap_or(Value::Null)
    }
}

/// Two schedulable KWOK nodes, the first one running a pod of `app`.
async fn two_nodes(client: &kube::Client, namespace: &str, app: &str) -> (String, String) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let running: Vec<String> = pods
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|p| p.spec.and_then(|s| s.node_name))
        .collect();
    let nodes: Api<KubeNode> = Api::all(client.clone());
    let mut names: Vec<String> = nodes
        .list(&ListParams::default().labels(&format!("{KWOK_LABEL}=fake")))
        .await
        .unwrap()
        .into_iter()
        .filter(|n| {
            !n.spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false)
        })
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(
        names.len() >= 3,
        "3 schedulable KWOK nodes are needed: {HOW}"
    );
    names.sort_by_key(|n| !running.contains(n));
    (names[0].clone(), names[1].clone())
}

/// A drain held by a real budget and a workload restart, both through replica a; a is
/// SIGKILLed, the API server restarted, etcd compacted. Replica b finishes both, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a disposable real cluster whose API server it restarts; see the file's doc"]
async fn a_drain_and_a_restart_survive_a_killed_replica_an_api_server_restart_and_compaction() {
    let client = client().await;
    let t0 = std::time::Instant::now();
    let phase = |what: &str| eprintln!("{:>6.1} s: {what}", t0.elapsed().as_secs_f64());
    let scratch = Scratch::new(&client, "rm-faults").await;
    let ns = scratch.name.clone();
    // A budget that keeps both of db's pods: the drain waits until db is scaled up. web's
    // rollouts take a while (minReadySeconds), so that its restart is under way at the kill.
    scratch.deployment("db", 2).await;
    scratch.budget("db", 2).await;
    scratch.deployment_ready_for("web", 2, 5).await;
    available(&scratch, "db").await;
    available(&scratch, "web").await;
    let (a, b) = (
        Replica::start("rm-faults-a", &ns).await,
        Replica::start("rm-faults-b", &ns).await,
    );
    phase("replicas ready");
    let (first, second) = two_nodes(&client, &ns, "db").await;
    let one = NodeAgent::new(&client, &first, &a.url, "default").await;
    let two = NodeAgent::new(&client, &second, &b.url, "default").await;
    let approved_before = (
        approvals(&client, &first).await,
        approvals(&client, &second).await,
    );

    // Under way through a: the first node's drain (held by the budget) and web's restart.
    refused_as(
        &one.pre_reboot().await,
        "draining",
        "a drain the budget holds",
    );
    refused_as(&two.pre_reboot().await, "lock_held", "the second node");
    let web = format!("Deployment/{ns}/web");
    let started = reqwest::Client::new()
        .post(format!("{}/api/v1/service/{web}/restart", a.url))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200, "{:?}", started.text().await);

    phase("drain and restart under way");
    // The faults: a dies mid-drain and mid-restart; the API server restarts (every watch of
    // b breaks); etcd is compacted, so that b's watches resumed from before get 410.
    a.sigkill().await;
    cluster(&["restart-apiserver"]);
    cluster(&["compact"]);
    until("b's /readyz after the API server's restart", async || {
        b.ready().await.then_some(())
    })
    .await;
    phase("b ready after the faults");
    refused_as(
        &two.pre_reboot().await,
        "lock_held",
        "the second node after the faults",
    );

    // The budget makes room; b resumes the drain from the group Lease and approves it once.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deployments
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    let one = one.via(&b.url);
    one.until_approved(FAULT_DEADLINE).await;
    refused_as(
        &two.pre_reboot().await,
        "lock_held",
        "while the first is approved",
    );

    phase("first node approved");
    // web's restart ends, said by b, its lock released; web is whole.
    let status = until("web's restart to end, as b tells it", async || {
        let s = b.service(&web).await;
        (s["lock"].is_null() && !s["lastRestart"]["outcome"].is_null()).then_some(s)
    })
    .await;
    assert_eq!(status["lastRestart"]["outcome"], "complete", "{status}");
    available(&scratch, "web").await;

    phase("web's restart ended");
    // The first node reboots and comes back; its slot is released; then the second's turn.
    assert!(one.reboot(Reboot::Short, grace()).await.allowed());
    until("the first slot's release", async || {
        slot_holders(&client, &ns).await.is_empty().then_some(())
    })
    .await;
    phase("first slot released");
    two.until_approved(FAULT_DEADLINE).await;
    assert!(two.reboot(Reboot::Short, grace()).await.allowed());
    until("the second slot's release", async || {
        slot_holders(&client, &ns).await.is_empty().then_some(())
    })
    .await;
    assert_eq!(
        (
            approvals(&client, &first).await,
            approvals(&client, &second).await
        ),
        (approved_before.0 + 1, approved_before.1 + 1),
        "each reboot approved exactly once"
    );
    assert!(!one.view().await.cordoned && !two.view().await.cordoned);

    phase("second slot released");
    // No relist storm: b's watches resumed across the restart and each listed again once at
    // most, for a 410. The restarted API server's watch cache starts at the current revision,
    // so a watch resumed from an older resourceVersion is too old even before the compaction.
    // Leases are watched four times (FleetLock groups, restart locks, sets, schedules).
    let (relists, reasons) = b.relists();
    eprintln!("relists of b's watches after the faults: {relists:?}; why: {reasons:#?}");
    assert!(
        relists
            .iter()
            .all(|(url, &n)| n <= if url.contains("/leases") { 4 } else { 2 }),
        "a watch listed again more than once: {relists:?}; why: {reasons:#?}"
    );
}

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

fn grace() -> Duration {
    std::env::var("RM_CLUSTER_NODE_GRACE_PERIOD")
        .ok()
        .and_then(|g| fleetlock_core::config::parse_duration(&g).ok())
        .unwrap_or(Duration::from_secs(20))
}
