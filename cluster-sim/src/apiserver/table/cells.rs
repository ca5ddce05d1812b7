//! The cells of one row, per resource, from the object as the API serves it.

use cluster_api::WorkloadKind;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::apiserver::discovery::Resource;

/// The cells of `o`'s row, at the cluster's time `now`.
pub(super) fn cells(resource: Resource, o: &Value, now: Timestamp) -> Vec<Value> {
    let name = o["metadata"]["name"].clone();
    let age = json!(age(&o["metadata"]["creationTimestamp"], now));
    let status = &o["status"];
    let spec = &o["spec"];
    match resource {
        Resource::Nodes => node_cells(o, name, age),
        Resource::Pods => pod_cells(o, name, age),
        Resource::Workloads(kind) => workload_cells(kind, o, name, age),
        Resource::ReplicaSets => vec![
            name,
            int(&spec["replicas"]),
            int(&status["replicas"]),
            int(&status["readyReplicas"]),
            age,
        ],
        Resource::Leases => vec![name, json!(text(&spec["holderIdentity"])), age],
        Resource::Budgets => budget_cells(o, name, age),
        Resource::Events | Resource::EventsV1 => event_cells(resource, o, name, now),
        Resource::Namespaces => vec![name, status["phase"].clone(), age],
        _ => vec![name, age],
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

fn int(v: &Value) -> Value {
    json!(v.as_i64().unwrap_or(0))
}

fn node_cells(o: &Value, name: Value, age: Value) -> Vec<Value> {
    let status = &o["status"];
    let address = |kind: &str| {
        status["addresses"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["type"] == kind))
            .map_or_else(|| "<none>".to_string(), |x| text(&x["address"]))
    };
    let info = &status["nodeInfo"];
    vec![
        name,
        json!(node_status(o)),
        json!(node_roles(o)),
        age,
        json!(text(&info["kubeletVersion"])),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(text(&info["osImage"])),
        json!(text(&info["kernelVersion"])),
        json!(text(&info["containerRuntimeVersion"])),
    ]
}

fn pod_cells(o: &Value, name: Value, age: Value) -> Vec<Value> {
    let (status, spec) = (&o["status"], &o["spec"]);
    let containers = spec["containers"].as_array().map_or(0, Vec::len);
    let ready = status["containerStatuses"]
        .as_array()
        .map_or(0, |s| s.iter().filter(|c| c["ready"] == true).count());
    let restarts: i64 = status["containerStatuses"].as_array().map_or(0, |s| {
        s.iter().filter_map(|c| c["restartCount"].as_i64()).sum()
    });
    vec![
        name,
        json!(format!("{ready}/{containers}")),
        json!(pod_status(o)),
        json!(restarts.to_string()),
        age,
        json!(or_none(text(&status["podIP"]))),
        json!(or_none(text(&spec["nodeName"]))),
        json!("<none>"),
        json!("<none>"),
    ]
}

fn workload_cells(kind: WorkloadKind, o: &Value, name: Value, age: Value) -> Vec<Value> {
    let (status, spec) = (&o["status"], &o["spec"]);
    let template = &spec["template"]["spec"]["containers"];
    let joined = |field: &str| {
        template.as_array().map_or(String::new(), |c| {
            c.iter()
                .map(|x| text(&x[field]))
                .collect::<Vec<_>>()
                .join(",")
        })
    };
    let desired = spec["replicas"].as_i64().unwrap_or(1);
    let ready = status["readyReplicas"].as_i64().unwrap_or(0);
    match kind {
        WorkloadKind::Deployment => vec![
            name,
            json!(format!("{ready}/{desired}")),
            int(&status["updatedReplicas"]),
            int(&status["availableReplicas"]),
            age,
            json!(joined("name")),
            json!(joined("image")),
            json!(selector(&spec["selector"])),
        ],
        WorkloadKind::StatefulSet => vec![
            name,
            json!(format!("{ready}/{desired}")),
            age,
            json!(joined("name")),
            json!(joined("image")),
        ],
        WorkloadKind::DaemonSet => vec![
            name,
            int(&status["desiredNumberScheduled"]),
            int(&status["currentNumberScheduled"]),
            int(&status["numberReady"]),
            int(&status["updatedNumberScheduled"]),
            int(&status["numberAvailable"]),
            json!(node_selector(&spec["template"]["spec"]["nodeSelector"])),
            age,
        ],
    }
}

fn budget_cells(o: &Value, name: Value, age: Value) -> Vec<Value> {
    let bound = |v: &Value| match v {
        Value::Null => "N/A".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    vec![
        name,
        json!(bound(&o["spec"]["minAvailable"])),
        json!(bound(&o["spec"]["maxUnavailable"])),
        int(&o["status"]["disruptionsAllowed"]),
        age,
    ]
}

/// A core/v1 Event's row, or an events.k8s.io one's: its age is the last time it was seen.
fn event_cells(resource: Resource, o: &Value, name: Value, now: Timestamp) -> Vec<Value> {
    let (regarding, note) = if resource == Resource::Events {
        (&o["involvedObject"], &o["message"])
    } else {
        (&o["regarding"], &o["note"])
    };
    let seen = match &o["series"]["lastObservedTime"] {
        Value::Null => &o["eventTime"],
        last => last,
    };
    vec![
        json!(age(seen, now)),
        o["type"].clone(),
        o["reason"].clone(),
        json!(format!(
            "{}/{}",
            text(&regarding["kind"]).to_lowercase(),
            text(&regarding["name"])
        )),
        note.clone(),
        name,
    ]
}

/// A DaemonSet's node selector as `k=v,...`.
fn node_selector(selector: &Value) -> String {
    selector.as_object().map_or_else(
        || "<none>".to_string(),
        |m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", text(v)))
                .collect::<Vec<_>>()
                .join(",")
        },
    )
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

/// `Ready`, `NotReady`, with `SchedulingDisabled` for a cordoned node, as kubectl prints it.
fn node_status(node: &Value) -> String {
    let ready = node["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|x| x["type"] == "Ready"))
        .map(|c| c["status"] == "True");
    let mut status = match ready {
        Some(true) => "Ready".to_string(),
        Some(false) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if node["spec"]["unschedulable"] == true {
        status.push_str(",SchedulingDisabled");
    }
    status
}

fn node_roles(node: &Value) -> String {
    let roles: Vec<&str> = node["metadata"]["labels"]
        .as_object()
        .map(|labels| {
            labels
                .keys()
                .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                .filter(|r| !r.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.join(",")
    }
}

/// The pod's status as kubectl prints it: `Terminating` once deleted, a waiting container's
/// reason, else the phase.
fn pod_status(pod: &Value) -> String {
    if !pod["metadata"]["deletionTimestamp"].is_null() {
        return "Terminating".into();
    }
    let waiting = pod["status"]["containerStatuses"].as_array().and_then(|s| {
        s.iter()
            .find_map(|c| c["state"]["waiting"]["reason"].as_str())
    });
    match waiting {
        Some(reason) => reason.to_string(),
        None => pod["status"]["phase"]
            .as_str()
            .unwrap_or("Unknown")
            .to_string(),
    }
}

fn selector(selector: &Value) -> String {
    selector["matchLabels"].as_object().map_or_else(
        || "<none>".to_string(),
        |m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        },
    )
}

/// An age as kubectl prints it (apimachinery's `HumanDuration`).
fn age(created: &Value, now: Timestamp) -> String {
    let Some(created) = created.as_str().and_then(|t| t.parse::<Timestamp>().ok()) else {
        return "<unknown>".into();
    };
    human_duration(now.as_second() - created.as_second())
}

/// Seconds as a short human duration: `45s`, `3m12s`, `15m`, `5h3m`, `20h`, `3d4h`, `30d`,
/// `2y30d`, `9y`.
pub(super) fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let s = seconds.max(0);
    let (minute, hour, day, year) = (60, 3600, 86_400, 365 * 86_400);
    let pair = |a: i64, unit_a: &str, b: i64, unit_b: &str| {
        if b == 0 {
            format!("{a}{unit_a}")
        } else {
            format!("{a}{unit_a}{b}{unit_b}")
        }
    };
    if s < 2 * minute {
        format!("{s}s")
    } else if s < 10 * minute {
        pair(s / minute, "m", s % minute, "s")
    } else if s < 3 * hour {
        format!("{}m", s / minute)
    } else if s < 8 * hour {
        pair(s / hour, "h", (s % hour) / minute, "m")
    } else if s < 2 * day {
        format!("{}h", s / hour)
    } else if s < 8 * day {
        pair(s / day, "d", (s % day) / hour, "h")
    } else if s < 2 * year {
        format!("{}d", s / day)
    } else if s < 8 * year {
        pair(s / year, "y", (s % year) / day, "d")
    } else {
        format!("{}y", s / year)
    }
}
