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

#[path = "common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::process::start_with;
use common::{free_port, request, send};
use serde_json::Value;
use tokio::process::Child;

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

// === the workloads ===

/// A Deployment (or a StatefulSet, `kind`) of `replicas` pause pods, with `container`
/// merged into the pod spec's only container.
fn workload(kind: &str, ns: &str, name: &str, replicas: i32, container: Value) -> String {
    let mut c = serde_json::json!({"name": "app", "image": "registry.k8s.io/pause:3.10"});
    if let (Some(c), Value::Object(extra)) = (c.as_object_mut(), container.clone()) {
        c.extend(extra);
    }
    let mut spec = serde_json::json!({
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [c]},
        },
    });
    match kind {
        "StatefulSet" => spec["serviceName"] = Value::from(name),
        "DaemonSet" => _ = spec.as_object_mut().unwrap().remove("replicas"),
        _ => {}
    }
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    })
    .to_string()
}

// === the server ===

/// A restart-manager process, serving and ready, killed when dropped.
struct Running {
    addr: SocketAddr,
    _child: Child,
}

/// Starts the real binary with `kubeconfig` and `config`, its Leases in `lock_ns`, and waits
/// (bounded) until it is ready.
async fn start(
    made: &Made<'_>,
    name: &str,
    kubeconfig: &Path,
    config: &str,
    lock_ns: &str,
    extra: &[&str],
) -> Running {
    let config = made.file(&format!("{name}.yaml"), config);
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut args = vec!["--pod-namespace", lock_ns];
    args.extend_from_slice(extra);
    let child = start_with(name, kubeconfig, &config, port, &args).await;
    until("the server's readiness", async || {
        let (status, _, _) = send(addr, &get("/readyz", None)).await;
        (status == 200).then_some(())
    })
    .await;
    Running {
        addr,
        _child: child,
    }
}

fn get(path: &str, token: Option<&str>) -> Vec<u8> {
    let auth = token.map(|t| format!("authorization: Bearer {t}"));
    let mut headers = vec!["connection: close"];
    headers.extend(auth.as_deref());
    request("GET", path, &headers, "")
}

fn post(path: &str, token: Option<&str>) -> Vec<u8> {
    let auth = token.map(|t| format!("authorization: Bearer {t}"));
    let mut headers = vec!["connection: close"];
    headers.extend(auth.as_deref());
    request("POST", path, &headers, "")
}

/// [`send`], again after the `Retry-After` of a `429`: the server lets one client address
/// have only a few reviews of tokens it does not know yet per second, and every request here
/// comes from 127.0.0.1.
async fn send_patiently(addr: SocketAddr, raw: &[u8]) -> (u16, String, String) {
    let started = tokio::time::Instant::now();
    loop {
        let (code, head, body) = send(addr, raw).await;
        if code != 429 || started.elapsed() > DEADLINE {
            return (code, head, body);
        }
        let retry_after = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("retry-after:")
                    .map(|v| v.trim().to_string())
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        tokio::time::sleep(Duration::from_secs(retry_after)).await;
    }
}

/// Polls until `check` gives a value, or fails after [`DEADLINE`].
async fn until<T>(what: &str, check: impl AsyncFnMut() -> Option<T>) -> T {
    common::until_within(what, DEADLINE, check).await
}

/// The workload's status as the server reports it.
async fn status(addr: SocketAddr, workload: &str) -> Value {
    let (code, _, body) = send(addr, &get(&format!("/api/v1/service/{workload}"), None)).await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// `restartctl`, built beside the server (`cargo build -p cli-bin --bin restartctl`), or
/// `$RESTARTCTL`.
fn restartctl() -> PathBuf {
    let path = std::env::var_os("RESTARTCTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_BIN_EXE_restart-manager")).with_file_name("restartctl")
        });
    assert!(
        path.exists(),
        "no restartctl at {}: cargo build -p cli-bin --bin restartctl (or set RESTARTCTL)",
        path.display()
    );
    path
}

