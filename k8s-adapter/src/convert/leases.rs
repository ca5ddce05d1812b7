//! Leases, read and written.

use std::collections::BTreeMap;

use cluster_api::Lease;
use k8s_openapi::api::coordination::v1 as coordination;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

use super::fields::{map, string};

/// A Lease as the cores see it: metadata and spec, nothing else.
pub fn lease(l: coordination::Lease) -> Lease {
    let spec = l.spec.unwrap_or_default();
    Lease {
        namespace: string(l.metadata.namespace),
        name: string(l.metadata.name),
        resource_version: string(l.metadata.resource_version),
        uid: string(l.metadata.uid),
        labels: map(l.metadata.labels),
        annotations: map(l.metadata.annotations),
        holder_identity: spec.holder_identity,
        lease_duration_seconds: spec.lease_duration_seconds,
        acquire_time: spec.acquire_time.map(|t| t.0),
        renew_time: spec.renew_time.map(|t| t.0),
        lease_transitions: spec.lease_transitions,
    }
}

/// The Lease to write; an empty resourceVersion is left out (creates).
pub fn to_lease(l: &Lease) -> coordination::Lease {
    let non_empty = |m: &BTreeMap<String, String>| (!m.is_empty()).then(|| m.clone());
    coordination::Lease {
        metadata: meta::ObjectMeta {
            name: Some(l.name.clone()),
            namespace: Some(l.namespace.clone()),
            resource_version: (!l.resource_version.is_empty()).then(|| l.resource_version.clone()),
            labels: non_empty(&l.labels),
            annotations: non_empty(&l.annotations),
            ..Default::default()
        },
        spec: Some(coordination::LeaseSpec {
            holder_identity: l.holder_identity.clone(),
            lease_duration_seconds: l.lease_duration_seconds,
            acquire_time: l.acquire_time.map(meta::MicroTime),
            renew_time: l.renew_time.map(meta::MicroTime),
            lease_transitions: l.lease_transitions,
            ..Default::default()
        }),
    }
}
