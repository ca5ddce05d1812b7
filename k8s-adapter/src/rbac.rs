//! The RBAC the adapter needs, as a list of permissions to check at start-up and as the
//! Roles that grant exactly them.
//!
//! Workloads are the one place where the rights follow the configuration: the server reads
//! the kinds it restarts only in the namespaces of its allowlist, and patches only the
//! workloads named there (`resourceNames`). Everything else (Nodes, Pods, evictions, Events,
//! access reviews) is cluster-wide by nature, and the Leases live in the server's own
//! namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use cluster_api::{WorkloadKind, WorkloadRef};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

/// One permission the adapter needs (a `kubectl auth can-i` question).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission {
    /// `get`, `list`, `watch`, `patch`, `create`, ...
    pub verb: &'static str,
    /// API group (`""` for core).
    pub group: &'static str,
    /// Resource, with `/subresource` where there is one (`pods/eviction`).
    pub resource: &'static str,
    /// Namespace, for namespaced grants; `None` for cluster-wide.
    pub namespace: Option<String>,
    /// One object's name (a `resourceNames` grant); `None` for every object.
    pub name: Option<String>,
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        if let Some(name) = &self.name {
            write!(f, " {name}")?;
        }
        match &self.namespace {
            Some(ns) => write!(f, " in namespace {ns}"),
            None => write!(f, " (cluster-wide)"),
        }
    }
}

/// The Secret of the server's namespace that holds the key Events are marked with
/// (`restart_core::KEY_SECRET`, which a server-bin test holds equal to this).
pub const EVENT_KEY_SECRET: &str = "restart-manager-event-key";

/// Exactly the permissions [`KubeCluster`](crate::KubeCluster) uses, with Leases in
/// `namespace` and the given allowlisted `workloads`: reading their kinds in their
/// namespaces, patching each by name. The RBAC in `deploy/` is checked against this list by
/// a test, and [`manifests`] grants it.
pub fn required_permissions<'a>(
    namespace: &str,
    workloads: impl IntoIterator<Item = &'a WorkloadRef>,
) -> Vec<Permission> {
    let cluster = |verb, group, resource| Permission {
        verb,
        group,
        resource,
        namespace: None,
        name: None,
    };
    let mut wanted = vec![
        cluster("get", "", "nodes"),
        cluster("list", "", "nodes"),
        cluster("watch", "", "nodes"),
        cluster("patch", "", "nodes"),
        cluster("list", "", "pods"),
        cluster("watch", "", "pods"),
        cluster("create", "", "pods/eviction"),
        cluster("list", "policy", "poddisruptionbudgets"),
        cluster("create", "", "events"),
        cluster("patch", "", "events"),
        cluster("list", "", "events"),
        cluster("create", "authentication.k8s.io", "tokenreviews"),
        cluster("create", "authorization.k8s.io", "subjectaccessreviews"),
    ];
    for verb in ["get", "list", "watch", "create", "update", "delete"] {
        wanted.push(Permission {
            verb,
            group: "coordination.k8s.io",
            resource: "leases",
            namespace: Some(namespace.to_string()),
            name: None,
        });
    }
    // The key Events are marked with lives in one Secret of the namespace: `get` on that name
    // alone (no other Secret is readable), and `create` for the first replica to find none
    // (RBAC cannot limit `create` by name).
    wanted.push(Permission {
        verb: "get",
        group: "",
        resource: "secrets",
        namespace: Some(namespace.to_string()),
        name: Some(EVENT_KEY_SECRET.to_string()),
    });
    wanted.push(Permission {
        verb: "create",
        group: "",
        resource: "secrets",
        namespace: Some(namespace.to_string()),
        name: None,
    });
    let workloads: BTreeSet<&WorkloadRef> = workloads.into_iter().collect();
    let places: BTreeSet<(WorkloadKind, &str)> = workloads
        .iter()
        .map(|w| (w.kind, w.namespace.as_str()))
        .collect();
    for (kind, ns) in places {
        for verb in ["get", "list", "watch"] {
            wanted.push(Permission {
                verb,
                group: "apps",
                resource: kind.resource(),
                namespace: Some(ns.to_string()),
                name: None,
            });
        }
    }
    for w in workloads {
        wanted.push(Permission {
            verb: "patch",
            group: "apps",
            resource: w.kind.resource(),
            namespace: Some(w.namespace.clone()),
            name: Some(w.name.clone()),
        });
    }
    wanted
}

