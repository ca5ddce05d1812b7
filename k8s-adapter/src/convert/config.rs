//! ConfigMaps and Secrets: as digests for the watches, whole for the service's own Secrets.

use cluster_api::{ConfigKind, ConfigObject, Secret, config_digest};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

use super::fields::{map, string};

/// A ConfigMap, as the digest of its `data` and `binaryData`.
pub fn config_map(c: core::ConfigMap) -> ConfigObject {
    let data = c.data.unwrap_or_default();
    let binary = c.binary_data.unwrap_or_default();
    let entries = data
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .chain(binary.iter().map(|(k, v)| (k.as_str(), v.0.as_slice())));
    config_object(ConfigKind::ConfigMap, c.metadata, config_digest(entries))
}

/// A Secret, as the digest of its (decoded) `data`; the data itself is dropped here.
pub fn secret(s: core::Secret) -> ConfigObject {
    let data = s.data.unwrap_or_default();
    let entries = data.iter().map(|(k, v)| (k.as_str(), v.0.as_slice()));
    config_object(ConfigKind::Secret, s.metadata, config_digest(entries))
}

/// A Secret with its data, for the service's own Secrets ([`ClusterApi::get_secret`]).
///
/// [`ClusterApi::get_secret`]: cluster_api::ClusterApi::get_secret
pub fn secret_data(s: core::Secret) -> Secret {
    Secret {
        namespace: string(s.metadata.namespace),
        name: string(s.metadata.name),
        resource_version: string(s.metadata.resource_version),
        labels: map(s.metadata.labels),
        data: s
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect(),
    }
}

/// The Secret to create: type `Opaque`, immutable (the service never changes one it made).
pub fn to_secret(s: &Secret) -> core::Secret {
    core::Secret {
        metadata: meta::ObjectMeta {
            name: Some(s.name.clone()),
            namespace: Some(s.namespace.clone()),
            labels: (!s.labels.is_empty()).then(|| s.labels.clone()),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        immutable: Some(true),
        data: Some(
            s.data
                .iter()
                .map(|(k, v)| (k.clone(), k8s_openapi::ByteString(v.clone())))
                .collect(),
        ),
        ..Default::default()
    }
}

fn config_object(kind: ConfigKind, m: meta::ObjectMeta, digest: String) -> ConfigObject {
    ConfigObject {
        kind,
        namespace: string(m.namespace),
        name: string(m.name),
        resource_version: string(m.resource_version),
        digest,
    }
}
