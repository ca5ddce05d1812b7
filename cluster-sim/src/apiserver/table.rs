//! Server-side printing: the `meta.k8s.io/v1` `Table` that `kubectl get` asks for
//! (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), with the columns the API server
//! prints for each resource, so `kubectl get nodes -w` shows status, roles and versions rather
//! than names alone.

use axum::http::{HeaderMap, header};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::discovery::Resource;
use cluster_api::WorkloadKind;

/// Whether the client asked for a Table (kubectl get does, with JSON as the fallback).
pub(crate) fn wanted(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            accept.split(',').any(|media| {
                let params: Vec<&str> = media.split(';').map(str::trim).collect();
                params.contains(&"as=Table") && params.contains(&"g=meta.k8s.io")
            })
        })
}

/// What each row carries besides its cells (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Include {
    None,
    Metadata,
    Object,
}

impl Include {
    pub(crate) fn from_query(value: Option<&str>) -> Include {
        match value {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        }
    }
}

/// A column: its name, type, format and priority (1: only with `-o wide`).
type Column = (&'static str, &'static str, &'static str, u8);

fn columns(resource: Resource) -> &'static [Column] {
    const NAME: Column = ("Name", "string", "name", 0);
    const AGE: Column = ("Age", "string", "", 0);
    match resource {
        Resource::Nodes => &[
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
        ],
        Resource::Pods => &[
            NAME,
            ("Ready", "string", "", 0),
            ("Status", "string", "", 0),
            ("Restarts", "string", "", 0),
            AGE,
            ("IP", "string", "", 1),
            ("Node", "string", "", 1),
            ("Nominated Node", "string", "", 1),
            ("Readiness Gates", "string", "", 1),
        ],
        Resource::Workloads(WorkloadKind::Deployment) => &[
            NAME,
            ("Ready", "string", "", 0),
            ("Up-to-date", "integer", "", 0),
            ("Available", "integer", "", 0),
            AGE,
            ("Containers", "string", "", 1),
            ("Images", "string", "", 1),
            ("Selector", "string", "", 1),
        ],
        Resource::Workloads(WorkloadKind::StatefulSet) => &[
            NAME,
            ("Ready", "string", "", 0),
            AGE,
            ("Containers", "string", "", 1),
            ("Images", "string", "", 1),
        ],
        Resource::Workloads(WorkloadKind::DaemonSet) => &[
            NAME,
            ("Desired", "integer", "", 0),
            ("Current", "integer", "", 0),
            ("Ready", "integer", "", 0),
            ("Up-to-date", "integer", "", 0),
            ("Available", "integer", "", 0),
            ("Node Selector", "string", "", 0),
            AGE,
        ],
        Resource::ReplicaSets => &[
            NAME,
            ("Desired", "integer", "", 0),
            ("Current", "integer", "", 0),
            ("Ready", "integer", "", 0),
            AGE,
        ],
        Resource::Leases => &[NAME, ("Holder", "string", "", 0), AGE],
        Resource::Budgets => &[
            NAME,
            ("Min Available", "string", "", 0),
            ("Max Unavailable", "string", "", 0),
            ("Allowed Disruptions", "integer", "", 0),
            AGE,
        ],
        Resource::Events | Resource::EventsV1 => &[
            ("Last Seen", "string", "", 0),
            ("Type", "string", "", 0),
            ("Reason", "string", "", 0),
            ("Object", "string", "", 0),
            ("Message", "string", "", 0),
            ("Name", "string", "name", 1),
        ],
        Resource::Namespaces => &[NAME, ("Status", "string", "", 0), AGE],
        _ => &[NAME, AGE],
    }
}

