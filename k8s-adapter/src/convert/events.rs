//! Events, written the way the events.k8s.io API writes them and read back either way.

use cluster_api::{Event, EventType, ObjectRef};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

use super::fields::string;

/// The apiVersion of the kinds we write Events about.
pub fn api_version(kind: &str) -> &'static str {
    match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" => "apps/v1",
        "Lease" => "coordination.k8s.io/v1",
        _ => "v1",
    }
}

/// The namespace an Event about `regarding` lives in (cluster-scoped objects: `default`).
pub fn event_namespace(regarding: &ObjectRef) -> String {
    regarding
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into())
}

/// A core/v1 Event to create, in the shape the events.k8s.io API writes: `eventTime` to the
/// microsecond (so a history within one second keeps its order), the reporting controller
/// and instance, and `involvedObject.uid` (which `kubectl describe` filters on). The
/// deprecated `firstTimestamp`/`lastTimestamp`/`count` are left to the API server; repeats
/// are counted in `series` (see [`series_patch`]).
pub fn to_event(e: &Event, now: jiff::Timestamp) -> core::Event {
    let time = e.time.unwrap_or(now);
    core::Event {
        metadata: meta::ObjectMeta {
            generate_name: Some(format!("{}.", e.regarding.name)),
            namespace: Some(event_namespace(&e.regarding)),
            ..Default::default()
        },
        involved_object: core::ObjectReference {
            api_version: Some(api_version(&e.regarding.kind).into()),
            kind: Some(e.regarding.kind.clone()),
            name: Some(e.regarding.name.clone()),
            namespace: e.regarding.namespace.clone(),
            uid: e.regarding.uid.clone(),
            ..Default::default()
        },
        reason: Some(e.reason.clone()),
        message: Some(e.note.clone()),
        type_: Some(match e.type_ {
            EventType::Normal => "Normal".into(),
            EventType::Warning => "Warning".into(),
        }),
        action: Some(e.action.clone()),
        reporting_component: Some(e.reporting_controller.clone()),
        reporting_instance: Some(e.reporting_instance.clone()),
        source: Some(core::EventSource {
            component: Some(e.reporting_controller.clone()),
            host: None,
        }),
        event_time: Some(meta::MicroTime(time)),
        ..Default::default()
    }
}

/// The merge patch that records the `count`th occurrence of an Event at `at`.
pub fn series_patch(count: u32, at: jiff::Timestamp) -> serde_json::Value {
    serde_json::json!({
        "series": {
            "count": count,
            "lastObservedTime": meta::MicroTime(at),
        }
    })
}

/// An Event as read back: the last time it happened and how often, from its series, or
/// from the deprecated fields of Events written the old way (the kubelet's, say).
pub fn event(e: core::Event) -> Event {
    let o = e.involved_object;
    let (count, last) = match &e.series {
        Some(series) => (
            u32::try_from(series.count.unwrap_or(1)).unwrap_or(1).max(1),
            series.last_observed_time.as_ref().map(|t| t.0),
        ),
        None => (
            u32::try_from(e.count.unwrap_or(1)).unwrap_or(1).max(1),
            None,
        ),
    };
    Event {
        regarding: ObjectRef {
            kind: string(o.kind),
            namespace: o.namespace,
            name: string(o.name),
            uid: o.uid.filter(|u| !u.is_empty()),
        },
        type_: if e.type_.as_deref() == Some("Warning") {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: string(e.reason),
        action: string(e.action),
        note: string(e.message),
        reporting_controller: e
            .reporting_component
            .filter(|c| !c.is_empty())
            .or(e.source.and_then(|s| s.component))
            .unwrap_or_default(),
        reporting_instance: string(e.reporting_instance),
        time: last
            .or(e.event_time.map(|t| t.0))
            .or(e.last_timestamp.map(|t| t.0))
            .or(e.first_timestamp.map(|t| t.0)),
        count,
    }
}