/// `restartctl` with `args`, presenting `token` (in `RESTARTCTL_TOKEN`, as a user would keep
/// it off the command line) when given.
fn restartctl_run(args: &[&str], token: Option<&str>) -> Output {
    let mut command = Command::new(restartctl());
    command.args(args).stdin(Stdio::null());
    match token {
        Some(t) => command.env("RESTARTCTL_TOKEN", t),
        None => command.env_remove("RESTARTCTL_TOKEN"),
    };
    command.output().unwrap()
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

// === the tests ===

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

/// `--auth kubernetes` on the real API server: ServiceAccount tokens issued for the
/// `restart-manager` audience pass a real TokenReview; a real SubjectAccessReview grants the
/// restart-only verb `restart` to the ServiceAccount with a Role that names it and refuses
/// (403) the one without; a token for the API server's own audience is no token here (401);
/// `/metrics` needs `get` on the non-resource URL, which Prometheus' ServiceAccount token
/// (for the API server) carries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (scripts/cluster up; see the file's doc)"]
async fn the_restart_verb_through_real_token_and_access_reviews() {
    let real = real();
    let mut made = Made::new(&real, "access");
    let ns = made.namespace("access", &[]);
    real.apply(&workload("Deployment", &ns, "web", 1, Value::Null));
    for sa in ["alice", "bob", "prometheus"] {
        real.ok(&["create", "serviceaccount", sa, "-n", &ns]);
    }
    // As deploy/examples/restart-only-role.yaml: see and restart web, nothing else.
    let metrics_role = format!("rm-real-metrics-{}", std::process::id());
    made.cluster_scoped
        .push(format!("clusterrole/{metrics_role}"));
    made.cluster_scoped
        .push(format!("clusterrolebinding/{metrics_role}"));
    real.apply(&format!(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: restart-web, namespace: {ns}}}
rules:
  - apiGroups: [apps]
    resources: [deployments]
    resourceNames: [web]
    verbs: [get, restart]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: restart-web, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: restart-web}}
subjects: [{{kind: ServiceAccount, name: alice, namespace: {ns}}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {metrics_role}}}
rules: [{{nonResourceURLs: [/metrics], verbs: [get]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {metrics_role}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {metrics_role}}}
subjects: [{{kind: ServiceAccount, name: prometheus, namespace: {ns}}}]
"#
    ));
    real.wait_rolled_out(&ns, "deployment/web");
    let alice = real.token(&ns, "alice", Some("restart-manager"));
    let bob = real.token(&ns, "bob", Some("restart-manager"));
    let alice_for_the_api = real.token(&ns, "alice", None);
    let prometheus = real.token(&ns, "prometheus", None);

    let config = format!("services:\n  - {{kind: Deployment, name: web, namespace: {ns}}}\n");
    let server = start(
        &made,
        "rm-real-access",
        &real.kubeconfig,
        &config,
        &ns,
        &["--auth", "kubernetes"],
    )
    .await;
    let restart = format!("/api/v1/service/Deployment/{ns}/web/restart");

    let (code, _, body) = send_patiently(server.addr, &post(&restart, Some(&bob))).await;
    assert_eq!(code, 403, "bob has no restart right: {body}");
    let (code, _, body) =
        send_patiently(server.addr, &post(&restart, Some(&alice_for_the_api))).await;
    assert_eq!(code, 401, "a token for the API server is none here: {body}");
    let (code, _, body) = send_patiently(
        server.addr,
        &post(&restart, Some("made-up-token-0123456789")),
    )
    .await;
    assert_eq!(code, 401, "{body}");
    // What each may see: alice her workload, bob nothing.
    let (code, _, body) = send_patiently(server.addr, &get("/api/v1/service", Some(&alice))).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"web\""), "{body}");
    let (code, _, body) = send_patiently(server.addr, &get("/api/v1/service", Some(&bob))).await;
    assert_eq!((code, body.as_str()), (200, "[]"));

    // alice restarts through restartctl with her token.
    let url = format!("http://{}", server.addr);
    let out = restartctl_run(
        &[
            "--server",
            &url,
            "restart",
            &format!("Deployment/{ns}/web"),
            "--wait",
            "--timeout",
            "90s",
        ],
        Some(&alice),
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let events = described_events(&real, &ns, "deployment/web");
    assert!(
        events.contains(&format!("restarted by system:serviceaccount:{ns}:alice")),
        "{events}"
    );
    let out = restartctl_run(
        &["--server", &url, "restart", &format!("Deployment/{ns}/web")],
        Some(&bob),
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "bob was let restart");
    assert!(
        said.contains(&format!("system:serviceaccount:{ns}:bob may not restart")),
        "{said}"
    );

    // /metrics: a token, and the right to get the non-resource URL.
    let (code, _, body) = send_patiently(server.addr, &get("/metrics", None)).await;
    assert_eq!(code, 401, "{body}");
    let (code, _, body) = send_patiently(server.addr, &get("/metrics", Some(&alice))).await;
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("non-resource URL /metrics"), "{body}");
    let (code, _, body) = send_patiently(server.addr, &get("/metrics", Some(&prometheus))).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(&format!("namespace=\"{ns}\"")), "{body}");
}

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

