//! Every manifest in deploy/ parses into its typed Kubernetes object with no field lost, and
//! the RBAC grants exactly what the adapter uses: no verb more, none less.

mod deployment;
mod helm;
mod kustomize;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use deployment::{check_deployment, check_deployment_with_egress};
use k8s_adapter::required_permissions;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use restart_manager::config::FileConfig;
use serde_json::Value;

const NAMESPACE: &str = "restart-manager";

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every object, as JSON, from YAML text with one or more documents.
fn documents(text: &str, origin: &str) -> Vec<Value> {
    serde_saphyr::from_str_multiple::<Value, Vec<Value>>(text)
        .unwrap_or_else(|e| panic!("{origin}: {e}"))
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

/// Everything the kustomize base lists.
fn base() -> Vec<Value> {
    let dir = deploy().join("kustomize/base");
    let kustomization: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap())
            .unwrap();
    kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            let file = dir.join(r.as_str().unwrap());
            documents(
                &std::fs::read_to_string(&file).unwrap(),
                &file.display().to_string(),
            )
        })
        .collect()
}

/// The typed objects of a manifest set.
#[derive(Default, Clone)]
struct Objects {
    cluster_roles: Vec<ClusterRole>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    deployments: Vec<Deployment>,
    config_maps: Vec<ConfigMap>,
    services: Vec<Service>,
    service_accounts: Vec<ServiceAccount>,
    budgets: Vec<PodDisruptionBudget>,
    policies: Vec<NetworkPolicy>,
}

/// Parses into the typed object and checks that serializing it back loses nothing: a field
/// the type does not know (a typo) would be silently dropped by the API server too.
fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(v: &Value) -> T {
    let object: T =
        serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{}: {e}\n{v:#}", v["kind"]));
    let back = serde_json::to_value(&object).unwrap();
    assert_eq!(
        &back, v,
        "{} {} has fields its type does not know",
        v["kind"], v["metadata"]["name"]
    );
    object
}

fn classify(docs: &[Value]) -> Objects {
    let mut o = Objects::default();
    for v in docs {
        match v["kind"].as_str().unwrap() {
            "Namespace" => drop(typed::<Namespace>(v)),
            "ServiceAccount" => o.service_accounts.push(typed(v)),
            "ClusterRole" => o.cluster_roles.push(typed(v)),
            "ClusterRoleBinding" => o.cluster_role_bindings.push(typed(v)),
            "Role" => o.roles.push(typed(v)),
            "RoleBinding" => o.role_bindings.push(typed(v)),
            "ConfigMap" => o.config_maps.push(typed(v)),
            "Deployment" => o.deployments.push(typed(v)),
            "PodDisruptionBudget" => o.budgets.push(typed(v)),
            "Service" => o.services.push(typed(v)),
            "NetworkPolicy" => o.policies.push(typed(v)),
            other => panic!("unexpected kind {other}"),
        }
    }
    o
}

/// verb, group, resource, namespace (`None`: cluster-wide), name (`None`: every object).
type Grant = (String, String, String, Option<String>, Option<String>);

fn granted(o: &Objects) -> BTreeSet<Grant> {
    let mut grants = BTreeSet::new();
    let mut add = |rules: &Option<Vec<k8s_openapi::api::rbac::v1::PolicyRule>>,
                   namespace: Option<String>| {
        for rule in rules.iter().flatten() {
            let names: Vec<Option<String>> = match &rule.resource_names {
                Some(names) => names.iter().cloned().map(Some).collect(),
                None => vec![None],
            };
            for group in rule.api_groups.iter().flatten() {
                for resource in rule.resources.iter().flatten() {
                    for verb in &rule.verbs {
                        assert_ne!(verb, "*", "no wildcards");
                        for name in &names {
                            grants.insert((
                                verb.clone(),
                                group.clone(),
                                resource.clone(),
                                namespace.clone(),
                                name.clone(),
                            ));
                        }
                    }
                }
            }
        }
    };
    for role in &o.cluster_roles {
        add(&role.rules, None);
    }
    for role in &o.roles {
        add(&role.rules, role.metadata.namespace.clone());
    }
    grants
}

/// What the server needs with the allowlist of the manifests' own configuration.
fn required(o: &Objects) -> BTreeSet<Grant> {
    let allowlist = config(o).allowlist().unwrap();
    let config_watch = k8s_adapter::config_watch_permissions(
        restart_manager::server::config_change_namespaces(&allowlist),
    );
    required_permissions(NAMESPACE, allowlist.iter().map(|a| &a.workload))
        .into_iter()
        .chain(config_watch)
        .map(|p| {
            (
                p.verb.to_string(),
                p.group.to_string(),
                p.resource.to_string(),
                p.namespace,
                p.name,
            )
        })
        .collect()
}

/// The configuration the manifests mount.
fn config(o: &Objects) -> FileConfig {
    let text = o.config_maps[0].data.as_ref().unwrap()["config.yaml"].clone();
    FileConfig::parse(&text, "configmap").unwrap()
}

/// The pod template's spec of the (only) Deployment.
fn pod_spec(o: &Objects) -> &k8s_openapi::api::core::v1::PodSpec {
    o.deployments[0]
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
}

/// Whether a ClusterRole is the metrics reader: `get` on the non-resource URL `/metrics`,
/// for Prometheus, not for the server.
fn is_metrics_reader(role: &ClusterRole) -> bool {
    role.metadata
        .name
        .as_deref()
        .is_some_and(|n| n.ends_with("metrics-reader"))
}

/// The metrics reader grants `get` on `/metrics` and nothing else; it is bound to nobody
/// unless asked. The rest of the RBAC is the server's own.
fn server_rbac(o: &Objects) -> Objects {
    let readers: Vec<&ClusterRole> = o
        .cluster_roles
        .iter()
        .filter(|r| is_metrics_reader(r))
        .collect();
    assert_eq!(readers.len(), 1, "one metrics reader ClusterRole");
    let rules = readers[0].rules.clone().unwrap_or_default();
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(
        rules[0].non_resource_urls.as_deref(),
        Some(&["/metrics".to_string()][..])
    );
    assert_eq!(rules[0].verbs, ["get"]);
    assert!(rules[0].resources.is_none() && rules[0].api_groups.is_none());
    let mut own = o.clone();
    own.cluster_roles.retain(|r| !is_metrics_reader(r));
    own.cluster_role_bindings
        .retain(|b| !b.role_ref.name.ends_with("metrics-reader"));
    own
}

fn check_rbac(o: &Objects) {
    let o = &server_rbac(o);
    let granted = granted(o);
    let required = required(o);
    let extra: Vec<_> = granted.difference(&required).collect();
    let missing: Vec<_> = required.difference(&granted).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "granted but unused: {extra:?}\nused but not granted: {missing:?}"
    );
    // And the roles are bound to the service account the pods run as.
    let sa = pod_spec(o).service_account_name.clone().unwrap();
    let bound = |subjects: &Option<Vec<k8s_openapi::api::rbac::v1::Subject>>| {
        subjects.iter().flatten().any(|s| {
            s.kind == "ServiceAccount" && s.name == sa && s.namespace.as_deref() == Some(NAMESPACE)
        })
    };
    assert!(
        o.cluster_role_bindings
            .iter()
            .all(|b| bound(&b.subjects) && b.role_ref.kind == "ClusterRole")
    );
    assert!(
        o.role_bindings
            .iter()
            .all(|b| bound(&b.subjects) && b.role_ref.kind == "Role")
    );
    assert_eq!(o.cluster_role_bindings.len(), o.cluster_roles.len());
    assert_eq!(o.role_bindings.len(), o.roles.len());
    check_event_key_secret_only(o);
}