/// A Table of `objects` (rendered as the API serves them), at the cluster's time `now`.
pub(crate) fn table(
    resource: Resource,
    objects: &[Value],
    resource_version: Option<&str>,
    include: Include,
    now: Timestamp,
) -> Value {
    let definitions: Vec<Value> = columns(resource)
        .iter()
        .map(|(name, type_, format, priority)| {
            json!({"name": name, "type": type_, "format": format, "description": "", "priority": priority})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({"cells": cells(resource, o, now)});
            match include {
                Include::None => {}
                Include::Metadata => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": o["metadata"],
                    });
                }
                Include::Object => row["object"] = o.clone(),
            }
            row
        })
        .collect();
    let mut metadata = json!({});
    if let Some(rv) = resource_version {
        metadata["resourceVersion"] = json!(rv);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

fn cells(resource: Resource, o: &Value, now: Timestamp) -> Vec<Value> {
    let name = o["metadata"]["name"].clone();
    let age = json!(age(&o["metadata"]["creationTimestamp"], now));
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let int = |v: &Value| json!(v.as_i64().unwrap_or(0));
    let status = &o["status"];
    let spec = &o["spec"];
    match resource {
        Resource::Nodes => {
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
        Resource::Pods => {
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
        Resource::Workloads(kind) => {
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
                    json!(
                        spec["template"]["spec"]["nodeSelector"]
                            .as_object()
                            .map_or_else(
                                || "<none>".to_string(),
                                |m| m
                                    .iter()
                                    .map(|(k, v)| format!("{k}={}", text(v)))
                                    .collect::<Vec<_>>()
                                    .join(",")
                            )
                    ),
                    age,
                ],
            }
        }
        Resource::ReplicaSets => vec![
            name,
            int(&spec["replicas"]),
            int(&status["replicas"]),
            int(&status["readyReplicas"]),
            age,
        ],
        Resource::Leases => vec![name, json!(text(&spec["holderIdentity"])), age],
        Resource::Budgets => {
            let bound = |v: &Value| match v {
                Value::Null => "N/A".to_string(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            vec![
                name,
                json!(bound(&spec["minAvailable"])),
                json!(bound(&spec["maxUnavailable"])),
                int(&status["disruptionsAllowed"]),
                age,
            ]
        }
        Resource::Events | Resource::EventsV1 => {
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
                json!(self::age(seen, now)),
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
        Resource::Namespaces => vec![name, status["phase"].clone(), age],
        _ => vec![name, age],
    }
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
pub(crate) fn human_duration(seconds: i64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_kubectl_prints_them() {
        let cases = [
            (-5, "<invalid>"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (192, "3m12s"),
            (900, "15m"),
            (3 * 3600 + 60, "3h1m"),
            (20 * 3600, "20h"),
            (3 * 86_400 + 4 * 3600, "3d4h"),
            (30 * 86_400, "30d"),
            (2 * 365 * 86_400 + 30 * 86_400, "2y30d"),
            (9 * 365 * 86_400, "9y"),
        ];
        for (seconds, printed) in cases {
            assert_eq!(human_duration(seconds), printed, "{seconds}s");
        }
    }

    #[test]
    fn only_a_table_request_gets_a_table() {
        let mut headers = HeaderMap::new();
        assert!(!wanted(&headers));
        headers.insert(
            header::ACCEPT,
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
                .parse()
                .unwrap(),
        );
        assert!(wanted(&headers));
        headers.insert(header::ACCEPT, "application/json".parse().unwrap());
        assert!(!wanted(&headers));
    }

    #[test]
    fn a_cordoned_unready_node_prints_as_kubectl_shows_it() {
        let node = json!({
            "metadata": {"name": "n1", "creationTimestamp": "2026-01-05T09:00:00Z",
                         "labels": {"node-role.kubernetes.io/worker": ""}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}],
                       "nodeInfo": {"kubeletVersion": "v1.33.4"}},
        });
        let now: Timestamp = "2026-01-05T09:03:12Z".parse().unwrap();
        let t = table(Resource::Nodes, &[node], Some("7"), Include::Metadata, now);
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[0], "n1");
        assert_eq!(cells[1], "NotReady,SchedulingDisabled");
        assert_eq!(cells[2], "worker");
        assert_eq!(cells[3], "3m12s");
        assert_eq!(cells[4], "v1.33.4");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["metadata"]["resourceVersion"], "7");
    }
}
