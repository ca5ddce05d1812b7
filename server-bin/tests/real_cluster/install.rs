//! The kustomize example and the rendered Helm chart applied for real: schemas, and Pod Security
//! admission (`restricted`).

use super::*;

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