/// The objects a renderer printed, which must have succeeded.
fn rendered(out: std::process::Output, renderer: &str) -> Objects {
    assert!(
        out.status.success(),
        "{renderer}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    classify(&documents(
        &String::from_utf8(out.stdout).unwrap(),
        renderer,
    ))
}

fn is_event_key_grant((verb, group, resource, ns, name): &Grant) -> bool {
    group.is_empty()
        && resource == "secrets"
        && ns.as_deref() == Some(NAMESPACE)
        && match verb.as_str() {
            "get" => name.as_deref() == Some(k8s_adapter::EVENT_KEY_SECRET),
            "create" => name.is_none(),
            _ => false,
        }
}

/// In the server's namespace, Secrets may be created, and read only by the Event key's name:
/// no other Secret there (nor a list or watch of them) is readable.
fn check_event_key_secret_only(o: &Objects) {
    let in_namespace: BTreeSet<Grant> = granted(o)
        .into_iter()
        .filter(|(_, _, r, ns, _)| r == "secrets" && ns.as_deref() == Some(NAMESPACE))
        .collect();
    assert_eq!(
        in_namespace,
        BTreeSet::from([
            (
                "create".into(),
                String::new(),
                "secrets".into(),
                Some(NAMESPACE.into()),
                None
            ),
            (
                "get".into(),
                String::new(),
                "secrets".into(),
                Some(NAMESPACE.into()),
                Some(k8s_adapter::EVENT_KEY_SECRET.into())
            ),
        ])
    );
    assert_eq!(k8s_adapter::EVENT_KEY_SECRET, restart_core::KEY_SECRET);
}

/// The namespaces where `resource` may be read (`None`: cluster-wide).
/// Leaves out the Event key's Secret (`get` by name, and `create`, in the server's namespace),
/// which [`check_event_key_secret_only`] checks.
fn readable_in(o: &Objects, resource: &str) -> BTreeSet<Option<String>> {
    granted(o)
        .into_iter()
        .filter(|(_, _, r, _, _)| r == resource)
        .filter(|g| !is_event_key_grant(g))
        .map(|(_, _, _, ns, _)| ns)
        .collect()
}

/// ConfigMaps and Secrets are readable in `shop` (where the config-change example's workload
/// opts in) and nowhere else, but for the one Secret holding the Event key in the server's
/// namespace.
fn check_config_readable_only_in_shop(o: &Objects) {
    for resource in ["configmaps", "secrets"] {
        assert_eq!(
            readable_in(o, resource),
            BTreeSet::from([Some("shop".into())]),
            "{resource}"
        );
    }
}

/// What `restart-manager rbac --workloads-only` prints for the manifests' configuration.
fn workload_rbac(o: &Objects) -> String {
    let rbac = restart_manager::args::RbacArgs {
        workloads_only: true,
        namespace: Some(NAMESPACE.into()),
        service_account: "restart-manager".into(),
        name: "restart-manager".into(),
    };
    restart_manager::rbac::render(&rbac, NAMESPACE, &config(o)).unwrap()
}

/// The configuration the manifests mount, as JSON.
fn config_value(o: &Objects) -> Value {
    let text = o.config_maps[0].data.as_ref().unwrap()["config.yaml"].clone();
    serde_saphyr::from_str(&text).unwrap()
}
