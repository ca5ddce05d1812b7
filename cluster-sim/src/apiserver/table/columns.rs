//! The columns the API server prints for each resource.

use cluster_api::WorkloadKind;

use crate::apiserver::discovery::Resource;

/// A column: its name, type, format and priority (1: only with `-o wide`).
pub(super) type Column = (&'static str, &'static str, &'static str, u8);

const NAME: Column = ("Name", "string", "name", 0);
const AGE: Column = ("Age", "string", "", 0);

const NODES: &[Column] = &[
    NAME,
    ("Status", "string", "", 0),
    ("Roles", "string", "", 0),
    AGE,
    ("Version", "string", "", 0),
    ("Internal-IP", "string", "", 1),
    ("External-IP", "string", "", 1),
    ("OS-Image", "string", "", 1),
    ("Kernel-Version", "string", "", 1),
    ("Container-Runtime", "string", "", 1),
];

const PODS: &[Column] = &[
    NAME,
    ("Ready", "string", "", 0),
    ("Status", "string", "", 0),
    ("Restarts", "string", "", 0),
    AGE,
    ("IP", "string", "", 1),
    ("Node", "string", "", 1),
    ("Nominated Node", "string", "", 1),
    ("Readiness Gates", "string", "", 1),
];

const DEPLOYMENTS: &[Column] = &[
    NAME,
    ("Ready", "string", "", 0),
    ("Up-to-date", "integer", "", 0),
    ("Available", "integer", "", 0),
    AGE,
    ("Containers", "string", "", 1),
    ("Images", "string", "", 1),
    ("Selector", "string", "", 1),
];

const STATEFULSETS: &[Column] = &[
    NAME,
    ("Ready", "string", "", 0),
    AGE,
    ("Containers", "string", "", 1),
    ("Images", "string", "", 1),
];

const DAEMONSETS: &[Column] = &[
    NAME,
    ("Desired", "integer", "", 0),
    ("Current", "integer", "", 0),
    ("Ready", "integer", "", 0),
    ("Up-to-date", "integer", "", 0),
    ("Available", "integer", "", 0),
    ("Node Selector", "string", "", 0),
    AGE,
];

const REPLICA_SETS: &[Column] = &[
    NAME,
    ("Desired", "integer", "", 0),
    ("Current", "integer", "", 0),
    ("Ready", "integer", "", 0),
    AGE,
];

const LEASES: &[Column] = &[NAME, ("Holder", "string", "", 0), AGE];

const BUDGETS: &[Column] = &[
    NAME,
    ("Min Available", "string", "", 0),
    ("Max Unavailable", "string", "", 0),
    ("Allowed Disruptions", "integer", "", 0),
    AGE,
];

const EVENTS: &[Column] = &[
    ("Last Seen", "string", "", 0),
    ("Type", "string", "", 0),
    ("Reason", "string", "", 0),
    ("Object", "string", "", 0),
    ("Message", "string", "", 0),
    ("Name", "string", "name", 1),
];

const NAMESPACES: &[Column] = &[NAME, ("Status", "string", "", 0), AGE];

const OTHERS: &[Column] = &[NAME, AGE];

pub(super) fn columns(resource: Resource) -> &'static [Column] {
    match resource {
        Resource::Nodes => NODES,
        Resource::Pods => PODS,
        Resource::Workloads(WorkloadKind::Deployment) => DEPLOYMENTS,
        Resource::Workloads(WorkloadKind::StatefulSet) => STATEFULSETS,
        Resource::Workloads(WorkloadKind::DaemonSet) => DAEMONSETS,
        Resource::ReplicaSets => REPLICA_SETS,
        Resource::Leases => LEASES,
        Resource::Budgets => BUDGETS,
        Resource::Events | Resource::EventsV1 => EVENTS,
        Resource::Namespaces => NAMESPACES,
        _ => OTHERS,
    }
}
