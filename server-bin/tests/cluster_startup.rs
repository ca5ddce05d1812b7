//! `restart-manager --kubeconfig` against clusters that cannot be used: the server must say
//! why in one sentence and exit, never panic.

use std::process::Output;

use axum::Json;
use axum::Router;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::process::Command;

fn kubeconfig(server: &str) -> tempfile_path::Path {
    let path = tempfile_path::new("kubeconfig");
    std::fs::write(
        &path.0,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"{server}\"}}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\nusers:\n- name: u\n  user: {{token: not-a-real-token}}\n"
        ),
    )
    .unwrap();
    path
}

/// A file under the test's target directory, removed on drop.
mod tempfile_path {
    pub(crate) struct Path(pub(crate) std::path::PathBuf);
    pub(crate) fn new(stem: &str) -> Path {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Path(
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("{stem}-{}-{n}.yaml", std::process::id())),
        )
    }
    impl Drop for Path {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// The binary with `args` and a loopback listener, run to its end.
async fn run(args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend(["--listen", "127.0.0.1:0", "--kube-timeout", "5s"]);
    run_exactly(&all).await
}

/// The binary with exactly `args`, run to its end.
async fn run_exactly(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_restart-manager"))
        .args(args)
        .current_dir(std::env::temp_dir())
        .output()
        .await
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn an_unreachable_cluster_is_one_clear_sentence() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = kubeconfig(&format!("http://127.0.0.1:{port}"));
    let out = run(&["--kubeconfig", config.0.to_str().unwrap()]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "restart-manager: cannot reach the Kubernetes API at http://127.0.0.1:{port}"
        )),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[tokio::test]
async fn a_missing_kubeconfig_is_named() {
    let out = run(&["--kubeconfig", "/nonexistent/kubeconfig"]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot use the kubeconfig /nonexistent/kubeconfig"),
        "{err}"
    );
}

#[tokio::test]
async fn missing_rbac_names_each_missing_permission() {
    // An API server that answers who it is, and refuses two of the permissions.
    let app = Router::new()
        .route(
            "/version",
            get(|| async {
                Json(json!({"major": "1", "minor": "33", "gitVersion": "v1.33.1", "gitCommit": "x", "gitTreeState": "clean",
                            "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"}))
            }),
        )
        .route(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            post(|Json(review): Json<Value>| async move {
                let a = &review["spec"]["resourceAttributes"];
                let denied = (a["resource"] == "pods" && a["subresource"] == "eviction")
                    || (a["resource"] == "leases" && a["verb"] == "delete");
                (axum::http::StatusCode::CREATED, Json(json!({
                    "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                    "spec": review["spec"], "status": {"allowed": !denied}
                })))
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let config = kubeconfig(&format!("http://{addr}"));
    let out = run(&["--kubeconfig", config.0.to_str().unwrap()]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("missing permissions"), "{err}");
    assert!(err.contains("create pods/eviction (cluster-wide)"), "{err}");
    assert!(
        err.contains("delete leases.coordination.k8s.io in namespace restart-manager"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[tokio::test]
async fn without_authentication_it_will_not_listen_beyond_loopback() {
    let out = run_exactly(&[
        "--listen",
        "0.0.0.0:0",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
    ])
    .await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--auth none on 0.0.0.0:0 would let anyone"),
        "{err}"
    );
    assert!(
        err.contains("--auth kubernetes"),
        "says how to choose: {err}"
    );
    assert!(
        !err.contains("/nonexistent/kubeconfig"),
        "refused before touching the cluster: {err}"
    );
}

#[tokio::test]
async fn proxy_authentication_needs_the_proxys_secret() {
    let out = run(&[
        "--simulate",
        "--sim-no-agents",
        "--auth",
        "proxy",
        "--fleetlock-listen",
        "same",
    ])
    .await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--auth proxy needs --auth-proxy-secret-file"),
        "{err}"
    );
}
