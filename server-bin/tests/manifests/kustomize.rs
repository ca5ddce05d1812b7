//! The kustomize base, its components and examples, read directly and as `kubectl kustomize`
//! renders them.

use super::*;

/// A kustomization under deploy/ as `kubectl kustomize` renders it; `None` without kubectl.
fn kustomize(dir: &str) -> Option<Objects> {
    let out = std::process::Command::new("kubectl")
        .args(["kustomize"])
        .arg(deploy().join(dir))
        .output()
        .ok()?;
    Some(rendered(out, &format!("kubectl kustomize {dir}")))
}

#[test]
fn the_kustomize_base_is_well_typed_and_least_privilege() {
    let o = classify(&base());
    assert_eq!(o.service_accounts.len(), 1);
    check_rbac(&o);
    check_deployment(&o);
}

#[test]
fn the_rendered_kustomization_too() {
    let Some(o) = kustomize("kustomize/base") else {
        eprintln!(
            "skipped: no kubectl to render the kustomization; the base files are checked directly"
        );
        return;
    };
    check_rbac(&o);
    check_deployment(&o);
}

/// The base with an allowlist and the component's Roles, as kubectl renders it: exactly the
/// rights that allowlist needs, and the component's Roles are what `restart-manager rbac`
/// prints for it.
#[test]
fn an_allowlist_gets_namespaced_roles_and_nothing_more() {
    let Some(o) = kustomize("kustomize/examples/allowlist") else {
        eprintln!("skipped: no kubectl to render the kustomization");
        return;
    };
    check_rbac(&o);
    check_deployment(&o);
    assert_eq!(config(&o).allowlist().unwrap().len(), 3);
    assert!(
        !granted(&o)
            .iter()
            .any(|(verb, group, _, ns, name)| group == "apps"
                && (ns.is_none() || (verb == "patch" && name.is_none()))),
        "no cluster-wide rights on workloads, and no patch of unnamed ones"
    );

    let generated = workload_rbac(&o);
    let shipped =
        std::fs::read_to_string(deploy().join("kustomize/components/workload-roles/roles.yaml"))
            .unwrap();
    assert_eq!(
        shipped, generated,
        "components/workload-roles/roles.yaml is stale: generate it again from \
         examples/allowlist/config.yaml with `restart-manager rbac --workloads-only`"
    );
}

/// The config-change example: the allowlist example with a workload that restarts on
/// configuration changes. ConfigMaps and Secrets are readable in that workload's namespace and
/// nowhere else, and the component's Roles are what `restart-manager rbac` prints.
#[test]
fn restarts_on_config_changes_read_secrets_only_where_a_workload_opts_in() {
    let Some(o) = kustomize("kustomize/examples/config-change") else {
        eprintln!("skipped: no kubectl to render the kustomization");
        return;
    };
    check_rbac(&o);
    check_deployment(&o);
    check_config_readable_only_in_shop(&o);

    let generated = workload_rbac(&o);
    let component = |name: &str| {
        std::fs::read_to_string(deploy().join(format!("kustomize/components/{name}/roles.yaml")))
            .unwrap()
    };
    assert_eq!(
        generated,
        format!(
            "{}---\n{}",
            component("workload-roles"),
            component("config-watch")
        ),
        "components/config-watch/roles.yaml is stale: generate it again from \
         examples/config-change/config.yaml with `restart-manager rbac --workloads-only`"
    );
}

/// The alert-gates example: the gate's configuration loads, and the egress component opens
/// exactly Prometheus', Alertmanager's and DNS's ports besides the API server's.
#[test]
fn the_alert_gates_example_can_reach_its_prometheus() {
    let Some(o) = kustomize("kustomize/examples/alert-gates") else {
        eprintln!("skipped: no kubectl to render the kustomization");
        return;
    };
    check_rbac(&o);
    check_deployment_with_egress(&o, &["9090/TCP", "9093/TCP", "53/UDP", "53/TCP"]);
    let config = config(&o);
    assert!(config.fleetlock.alerts.is_some());
    let egress = o.policies[0].spec.as_ref().unwrap().egress.clone().unwrap();
    let monitoring = egress
        .iter()
        .find_map(|rule| rule.to.as_ref()?.first()?.namespace_selector.clone())
        .expect("the monitoring ports are open to one namespace only");
    assert_eq!(
        monitoring.match_labels.unwrap()["kubernetes.io/metadata.name"],
        "monitoring"
    );
}
