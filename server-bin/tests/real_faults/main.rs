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

#[path = "../common/mod.rs"]
mod common;

mod killed_replica;
mod throttling;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::agent::{NodeAgent, Reboot, nodes_running, schedulable_nodes};
use common::real::{Scratch, TempFile, approvals, refused_as, slot_holders};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
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
    let running = nodes_running(client, namespace, app).await;
    let mut names = schedulable_nodes(client).await;
    assert!(
        names.len() >= 3,
        "3 schedulable KWOK nodes are needed: {HOW}"
    );
    names.sort_by_key(|n| !running.contains(n));
    (names[0].clone(), names[1].clone())
}

fn grace() -> Duration {
    std::env::var("RM_CLUSTER_NODE_GRACE_PERIOD")
        .ok()
        .and_then(|g| fleetlock_core::config::parse_duration(&g).ok())
        .unwrap_or(Duration::from_secs(20))
}