/// `restartOnConfigChange` on real ConfigMaps and Secrets: the first look records what the
/// pods started with; a change to the ConfigMap the Deployment reads restarts it once,
/// naming the ConfigMap, and so does a change to its Secret afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (scripts/cluster up; see the file's doc)"]
async fn changes_to_real_configmaps_and_secrets_restart_the_workload() {
    let real = real();
    let mut made = Made::new(&real, "config");
    let ns = made.namespace("config", &[]);
    real.apply(&format!(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {{name: web-config, namespace: {ns}}}
data: {{greeting: hello}}
---
apiVersion: v1
kind: Secret
metadata: {{name: web-secret, namespace: {ns}}}
stringData: {{password: one}}
"#
    ));
    real.apply(&workload(
        "Deployment",
        &ns,
        "web",
        2,
        serde_json::json!({
            "envFrom": [{"configMapRef": {"name": "web-config"}}],
            "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "web-secret", "key": "password"}}}],
        }),
    ));
    real.wait_rolled_out(&ns, "deployment/web");
    let config = format!(
        "services:\n  - {{kind: Deployment, name: web, namespace: {ns}, restartOnConfigChange: {{debounce: 1s}}}}\n"
    );
    let server = start(&made, "rm-real-config", &real.kubeconfig, &config, &ns, &[]).await;
    // The first look records the digests on the workload's lock Lease.
    until("the recorded configuration", async || {
        let leases = real.json(&["get", "leases", "-n", &ns]);
        leases["items"]
            .as_array()?
            .iter()
            .any(|l| {
                l["metadata"]["annotations"]["restart-manager.io/config-digests"]
                    .as_str()
                    .is_some_and(|d| {
                        d.contains("ConfigMap web-config") && d.contains("Secret web-secret")
                    })
            })
            .then_some(())
    })
    .await;
    assert_eq!(restarted_at(&real, &ns, "deployment/web"), None);

    for (change, what) in [
        (
            vec![
                "patch",
                "configmap",
                "web-config",
                "--type=merge",
                "-p",
                r#"{"data":{"greeting":"hi"}}"#,
            ],
            "ConfigMap web-config changed",
        ),
        (
            vec![
                "patch",
                "secret",
                "web-secret",
                "--type=merge",
                "-p",
                r#"{"stringData":{"password":"two"}}"#,
            ],
            "Secret web-secret changed",
        ),
    ] {
        let before = restarted_at(&real, &ns, "deployment/web");
        let mut args = change.clone();
        args.extend(["-n", &ns]);
        real.ok(&args);
        let s = until(what, async || {
            let s = status(server.addr, &format!("Deployment/{ns}/web")).await;
            let note = s["lastRestart"]["reason"]
                .as_str()
                .unwrap_or("")
                .to_string();
            (note.contains(what) && s["lastRestart"]["outcome"] == "complete").then_some(s)
        })
        .await;
        assert_eq!(s["lastRestart"]["by"], "config-change", "{s}");
        assert_ne!(restarted_at(&real, &ns, "deployment/web"), before);
        assert_eq!(
            s["message"],
            real.rollout_status(&ns, "deployment/web").as_str()
        );
        let events = described_events(&real, &ns, "deployment/web");
        assert!(events.contains(what), "{events}");
    }
}

/// The cluster-scoped objects and namespaces named in `kubectl apply`'s output
/// (`clusterrole.rbac.authorization.k8s.io/NAME serverside-applied`), to delete afterwards.
fn cluster_scoped_in(applied: &str) -> Vec<String> {
    applied
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|o| {
            ["namespace/", "clusterrole.", "clusterrolebinding."]
                .iter()
                .any(|p| o.starts_with(p))
        })
        .map(String::from)
        .collect()
}

/// Whether a namespace exists now.
fn namespace_exists(real: &Real, name: &str) -> bool {
    real.kubectl(&["get", "namespace", name]).status.success()
}

