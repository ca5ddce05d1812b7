//! The workloads the tests apply, and the `restart-manager` and `restartctl` processes they
//! run and ask.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::process::Child;

use crate::common::process::start_with;
use crate::common::{self, free_port, request, send};
use crate::{DEADLINE, Made};

// === the workloads ===

/// A Deployment (or a StatefulSet, `kind`) of `replicas` pause pods, with `container`
/// merged into the pod spec's only container.
pub(crate) fn workload(
    kind: &str,
    ns: &str,
    name: &str,
    replicas: i32,
    container: Value,
) -> String {
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
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    _child: Child,
}

/// Starts the real binary with `kubeconfig` and `config`, its Leases in `lock_ns`, and waits
/// (bounded) until it is ready.
pub(crate) async fn start(
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

pub(crate) fn get(path: &str, token: Option<&str>) -> Vec<u8> {
    let auth = token.map(|t| format!("authorization: Bearer {t}"));
    let mut headers = vec!["connection: close"];
    headers.extend(auth.as_deref());
    request("GET", path, &headers, "")
}

pub(crate) fn post(path: &str, token: Option<&str>) -> Vec<u8> {
    let auth = token.map(|t| format!("authorization: Bearer {t}"));
    let mut headers = vec!["connection: close"];
    headers.extend(auth.as_deref());
    request("POST", path, &headers, "")
}

/// [`send`], again after the `Retry-After` of a `429`: the server lets one client address
/// have only a few reviews of tokens it does not know yet per second, and every request here
/// comes from 127.0.0.1.
pub(crate) async fn send_patiently(addr: SocketAddr, raw: &[u8]) -> (u16, String, String) {
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
pub(crate) async fn until<T>(what: &str, check: impl AsyncFnMut() -> Option<T>) -> T {
    common::until_within(what, DEADLINE, check).await
}

/// The workload's status as the server reports it.
pub(crate) async fn status(addr: SocketAddr, workload: &str) -> Value {
    let (code, _, body) = send(addr, &get(&format!("/api/v1/service/{workload}"), None)).await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// `restartctl`, built beside the server (`cargo build -p cli-bin --bin restartctl`), or
/// `$RESTARTCTL`.
pub(crate) fn restartctl() -> PathBuf {
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
pub(crate) fn restartctl_run(args: &[&str], token: Option<&str>) -> Output {
    let mut command = Command::new(restartctl());
    command.args(args).stdin(Stdio::null());
    match token {
        Some(t) => command.env("RESTARTCTL_TOKEN", t),
        None => command.env_remove("RESTARTCTL_TOKEN"),
    };
    command.output().unwrap()
}
