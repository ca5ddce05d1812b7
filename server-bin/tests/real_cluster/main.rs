//! The workload side of restart-manager judged by the real control plane: the real
//! `restart-manager` (and `restartctl`) against etcd, kube-apiserver, the controller manager,
//! the scheduler and KWOK's nodes from `scripts/cluster up` (docs/control-plane.md).
//!
//! - restarts of a Deployment, a StatefulSet and a DaemonSet rolled out by the real
//!   controllers, our outcome and sentence agreeing with `kubectl rollout status`, and their
//!   Events in `kubectl describe`;
//! - the restart-only RBAC verb through real TokenReviews and SubjectAccessReviews of
//!   ServiceAccount tokens made for the `restart-manager` audience (and `/metrics` behind
//!   `get` on the non-resource URL);
//! - the least-privilege install (`restart-manager rbac`) enforced by real RBAC;
//! - restarts on changes to real ConfigMaps and Secrets;
//! - the kustomize example and the rendered Helm chart applied for real: schemas, and Pod
//!   Security admission (`restricted`) admitting the Deployment's pods.
//!
//! They need a cluster, so plain `cargo test` skips them (ignored). To run them:
//!
//! ```sh
//! export RM_CLUSTER_DIR=/tmp/rm-cluster-mine
//! scripts/cluster up && eval "$(scripts/cluster env)"
//! cargo build -p cli-bin --bin restartctl
//! HELM="$(scripts/install-helm)" cargo test -p server-bin --test real_cluster -- --ignored
//! scripts/cluster down
//! ```
//!
//! Each test works in namespaces of its own (`rm-real-…`) and deletes what it made.

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod config_changes;
mod install;
mod rbac;
mod rollouts;
mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::send;
use serde_json::Value;
use server::{get, post, restartctl_run, send_patiently, start, status, until, workload};

/// How long any one condition may take on the real cluster.
const DEADLINE: Duration = Duration::from_secs(90);

const NEEDS: &str = "needs a real cluster: scripts/cluster up, eval \"$(scripts/cluster env)\", \
                     then cargo test -p server-bin --test real_cluster -- --ignored";

// === the cluster ===

/// The cluster from `scripts/cluster env`: its admin kubeconfig and kubectl.
struct Real {
    kubeconfig: PathBuf,
    kubectl: PathBuf,
}

fn real() -> Real {
    let var = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("{name} is not set: {NEEDS}"))
    };
    let real = Real {
        kubeconfig: var("KUBECONFIG"),
        kubectl: var("KUBECTL"),
    };
    let out = real.kubectl(&["get", "--raw", "/readyz"]);
    assert!(
        out.status.success(),
        "the cluster in KUBECONFIG is not ready ({NEEDS}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    real
}

impl Real {
    fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_with(args, None)
    }

    fn kubectl_with(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(&self.kubectl)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        if let Some(text) = stdin {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// kubectl that must succeed: its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl apply --server-side` of YAML, which must be accepted (schemas are checked
    /// strictly: an unknown field is an error).
    fn apply(&self, yaml: &str) -> String {
        let out = self.kubectl_with(
            &[
                "apply",
                "--server-side",
                "--field-manager=rm-real",
                "-f",
                "-",
            ],
            Some(yaml),
        );
        assert!(
            out.status.success(),
            "kubectl apply: {}\n{yaml}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// A token for ServiceAccount `sa` in `ns` from the TokenRequest API, for `audience`
    /// (the API server's own when `None`).
    fn token(&self, ns: &str, sa: &str, audience: Option<&str>) -> String {
        let mut args = vec!["create", "token", sa, "-n", ns];
        if let Some(a) = audience {
            args.extend(["--audience", a]);
        }
        self.ok(&args).trim().to_string()
    }

    /// What `kubectl rollout status` says of `what` right now (no waiting).
    fn rollout_status(&self, ns: &str, what: &str) -> String {
        self.ok(&["rollout", "status", "-n", ns, what, "--watch=false"])
            .trim()
            .to_string()
    }

    /// Waits (bounded) until kubectl says `what` rolled out.
    fn wait_rolled_out(&self, ns: &str, what: &str) {
        self.ok(&["rollout", "status", "-n", ns, what, "--timeout=90s"]);
    }

    /// A kubeconfig that presents `token` to this cluster, written into `dir`.
    fn kubeconfig_for(&self, token: &str, dir: &Path) -> PathBuf {
        let admin = self.json(&["config", "view", "--raw", "--minify"]);
        let cluster = &admin["clusters"][0]["cluster"];
        let text = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "real", "cluster": cluster}],
            "users": [{"name": "sa", "user": {"token": token}}],
            "contexts": [{"name": "sa", "context": {"cluster": "real", "user": "sa"}}],
            "current-context": "sa",
        });
        let path = dir.join("service-account.kubeconfig");
        std::fs::write(&path, text.to_string()).unwrap();
        path
    }
}

/// Objects a test made, deleted when it ends whatever happened: namespaces (with all in
/// them) and cluster-scoped objects (`clusterrole/NAME`).
struct Made<'a> {
    real: &'a Real,
    namespaces: Vec<String>,
    cluster_scoped: Vec<String>,
    /// Wait until they are gone (namespaces whose names others may use next).
    wait: bool,
    dir: PathBuf,
}

impl<'a> Made<'a> {
    fn new(real: &'a Real, test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rm-real-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Made {
            real,
            namespaces: Vec::new(),
            cluster_scoped: Vec::new(),
            wait: false,
            dir,
        }
    }

    /// A namespace of this test's own, `rm-real-<what>-<pid>`, with `labels`.
    fn namespace(&mut self, what: &str, labels: &[(&str, &str)]) -> String {
        let name = format!("rm-real-{what}-{}", std::process::id());
        let labels: serde_json::Map<String, Value> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect();
        self.real.apply(
            &serde_json::json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "labels": labels},
            })
            .to_string(),
        );
        self.namespaces.push(name.clone());
        name
    }

    /// A file in this test's temporary directory.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Made<'_> {
    fn drop(&mut self) {
        let mut gone: Vec<&str> = self.cluster_scoped.iter().map(String::as_str).collect();
        let namespaces: Vec<String> = self
            .namespaces
            .iter()
            .map(|n| format!("namespace/{n}"))
            .collect();
        gone.extend(namespaces.iter().map(String::as_str));
        if !gone.is_empty() {
            let wait = if self.wait {
                "--wait=true"
            } else {
                "--wait=false"
            };
            let mut args = vec!["delete", "--ignore-not-found", wait, "--timeout=90s"];
            args.extend(gone);
            let _ = self.real.kubectl(&args);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The pod template's `kubectl.kubernetes.io/restartedAt`, if any.
fn restarted_at(real: &Real, ns: &str, what: &str) -> Option<String> {
    real.json(&["get", "-n", ns, what])["spec"]["template"]["metadata"]["annotations"]
        ["kubectl.kubernetes.io/restartedAt"]
        .as_str()
        .map(String::from)
}

/// The Events section of `kubectl describe`.
fn described_events(real: &Real, ns: &str, what: &str) -> String {
    let text = real.ok(&["describe", "-n", ns, what]);
    text.split_once("\nEvents:")
        .map(|(_, events)| events.to_string())
        .unwrap_or_else(|| panic!("no Events in kubectl describe {what}:\n{text}"))
}
