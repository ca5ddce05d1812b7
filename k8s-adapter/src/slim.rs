//! Objects read as only the fields the cores use.
//!
//! A real Node is about 31 KiB of JSON, most of it the image list and managed fields. Decoding
//! it into k8s-openapi's `Node` builds all of that before the adapter throws it away, and the
//! allocator keeps the memory: with 5,000 nodes, hundreds of megabytes. [`SlimNode`] is a
//! Node type whose deserializer skips every field the cores do not use, so the list and the
//! watch never allocate for them.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Deserializer};

/// A Node with only what `cluster_api::Node` is made from.
#[derive(Debug, Clone, Deserialize)]
pub struct SlimNode {
    /// Name, uid, resourceVersion, labels, annotations (no managed fields).
    #[serde(deserialize_with = "slim_meta")]
    pub metadata: ObjectMeta,
    /// `spec.unschedulable`.
    #[serde(default)]
    pub spec: Option<SlimNodeSpec>,
    /// `status.nodeInfo` ids and the Ready condition.
    #[serde(default)]
    pub status: Option<SlimNodeStatus>,
}

/// `spec`, trimmed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlimNodeSpec {
    /// Cordoned.
    #[serde(default)]
    pub unschedulable: Option<bool>,
    /// `podCIDR` (the first of `podCIDRs`).
    #[serde(default, rename = "podCIDR")]
    pub pod_cidr: Option<String>,
    /// `podCIDRs`.
    #[serde(default, rename = "podCIDRs")]
    pub pod_cidrs: Option<Vec<String>>,
}

/// `status`, trimmed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlimNodeStatus {
    /// The machine and boot ids.
    #[serde(default)]
    pub node_info: Option<SlimNodeInfo>,
    /// Conditions, type and status only.
    #[serde(default)]
    pub conditions: Option<Vec<SlimCondition>>,
    /// Addresses, type and address.
    #[serde(default)]
    pub addresses: Option<Vec<SlimAddress>>,
}

/// One of `status.addresses`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SlimAddress {
    /// `InternalIP`, `ExternalIP`, `Hostname`, ...
    #[serde(rename = "type")]
    pub type_: String,
    /// As the kubelet reported it: an IP for `InternalIP` and `ExternalIP`, a host name for
    /// `Hostname`; not parsed here.
    pub address: String,
}

/// `status.nodeInfo`, trimmed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlimNodeInfo {
    /// `machineID`.
    #[serde(default, rename = "machineID")]
    pub machine_id: String,
    /// `bootID`.
    #[serde(default, rename = "bootID")]
    pub boot_id: String,
}

/// A condition's type and status.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SlimCondition {
    /// `type`; only `Ready` is read.
    #[serde(rename = "type")]
    pub type_: String,
    /// `"True"`, `"False"` or `"Unknown"`; a node is ready only on `"True"`.
    pub status: String,
    /// `lastHeartbeatTime`, when the kubelet posted it.
    #[serde(default, rename = "lastHeartbeatTime")]
    pub last_heartbeat_time: Option<cluster_api::Timestamp>,
}

/// Object metadata without managed fields, owner references or the rest.
fn slim_meta<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Meta {
        name: Option<String>,
        uid: Option<String>,
        resource_version: Option<String>,
        labels: Option<BTreeMap<String, String>>,
        annotations: Option<BTreeMap<String, String>>,
    }
    let m = Meta::deserialize(d)?;
    Ok(ObjectMeta {
        name: m.name,
        uid: m.uid,
        resource_version: m.resource_version,
        labels: m.labels,
        annotations: m.annotations,
        ..ObjectMeta::default()
    })
}

impl kube::Resource for SlimNode {
    type DynamicType = ();
    type Scope = k8s_openapi::ClusterResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Node".into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        "nodes".into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}
