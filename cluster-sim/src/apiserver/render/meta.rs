//! The pieces every object shares: times, string maps, `metadata`, derived uids.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::budget::IntOrPercent;
use crate::state::fnv1a;

/// `Time`: RFC 3339 to the second.
pub(crate) fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `MicroTime`: RFC 3339 with exactly six fractional digits.
pub(crate) fn micro_time(t: Timestamp) -> String {
    format!(
        "{}.{:06}Z",
        t.strftime("%Y-%m-%dT%H:%M:%S"),
        t.subsec_microsecond()
    )
}

pub(super) fn string_map(m: &BTreeMap<String, String>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// `metadata`, leaving out what is empty as the API server does.
pub(super) fn metadata(
    name: &str,
    namespace: Option<&str>,
    uid: &str,
    rv: &str,
    created: Timestamp,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    if let Some(ns) = namespace {
        m.insert("namespace".into(), json!(ns));
    }
    if !uid.is_empty() {
        m.insert("uid".into(), json!(uid));
    }
    m.insert("resourceVersion".into(), json!(rv));
    m.insert("creationTimestamp".into(), json!(time(created)));
    if !labels.is_empty() {
        m.insert("labels".into(), string_map(labels));
    }
    if !annotations.is_empty() {
        m.insert("annotations".into(), string_map(annotations));
    }
    m
}

/// A uid made from another and a name, stable across calls.
pub(crate) fn derived_uid(base: &str, name: &str) -> String {
    let h = fnv1a(base.bytes().chain(name.bytes()));
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (h >> 20) & 0xfff,
        h & 0xffff_ffff_ffff
    )
}

pub(super) fn int_or_percent(v: IntOrPercent) -> Value {
    match v {
        IntOrPercent::Int(n) => json!(n),
        IntOrPercent::Percent(p) => json!(format!("{p}%")),
    }
}
