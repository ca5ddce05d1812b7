//! Leases and Secrets: where restart-manager keeps its state.

use cluster_api::Lease;
use serde_json::{Map, Value, json};

use crate::state::State;

use super::meta::{derived_uid, metadata, micro_time};

/// A `coordination.k8s.io/v1` Lease.
pub(crate) fn lease(st: &State, l: &Lease) -> Value {
    let mut spec = Map::new();
    if let Some(h) = &l.holder_identity {
        spec.insert("holderIdentity".into(), json!(h));
    }
    if let Some(d) = l.lease_duration_seconds {
        spec.insert("leaseDurationSeconds".into(), json!(d));
    }
    if let Some(t) = l.acquire_time {
        spec.insert("acquireTime".into(), json!(micro_time(t)));
    }
    if let Some(t) = l.renew_time {
        spec.insert("renewTime".into(), json!(micro_time(t)));
    }
    if let Some(t) = l.lease_transitions {
        spec.insert("leaseTransitions".into(), json!(t));
    }
    let uid = if l.uid.is_empty() {
        derived_uid(&l.namespace, &l.name)
    } else {
        l.uid.clone()
    };
    json!({
        "kind": "Lease",
        "apiVersion": "coordination.k8s.io/v1",
        "metadata": metadata(&l.name, Some(&l.namespace), &uid, &l.resource_version, st.config.start_time, &l.labels, &l.annotations),
        "spec": spec,
    })
}

/// A core/v1 Secret of type `Opaque`, its data base64-encoded as the API serves it.
pub(crate) fn secret(st: &State, s: &cluster_api::Secret) -> Value {
    use base64::Engine;
    let data: Map<String, Value> = s
        .data
        .iter()
        .map(|(k, v)| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(v);
            (k.clone(), json!(encoded))
        })
        .collect();
    let uid = derived_uid(&s.namespace, &s.name);
    json!({
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": metadata(&s.name, Some(&s.namespace), &uid, &s.resource_version, st.config.start_time, &s.labels, &Default::default()),
        "type": "Opaque",
        "data": data,
    })
}