/// What restarts on configuration changes need besides [`required_permissions`]: to list
/// and watch the ConfigMaps and Secrets of each namespace where a workload opts in. Granted
/// only where the feature is on (reading Secrets is not something to grant by default).
pub fn config_watch_permissions<'a>(
    namespaces: impl IntoIterator<Item = &'a str>,
) -> Vec<Permission> {
    let namespaces: BTreeSet<&str> = namespaces.into_iter().collect();
    let mut wanted = Vec::new();
    for ns in namespaces {
        for resource in ["configmaps", "secrets"] {
            for verb in ["list", "watch"] {
                wanted.push(Permission {
                    verb,
                    group: "",
                    resource,
                    namespace: Some(ns.to_string()),
                    name: None,
                });
            }
        }
    }
    wanted
}

/// The RBAC objects that grant exactly `permissions` to the ServiceAccount
/// `service_account` of `namespace`: one ClusterRole for what is cluster-wide, one Role in
/// each namespace for the rest, each with its binding. Objects are named `name`, and
/// `name-workloads` in namespaces other than the server's own.
pub fn manifests(
    name: &str,
    namespace: &str,
    service_account: &str,
    permissions: &[Permission],
) -> Vec<Value> {
    let subject = Subject {
        kind: "ServiceAccount".into(),
        name: service_account.into(),
        namespace: Some(namespace.into()),
        ..Default::default()
    };
    let meta = |ns: Option<&str>| ObjectMeta {
        name: Some(match ns {
            Some(ns) if ns != namespace => format!("{name}-workloads"),
            _ => name.to_string(),
        }),
        namespace: ns.map(str::to_string),
        labels: Some(BTreeMap::from([(
            "app.kubernetes.io/name".to_string(),
            "restart-manager".to_string(),
        )])),
        ..Default::default()
    };
    let role_ref = |kind: &str, ns: Option<&str>| RoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: kind.into(),
        name: meta(ns).name.unwrap_or_default(),
    };
    let mut by_scope: BTreeMap<Option<&str>, Vec<&Permission>> = BTreeMap::new();
    for p in permissions {
        by_scope.entry(p.namespace.as_deref()).or_default().push(p);
    }
    let mut objects = Vec::new();
    for (scope, list) in by_scope {
        let rules = rules(&list);
        let value = |v: Result<Value, serde_json::Error>| v.unwrap_or(Value::Null);
        match scope {
            None => {
                objects.push(value(serde_json::to_value(ClusterRole {
                    metadata: meta(None),
                    rules: Some(rules),
                    ..Default::default()
                })));
                objects.push(value(serde_json::to_value(ClusterRoleBinding {
                    metadata: meta(None),
                    role_ref: role_ref("ClusterRole", None),
                    subjects: Some(vec![subject.clone()]),
                })));
            }
            Some(ns) => {
                objects.push(value(serde_json::to_value(Role {
                    metadata: meta(Some(ns)),
                    rules: Some(rules),
                })));
                objects.push(value(serde_json::to_value(RoleBinding {
                    metadata: meta(Some(ns)),
                    role_ref: role_ref("Role", Some(ns)),
                    subjects: Some(vec![subject.clone()]),
                })));
            }
        }
    }
    objects
}

/// Verbs, names or resources of one rule.
type Words<'a> = Vec<&'a str>;

