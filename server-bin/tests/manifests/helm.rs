//! The Helm chart as `helm template` renders it.

use super::*;

/// The chart as `helm template` renders it for a release `restart-manager` in namespace
/// `restart-manager`, with `values` (YAML) on top of the chart's own. Helm is `$HELM` (CI
/// installs a pinned one with scripts/install-helm) or `helm` on PATH; `None` without either.
fn helm_template(values: &str) -> Option<Objects> {
    let helm = std::env::var_os("HELM");
    let required = helm.is_some();
    let mut child = match std::process::Command::new(helm.unwrap_or_else(|| "helm".into()))
        .args(["template", "restart-manager"])
        .arg(deploy().join("helm/restart-manager"))
        .args(["--namespace", NAMESPACE, "--values", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if !required => {
            eprintln!("skipped: no helm to render the chart ({e}); CI sets HELM");
            return None;
        }
        Err(e) => panic!("HELM is set, but it does not run: {e}"),
    };
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(values.as_bytes())
        .unwrap();
    Some(rendered(child.wait_with_output().unwrap(), "helm template"))
}

/// The chart with its defaults: the same least privilege, hardening and wiring as the
/// kustomize base, and a configuration the server accepts.
#[test]
fn the_helm_chart_renders_like_the_base() {
    let Some(o) = helm_template("{}") else {
        return;
    };
    assert_eq!(o.service_accounts.len(), 1);
    // The chart's default allowlist is empty, as the base's: no rights on workloads at all.
    assert!(config(&o).allowlist().unwrap().is_empty());
    check_rbac(&o);
    check_deployment(&o);
    let image = pod_spec(&o).containers[0].image.clone().unwrap();
    assert!(
        image.starts_with("ghcr.io/restart-manager/restart-manager:"),
        "{image}"
    );
}

/// The chart with the config-change example's allowlist: the Roles it renders from
/// `config.services` grant exactly what the server needs for that allowlist, ConfigMaps and
/// Secrets only with `rbac.configWatch` and only in the namespace that opts in, and they are
/// the objects `restart-manager rbac` prints.
#[test]
fn the_helm_charts_rbac_follows_its_allowlist() {
    let example =
        std::fs::read_to_string(deploy().join("kustomize/examples/config-change/config.yaml"))
            .unwrap();
    let example: Value = serde_saphyr::from_str(&example).unwrap();
    let allowlist: Value =
        serde_saphyr::from_str(example["data"]["config.yaml"].as_str().unwrap()).unwrap();
    let values = |extra: Value| {
        let mut values = serde_json::json!({ "config": allowlist.clone() });
        values
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::to_string(&values).unwrap()
    };
    let Some(o) = helm_template(&values(serde_json::json!({"rbac": {"configWatch": true}}))) else {
        return;
    };
    assert_eq!(
        config_value(&o),
        allowlist,
        "the chart mounts the configuration as given"
    );
    check_rbac(&o);
    check_deployment(&o);
    check_config_readable_only_in_shop(&o);
    // The Roles on workloads and configuration are those `restart-manager rbac` prints.
    let generated = classify(&documents(&workload_rbac(&o), "restart-manager rbac"));
    let rules = |roles: &[Role]| -> BTreeSet<(Option<String>, Option<String>, String)> {
        roles
            .iter()
            .map(|r| {
                (
                    r.metadata.name.clone(),
                    r.metadata.namespace.clone(),
                    serde_json::to_string(&r.rules).unwrap(),
                )
            })
            .collect()
    };
    let workload_roles: Vec<Role> = o
        .roles
        .iter()
        .filter(|r| {
            r.metadata.namespace.as_deref() != Some(NAMESPACE)
                || r.metadata.name.as_deref() != Some("restart-manager")
        })
        .cloned()
        .collect();
    assert_eq!(rules(&workload_roles), rules(&generated.roles));

    // Without rbac.configWatch, no Secret may be read but the Event key's: the server then
    // refuses to start, naming exactly the rights that are missing.
    let o = helm_template(&values(serde_json::json!({}))).unwrap();
    let missing: BTreeSet<Grant> = required(&o).difference(&granted(&o)).cloned().collect();
    assert!(
        !missing.is_empty()
            && missing
                .iter()
                .all(|(_, _, resource, ns, _)| ["configmaps", "secrets"]
                    .contains(&resource.as_str())
                    && ns.as_deref() == Some("shop")),
        "{missing:?}"
    );
    check_event_key_secret_only(&o);
    assert!(
        !granted(&o).iter().any(
            |(_, _, resource, ns, _)| resource == "secrets" && ns.as_deref() != Some(NAMESPACE)
        )
    );

    // rbac.workloads: cluster trades the per-workload Roles for one ClusterRole on every
    // workload: everything the allowlist needs, and the documented excess only.
    let o = helm_template(&values(
        serde_json::json!({"rbac": {"workloads": "cluster", "configWatch": true}}),
    ))
    .unwrap();
    let granted = granted(&o);
    // A grant covers a need for the same verb and resource in every namespace or in the
    // need's, on every object or on the needed one.
    let covers = |(verb, group, resource, ns, name): &Grant, need: &Grant| {
        (verb, group, resource) == (&need.0, &need.1, &need.2)
            && (ns.is_none() || *ns == need.3)
            && (name.is_none() || *name == need.4)
    };
    let required = required(&o);
    let uncovered: Vec<&Grant> = required
        .iter()
        .filter(|need| !granted.iter().any(|g| covers(g, need)))
        .collect();
    assert!(uncovered.is_empty(), "used but not granted: {uncovered:?}");
    let unused: Vec<&Grant> = granted
        .iter()
        .filter(|g| !required.iter().any(|need| covers(g, need)))
        .collect();
    assert!(unused.is_empty(), "granted but unused: {unused:?}");
    let cluster_wide: BTreeSet<(String, String)> = granted
        .iter()
        .filter(|(_, group, _, ns, _)| group == "apps" && ns.is_none())
        .map(|(verb, _, resource, _, _)| (verb.clone(), resource.clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = ["get", "list", "watch", "patch"]
        .iter()
        .flat_map(|verb| {
            ["deployments", "statefulsets", "daemonsets"]
                .map(|resource| (verb.to_string(), resource.to_string()))
        })
        .collect();
    assert_eq!(cluster_wide, expected);
}
