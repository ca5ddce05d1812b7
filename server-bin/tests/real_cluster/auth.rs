//! The restart-only RBAC verb through real TokenReviews and SubjectAccessReviews.

use super::*;

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