/// The Deployment's pods were created and are Ready, and a pod that breaks the `restricted`
/// Pod Security level is refused in the same namespace (admission does run there).
fn admitted_and_enforced(real: &Real, ns: &str, deployment: &str) {
    let labels = real.json(&["get", "namespace", ns])["metadata"]["labels"].clone();
    assert_eq!(
        labels["pod-security.kubernetes.io/enforce"], "restricted",
        "{labels}"
    );
    real.wait_rolled_out(ns, &format!("deployment/{deployment}"));
    let d = real.json(&["get", "-n", ns, &format!("deployment/{deployment}")]);
    assert_eq!(d["status"]["readyReplicas"], d["spec"]["replicas"], "{d}");
    let out = real.kubectl(&[
        "run",
        "psa-probe",
        "-n",
        ns,
        "--image=registry.k8s.io/pause:3.10",
        "--dry-run=server",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("violates PodSecurity \"restricted"),
        "a root pod with no securityContext was admitted: {stderr}"
    );
}

/// The kustomize example with everything (base, workload Roles, config-watch Roles) and the
/// Helm chart rendered with an allowlist, applied to the real API server (server-side apply,
/// strict field validation): every object is accepted, and the `restricted` Pod Security
/// level of the namespace admits the Deployment's pods, which KWOK runs to Ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (scripts/cluster up; see the file's doc)"]
async fn the_kustomize_example_and_the_helm_chart_are_admitted() {
    let real = real();
    let mut made = Made::new(&real, "install");
    made.wait = true;
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");

    // kustomize: the config-change example names its namespaces (restart-manager, shop,
    // monitoring); those that are not there yet are this test's.
    for ns in ["restart-manager", "shop", "monitoring"] {
        // Another check may have just deleted it (scripts/cluster smoke applies the base and
        // deletes it): what is being deleted cannot take new objects.
        let phase = real.kubectl(&["get", "namespace", ns, "-o", "jsonpath={.status.phase}"]);
        if phase.status.success() && phase.stdout == b"Terminating" {
            real.ok(&[
                "wait",
                "--for=delete",
                &format!("namespace/{ns}"),
                "--timeout=90s",
            ]);
        }
        if !namespace_exists(&real, ns) {
            made.namespaces.push(ns.to_string());
            if ns != "restart-manager" {
                real.ok(&["create", "namespace", ns]);
            }
        }
    }
    let example = deploy.join("kustomize/examples/config-change");
    let out = real.kubectl(&[
        "apply",
        "--server-side",
        "--field-manager=rm-real",
        "-k",
        example.to_str().unwrap(),
    ]);
    let applied = String::from_utf8_lossy(&out.stdout).into_owned();
    // The base's ClusterRoles are this test's if its namespace is.
    if made.namespaces.iter().any(|n| n == "restart-manager") {
        made.cluster_scoped.extend(
            cluster_scoped_in(&applied)
                .into_iter()
                .filter(|o| !o.starts_with("namespace/")),
        );
    }
    assert!(
        out.status.success(),
        "kubectl apply -k {}: {}",
        example.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        applied.contains("role.rbac.authorization.k8s.io/restart-manager-config-watch-workloads"),
        "{applied}"
    );
    admitted_and_enforced(&real, "restart-manager", "restart-manager");

    // Helm: the chart rendered for a release with an allowlist, config watching and a
    // metrics reader, into a restricted namespace of its own.
    let helm = std::env::var_os("HELM").unwrap_or_else(|| "helm".into());
    let ns = made.namespace(
        "helm",
        &[("pod-security.kubernetes.io/enforce", "restricted")],
    );
    let apps = made.namespace("helm-apps", &[]);
    let release = format!("rm-real-helm-{}", std::process::id());
    let values = format!(
        r#"
config:
  services:
    - {{kind: Deployment, name: web, namespace: {apps}, restartOnConfigChange: true}}
    - {{kind: StatefulSet, name: db, namespace: {apps}}}
rbac:
  configWatch: true
metrics:
  readers:
    - {{kind: ServiceAccount, name: prometheus, namespace: {apps}}}
"#
    );
    let mut child = Command::new(&helm)
        .args(["template", &release])
        .arg(deploy.join("helm/restart-manager"))
        .args(["--namespace", &ns, "--values", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("no helm ({e}): set HELM=\"$(scripts/install-helm)\""));
    {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(values.as_bytes())
            .unwrap();
    }
    let rendered = child.wait_with_output().unwrap();
    assert!(
        rendered.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let rendered = String::from_utf8(rendered.stdout).unwrap();
    for name in [&release, &format!("{release}-metrics-reader")] {
        made.cluster_scoped.push(format!("clusterrole/{name}"));
        made.cluster_scoped
            .push(format!("clusterrolebinding/{name}"));
    }
    let applied = real.apply(&rendered);
    for object in [
        format!("role.rbac.authorization.k8s.io/{release}-workloads"),
        format!("deployment.apps/{release}"),
        format!("networkpolicy.networking.k8s.io/{release}"),
        format!("poddisruptionbudget.policy/{release}"),
    ] {
        assert!(applied.contains(&object), "{object} not in:\n{applied}");
    }
    admitted_and_enforced(&real, &ns, &release);
}
