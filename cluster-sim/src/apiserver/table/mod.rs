//! Server-side printing: the `meta.k8s.io/v1` `Table` that `kubectl get` asks for
//! (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), with the columns the API server
//! prints for each resource, so `kubectl get nodes -w` shows status, roles and versions rather
//! than names alone.

use axum::http::{HeaderMap, header};
use jiff::Timestamp;
use serde_json::{Value, json};

mod cells;
mod columns;

use super::discovery::Resource;
use cells::cells;
use columns::columns;

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

#[cfg(test)]
mod tests {
    use super::cells::human_duration;
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
