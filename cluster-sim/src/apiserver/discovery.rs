//! Discovery: the resources served, their kinds and verbs, and the documents that list them.

use cluster_api::WorkloadKind;
use serde_json::{Value, json};

/// The resources served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    Nodes,
    Pods,
    Events,
    /// The same Events in the `events.k8s.io/v1` shape.
    EventsV1,
    Namespaces,
    Leases,
    /// Secrets, with their data: those put by the scenario and those created through the API.
    Secrets,
    Workloads(WorkloadKind),
    ReplicaSets,
    Budgets,
    TokenReviews,
    SubjectAccessReviews,
    SelfSubjectAccessReviews,
}

/// One entry of discovery.
pub(crate) struct Kind {
    pub(crate) group: &'static str,
    pub(crate) version: &'static str,
    pub(crate) name: &'static str,
    pub(crate) singular: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) namespaced: bool,
    pub(crate) verbs: &'static [&'static str],
    pub(crate) short: &'static [&'static str],
    pub(crate) resource: Option<Resource>,
}

pub(crate) const READ_PATCH: &[&str] = &["get", "list", "watch", "patch"];
pub(crate) const WORKLOAD_VERBS: &[&str] = &["create", "get", "list", "watch", "patch"];

pub(crate) const KINDS: &[Kind] = &[
    Kind {
        group: "",
        version: "v1",
        name: "nodes",
        singular: "node",
        kind: "Node",
        namespaced: false,
        verbs: READ_PATCH,
        short: &["no"],
        resource: Some(Resource::Nodes),
    },
    Kind {
        group: "",
        version: "v1",
        name: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        verbs: &["get", "list", "watch", "delete"],
        short: &["po"],
        resource: Some(Resource::Pods),
    },
    Kind {
        group: "",
        version: "v1",
        name: "pods/eviction",
        singular: "",
        kind: "Eviction",
        namespaced: true,
        verbs: &["create"],
        short: &[],
        resource: None,
    },
    Kind {
        group: "",
        version: "v1",
        name: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        verbs: &["create", "get", "list", "patch"],
        short: &["ev"],
        resource: Some(Resource::Events),
    },
    Kind {
        group: "events.k8s.io",
        version: "v1",
        name: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        verbs: &["get", "list"],
        short: &["ev"],
        resource: Some(Resource::EventsV1),
    },
    Kind {
        group: "",
        version: "v1",
        name: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        verbs: &["create", "delete", "get", "list"],
        short: &["ns"],
        resource: Some(Resource::Namespaces),
    },
    Kind {
        group: "apps",
        version: "v1",
        name: "deployments",
        singular: "deployment",
        kind: "Deployment",
        namespaced: true,
        verbs: WORKLOAD_VERBS,
        short: &["deploy"],
        resource: Some(Resource::Workloads(WorkloadKind::Deployment)),
    },
    Kind {
        group: "apps",
        version: "v1",
        name: "statefulsets",
        singular: "statefulset",
        kind: "StatefulSet",
        namespaced: true,
        verbs: WORKLOAD_VERBS,
        short: &["sts"],
        resource: Some(Resource::Workloads(WorkloadKind::StatefulSet)),
    },
    Kind {
        group: "apps",
        version: "v1",
        name: "daemonsets",
        singular: "daemonset",
        kind: "DaemonSet",
        namespaced: true,
        verbs: WORKLOAD_VERBS,
        short: &["ds"],
        resource: Some(Resource::Workloads(WorkloadKind::DaemonSet)),
    },
    Kind {
        group: "apps",
        version: "v1",
        name: "replicasets",
        singular: "replicaset",
        kind: "ReplicaSet",
        namespaced: true,
        verbs: &["get", "list"],
        short: &["rs"],
        resource: Some(Resource::ReplicaSets),
    },
    Kind {
        group: "",
        version: "v1",
        name: "secrets",
        singular: "secret",
        kind: "Secret",
        namespaced: true,
        verbs: &["create", "get", "list"],
        short: &[],
        resource: Some(Resource::Secrets),
    },
    Kind {
        group: "coordination.k8s.io",
        version: "v1",
        name: "leases",
        singular: "lease",
        kind: "Lease",
        namespaced: true,
        verbs: &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
        short: &[],
        resource: Some(Resource::Leases),
    },
    Kind {
        group: "policy",
        version: "v1",
        name: "poddisruptionbudgets",
        singular: "poddisruptionbudget",
        kind: "PodDisruptionBudget",
        namespaced: true,
        verbs: &["create", "get", "list"],
        short: &["pdb"],
        resource: Some(Resource::Budgets),
    },
    Kind {
        group: "authentication.k8s.io",
        version: "v1",
        name: "tokenreviews",
        singular: "",
        kind: "TokenReview",
        namespaced: false,
        verbs: &["create"],
        short: &[],
        resource: Some(Resource::TokenReviews),
    },
    Kind {
        group: "authorization.k8s.io",
        version: "v1",
        name: "subjectaccessreviews",
        singular: "",
        kind: "SubjectAccessReview",
        namespaced: false,
        verbs: &["create"],
        short: &[],
        resource: Some(Resource::SubjectAccessReviews),
    },
    Kind {
        group: "authorization.k8s.io",
        version: "v1",
        name: "selfsubjectaccessreviews",
        singular: "",
        kind: "SelfSubjectAccessReview",
        namespaced: false,
        verbs: &["create"],
        short: &[],
        resource: Some(Resource::SelfSubjectAccessReviews),
    },
];

pub(crate) fn kind_of(resource: Resource) -> &'static Kind {
    KINDS
        .iter()
        .find(|k| k.resource == Some(resource))
        .unwrap_or(&KINDS[0])
}

pub(crate) fn group_version(k: &Kind) -> String {
    if k.group.is_empty() {
        k.version.to_string()
    } else {
        format!("{}/{}", k.group, k.version)
    }
}

pub(crate) fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "gitVersion": "v1.33.4+cluster-sim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-05T09:00:00Z",
        "goVersion": "go1.24.6",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub(crate) fn group_list() -> Value {
    let mut groups: Vec<&str> = KINDS
        .iter()
        .map(|k| k.group)
        .filter(|g| !g.is_empty())
        .collect();
    groups.dedup();
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": groups.iter().map(|g| json!({
            "name": g,
            "versions": [{"groupVersion": format!("{g}/v1"), "version": "v1"}],
            "preferredVersion": {"groupVersion": format!("{g}/v1"), "version": "v1"},
        })).collect::<Vec<_>>(),
    })
}

pub(crate) fn resource_list(group: &str, version: &str) -> Value {
    let resources: Vec<Value> = KINDS
        .iter()
        .filter(|k| k.group == group && k.version == version)
        .map(|k| {
            let mut r = json!({
                "name": k.name,
                "singularName": k.singular,
                "namespaced": k.namespaced,
                "kind": k.kind,
                "verbs": k.verbs,
            });
            if !k.short.is_empty() {
                r["shortNames"] = json!(k.short);
            }
            if k.name == "pods/eviction" {
                r["group"] = json!("policy");
                r["version"] = json!("v1");
            }
            r
        })
        .collect();
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": if group.is_empty() { version.to_string() } else { format!("{group}/{version}") },
        "resources": resources,
    })
}

pub(crate) fn resource_label(resource: Resource) -> String {
    let k = kind_of(resource);
    if k.group.is_empty() {
        k.name.to_string()
    } else {
        format!("{}.{}", k.name, k.group)
    }
}