/// Policy rules for permissions of one scope: the verbs each (group, resource, names) needs,
/// with resources that need the same verbs on the same names in one rule.
fn rules(permissions: &[&Permission]) -> Vec<PolicyRule> {
    let mut verbs: BTreeMap<(&str, &str, Option<&str>), BTreeSet<&str>> = BTreeMap::new();
    for p in permissions {
        verbs
            .entry((p.group, p.resource, p.name.as_deref()))
            .or_default()
            .insert(p.verb);
    }
    // Names that share group, resource and verbs go in one rule.
    let mut named: BTreeMap<(&str, &str, Words), Words> = BTreeMap::new();
    for ((group, resource, name), verbs) in verbs {
        let verbs = order(verbs);
        let entry = named.entry((group, resource, verbs)).or_default();
        if let Some(name) = name {
            entry.push(name);
        }
    }
    // Resources that share group, verbs and names go in one rule.
    // Keyed by group, verbs and names.
    let mut merged: BTreeMap<(&str, Words, Words), Words> = BTreeMap::new();
    for ((group, resource, verbs), names) in named {
        merged
            .entry((group, verbs, names))
            .or_default()
            .push(resource);
    }
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut rules: Vec<PolicyRule> = merged
        .into_iter()
        .map(|((group, verbs, names), resources)| PolicyRule {
            api_groups: Some(vec![group.to_string()]),
            resources: Some(strings(&resources)),
            resource_names: (!names.is_empty()).then(|| strings(&names)),
            verbs: strings(&verbs),
            ..Default::default()
        })
        .collect();
    rules.sort_by_key(|r| {
        (
            r.api_groups.clone(),
            r.resource_names.is_some(),
            r.resources.clone(),
        )
    });
    rules
}

/// Verbs in the order people write them.
fn order(verbs: BTreeSet<&str>) -> Vec<&str> {
    const USUAL: [&str; 7] = [
        "get", "list", "watch", "create", "update", "patch", "delete",
    ];
    let mut ordered: Vec<&str> = USUAL
        .iter()
        .copied()
        .filter(|v| verbs.contains(v))
        .collect();
    ordered.extend(verbs.into_iter().filter(|v| !USUAL.contains(v)));
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_rights_follow_the_allowlist() {
        let web = WorkloadRef::new(WorkloadKind::Deployment, "shop", "web");
        let api = WorkloadRef::new(WorkloadKind::Deployment, "shop", "api");
        let db = WorkloadRef::new(WorkloadKind::StatefulSet, "data", "db");
        let wanted = required_permissions("restart-manager", [&web, &api, &db]);
        let shown: Vec<String> = wanted
            .iter()
            .filter(|p| p.group == "apps")
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                "get deployments.apps in namespace shop",
                "list deployments.apps in namespace shop",
                "watch deployments.apps in namespace shop",
                "get statefulsets.apps in namespace data",
                "list statefulsets.apps in namespace data",
                "watch statefulsets.apps in namespace data",
                "patch deployments.apps api in namespace shop",
                "patch deployments.apps web in namespace shop",
                "patch statefulsets.apps db in namespace data",
            ]
        );
        assert!(
            !wanted
                .iter()
                .any(|p| p.group == "apps" && p.namespace.is_none()),
            "no cluster-wide rights on workloads"
        );

        let objects = manifests(
            "restart-manager",
            "restart-manager",
            "restart-manager",
            &wanted,
        );
        let kinds: Vec<(&str, &str)> = objects
            .iter()
            .map(|o| {
                (
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["namespace"].as_str().unwrap_or("-"),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("ClusterRole", "-"),
                ("ClusterRoleBinding", "-"),
                ("Role", "data"),
                ("RoleBinding", "data"),
                ("Role", "restart-manager"),
                ("RoleBinding", "restart-manager"),
                ("Role", "shop"),
                ("RoleBinding", "shop"),
            ]
        );
        let shop = &objects[6];
        assert_eq!(shop["metadata"]["name"], "restart-manager-workloads");
        assert_eq!(
            shop["rules"],
            serde_json::json!([
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["api", "web"], "verbs": ["patch"]},
            ])
        );
        assert_eq!(objects[7]["roleRef"]["name"], "restart-manager-workloads");
        assert_eq!(objects[7]["subjects"][0]["namespace"], "restart-manager");
    }
}
