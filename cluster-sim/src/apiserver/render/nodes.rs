//! Nodes, as the kubelet and the node lifecycle controller keep them, with the
//! `status.images` that make up most of a real Node's size.

use std::sync::Arc;

use cluster_api::Node;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::state::{State, fnv1a};

use super::meta::{metadata, time};

/// A Node as the kubelet and the node lifecycle controller keep it.
pub(crate) fn node(st: &State, n: &Node) -> Value {
    let mut node = node_without_images(st, n);
    if st.config.node_images > 0 {
        node["status"]["images"] = images(st.config.node_images).value.clone();
    }
    node
}

/// A Node without `status.images`, which [`list_item`] adds as text.
pub(crate) fn node_without_images(st: &State, n: &Node) -> Value {
    let created = st.config.start_time;
    let ready = if n.ready { "True" } else { "Unknown" };
    let (reason, message) = if n.ready {
        ("KubeletReady", "kubelet is posting ready status")
    } else {
        ("NodeStatusUnknown", "Kubelet stopped posting node status.")
    };
    let now = time(st.wall());
    let mut taints = Vec::new();
    if n.unschedulable {
        taints.push(json!({"key": cluster_api::UNSCHEDULABLE_TAINT, "effect": "NoSchedule", "timeAdded": now}));
    }
    if !n.ready {
        taints.push(json!({"key": cluster_api::UNREACHABLE_TAINT, "effect": "NoSchedule", "timeAdded": now}));
        taints.push(
            json!({"key": cluster_api::UNREACHABLE_TAINT, "effect": "NoExecute", "timeAdded": now}),
        );
    }
    let mut spec = Map::new();
    if let Some(first) = n.pod_cidrs.first() {
        spec.insert("podCIDR".into(), json!(first));
        spec.insert("podCIDRs".into(), json!(n.pod_cidrs));
    }
    if n.unschedulable {
        spec.insert("unschedulable".into(), json!(true));
    }
    if !taints.is_empty() {
        spec.insert("taints".into(), Value::Array(taints));
    }
    let mut addresses: Vec<Value> = n
        .addresses
        .iter()
        .enumerate()
        .map(|(i, a)| json!({"type": if i == 0 { "InternalIP" } else { "ExternalIP" }, "address": a}))
        .collect();
    addresses.push(json!({"type": "Hostname", "address": n.name}));
    json!({
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": metadata(&n.name, None, &n.uid, &n.resource_version, created, &n.labels, &n.annotations),
        "spec": spec,
        "status": {
            "capacity": {"cpu": "4", "memory": "16367580Ki", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "16265180Ki", "pods": "110"},
            "conditions": [{
                "type": "Ready",
                "status": ready,
                "lastHeartbeatTime": time(n.heartbeat.unwrap_or(created)),
                "lastTransitionTime": time(created),
                "reason": reason,
                "message": message,
            }],
            "addresses": addresses,
            "nodeInfo": {
                "machineID": n.machine_id,
                "systemUUID": n.machine_id,
                "bootID": n.boot_id,
                "kernelVersion": "6.14.0-63.fc42.x86_64",
                "osImage": "Fedora CoreOS 42.20251110.3.0",
                "containerRuntimeVersion": "cri-o://1.33.1",
                "kubeletVersion": "v1.33.4",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    })
}

/// One item of a list response, as JSON text. With `node_images` > 0, the item is a Node
/// rendered by [`node_without_images`], and gets its `status.images` spliced in from one copy serialized once (`images` > 0): building
/// and dropping fifty image objects for each of 100,000 Nodes made the simulation, not the
/// client, the slow end of a large list. A real API server likewise serves encoded objects
/// from its watch cache.
pub(crate) fn list_item(item: &Value, node_images: usize) -> Box<RawValue> {
    let raw = if node_images > 0 {
        serde_json::value::to_raw_value(&WithImages(item, &images(node_images).json))
    } else {
        serde_json::value::to_raw_value(item)
    };
    raw.expect("a JSON value serializes")
}

/// A Node with `status.images` added on the way out.
struct WithImages<'a>(&'a Value, &'a RawValue);

impl Serialize for WithImages<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Value::Object(top) = self.0 else {
            return self.0.serialize(s);
        };
        let mut map = s.serialize_map(Some(top.len()))?;
        for (k, v) in top {
            match v {
                Value::Object(status) if k == "status" => {
                    map.serialize_entry(k, &StatusWithImages(status, self.1))?;
                }
                _ => map.serialize_entry(k, v)?,
            }
        }
        map.end()
    }
}

struct StatusWithImages<'a>(&'a Map<String, Value>, &'a RawValue);

impl Serialize for StatusWithImages<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len() + 1))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.serialize_entry("images", self.1)?;
        map.end()
    }
}

/// The images a node's kubelet reports, as a value and as JSON text: the same on every node,
/// as a fleet running the same DaemonSets and system images has. Made once per count.
struct Images {
    count: usize,
    value: Value,
    json: Box<RawValue>,
}

fn images(count: usize) -> Arc<Images> {
    static MADE: parking_lot::Mutex<Option<Arc<Images>>> = parking_lot::Mutex::new(None);
    let mut made = MADE.lock();
    if let Some(images) = made.as_ref()
        && images.count == count
    {
        return images.clone();
    }
    let value = Value::Array(
        (0..count)
            .map(|k| {
                let digest = format!("{:016x}", fnv1a(k.to_le_bytes()));
                json!({
                    "names": [
                        format!("quay.io/example/service-{k}@sha256:{}", digest.repeat(4)),
                        format!("quay.io/example/service-{k}:v1.{k}.0"),
                    ],
                    "sizeBytes": 10_000_000 + k * 1_000_003,
                })
            })
            .collect(),
    );
    let json = serde_json::value::to_raw_value(&value).expect("a JSON value serializes");
    let images = Arc::new(Images { count, value, json });
    *made = Some(images.clone());
    images
}

/// A node's first address (its `InternalIP`).
pub(crate) fn node_address(st: &State, name: &str) -> String {
    st.nodes
        .get(name)
        .and_then(|n| n.addresses.first().cloned())
        .unwrap_or_default()
}
