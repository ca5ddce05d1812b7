//! Events, in both the events.k8s.io/v1 and the core/v1 shape.

use cluster_api::{Event, EventType};
use serde_json::{Map, Value, json};

use crate::state::State;

use super::meta::{derived_uid, micro_time, time};

/// A core/v1 Event, as the events.k8s.io API stores one.
pub(crate) fn event(st: &State, seq: u64, e: &Event, name: &str) -> Value {
    let namespace = e
        .regarding
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let mut involved = Map::new();
    involved.insert(
        "apiVersion".into(),
        json!(match e.regarding.kind.as_str() {
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => "apps/v1",
            "Lease" => "coordination.k8s.io/v1",
            _ => "v1",
        }),
    );
    involved.insert("kind".into(), json!(e.regarding.kind));
    involved.insert("name".into(), json!(e.regarding.name));
    if let Some(ns) = &e.regarding.namespace {
        involved.insert("namespace".into(), json!(ns));
    }
    if let Some(uid) = &e.regarding.uid {
        involved.insert("uid".into(), json!(uid));
    }
    let at = e.time.unwrap_or(st.config.start_time);
    let mut event = json!({
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": derived_uid("event", name),
            "resourceVersion": seq.to_string(),
            "creationTimestamp": time(at),
        },
        "involvedObject": involved,
        "reason": e.reason,
        "message": e.note,
        "source": {"component": e.reporting_controller},
        "type": match e.type_ { EventType::Normal => "Normal", EventType::Warning => "Warning" },
        "eventTime": micro_time(at),
        "action": e.action,
        "reportingComponent": e.reporting_controller,
        "reportingInstance": e.reporting_instance,
    });
    if e.count > 1 {
        event["series"] = json!({"count": e.count, "lastObservedTime": micro_time(at)});
    }
    event
}

/// The same Event as `events.k8s.io/v1` shows it: `regarding` and `note`, the core fields
/// kept under their `deprecated` names.
pub(crate) fn event_v1(st: &State, seq: u64, e: &Event, name: &str) -> Value {
    let core = event(st, seq, e, name);
    let at = e.time.unwrap_or(st.config.start_time);
    let mut v1 = json!({
        "kind": "Event",
        "apiVersion": "events.k8s.io/v1",
        "metadata": core["metadata"],
        "eventTime": core["eventTime"],
        "reportingController": e.reporting_controller,
        "reportingInstance": e.reporting_instance,
        "action": e.action,
        "reason": e.reason,
        "regarding": core["involvedObject"],
        "note": e.note,
        "type": core["type"],
        "deprecatedSource": core["source"],
        "deprecatedFirstTimestamp": time(at),
        "deprecatedLastTimestamp": time(at),
        "deprecatedCount": e.count.max(1),
    });
    if !core["series"].is_null() {
        v1["series"] = core["series"].clone();
    }
    v1
}
