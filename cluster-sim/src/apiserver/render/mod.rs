//! The simulated objects in the API server's JSON shapes (those of
//! `shared/fixtures/kubernetes/`): what kubectl, kube-rs and client-go decode.

use std::collections::BTreeMap;
use std::sync::Arc;

use cluster_api::{
    Event, EventType, Lease, Node, Pod, PodPhase, TolerationOperator, UpdateStrategy, Workload,
    WorkloadKind,
};
use jiff::Timestamp;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::budget::{Budget, IntOrPercent};
use crate::state::{REVISION_HISTORY_LIMIT, SimWorkload, State, fnv1a};

mod workloads;
pub(crate) use workloads::{replica_sets, workload};

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

fn string_map(m: &BTreeMap<String, String>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// `metadata`, leaving out what is empty as the API server does.
fn metadata(
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

// === nodes ===

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

// === pods ===

/// A Pod with one container.
pub(crate) fn pod(st: &State, p: &Pod) -> Value {
    let created = st
        .pods
        .get(&(p.namespace.clone(), p.name.clone()))
        .map_or(st.config.start_time, |sp| sp.created);
    let mut meta = metadata(
        &p.name,
        Some(&p.namespace),
        &p.uid,
        &p.resource_version,
        created,
        &p.labels,
        &BTreeMap::new(),
    );
    if p.mirror {
        meta.insert(
            "annotations".into(),
            json!({cluster_api::MIRROR_POD_ANNOTATION: "simulated"}),
        );
    }
    if let Some(owner) = &p.controller {
        let api_version = match owner.kind.as_str() {
            "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Deployment" => "apps/v1",
            "Job" => "batch/v1",
            _ => "v1",
        };
        let uid = owner_uid(st, p, &owner.kind, &owner.name);
        meta.insert(
            "ownerReferences".into(),
            json!([{
                "apiVersion": api_version,
                "kind": owner.kind,
                "name": owner.name,
                "uid": uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }]),
        );
    }
    if let Some(deleted) = p.deletion_timestamp {
        meta.insert("deletionTimestamp".into(), json!(time(deleted)));
        meta.insert(
            "deletionGracePeriodSeconds".into(),
            json!(p.termination_grace_period_seconds),
        );
    }
    let mut spec = json!({
        "containers": [{
            "name": "main",
            "image": "registry.k8s.io/pause:3.10",
            "resources": {},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent",
        }],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": p.termination_grace_period_seconds,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "schedulerName": "default-scheduler",
        "priority": 0,
    });
    if let Some(node) = &p.node_name {
        spec["nodeName"] = json!(node);
    }
    if p.empty_dir {
        spec["volumes"] = json!([{"name": "scratch", "emptyDir": {}}]);
        spec["containers"][0]["volumeMounts"] =
            json!([{"name": "scratch", "mountPath": "/scratch"}]);
    }
    if !p.tolerations.is_empty() {
        spec["tolerations"] = Value::Array(
            p.tolerations
                .iter()
                .map(|t| {
                    let mut o = Map::new();
                    if !t.key.is_empty() {
                        o.insert("key".into(), json!(t.key));
                    }
                    o.insert(
                        "operator".into(),
                        json!(match t.operator {
                            TolerationOperator::Equal => "Equal",
                            TolerationOperator::Exists => "Exists",
                        }),
                    );
                    if !t.value.is_empty() {
                        o.insert("value".into(), json!(t.value));
                    }
                    if !t.effect.is_empty() {
                        o.insert("effect".into(), json!(t.effect));
                    }
                    Value::Object(o)
                })
                .collect(),
        );
    }
    let phase = match p.phase {
        PodPhase::Pending => "Pending",
        PodPhase::Running => "Running",
        PodPhase::Succeeded => "Succeeded",
        PodPhase::Failed => "Failed",
        PodPhase::Unknown => "Unknown",
    };
    let started = time(st.config.start_time);
    let truth = |b: bool| if b { "True" } else { "False" };
    let mut status = json!({
        "phase": phase,
        "conditions": [
            {"type": "PodScheduled", "status": truth(p.node_name.is_some()), "lastProbeTime": null, "lastTransitionTime": started},
            {"type": "Ready", "status": truth(p.ready), "lastProbeTime": null, "lastTransitionTime": started},
            {"type": "ContainersReady", "status": truth(p.ready), "lastProbeTime": null, "lastTransitionTime": started},
        ],
        "qosClass": "BestEffort",
    });
    if let Some(node) = &p.node_name {
        status["hostIP"] = json!(node_address(st, node));
        status["startTime"] = json!(started);
        let running = matches!(p.phase, PodPhase::Running);
        status["containerStatuses"] = json!([{
            "name": "main",
            "ready": p.ready,
            "restartCount": 0,
            "image": "registry.k8s.io/pause:3.10",
            "imageID": "registry.k8s.io/pause@sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a",
            "started": running,
            "state": if running { json!({"running": {"startedAt": started}}) } else { json!({"waiting": {"reason": "ContainerCreating"}}) },
        }]);
    }
    json!({"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": spec, "status": status})
}

/// The uid of a pod's owner where the simulation has one (its workload; a ReplicaSet gets one
/// derived from the Deployment's).
fn owner_uid(st: &State, p: &Pod, kind: &str, name: &str) -> String {
    let owner = st
        .pods
        .get(&(p.namespace.clone(), p.name.clone()))
        .and_then(|sp| sp.owner.as_ref())
        .and_then(|r| st.workloads.get(r));
    match (owner, kind) {
        (Some(sw), "ReplicaSet") => derived_uid(&sw.w.uid, name),
        (Some(sw), _) => sw.w.uid.clone(),
        (None, _) => derived_uid("00000000-0000-4000-8000-000000000000", name),
    }
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

// === leases ===

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

pub(super) fn int_or_percent(v: IntOrPercent) -> Value {
    match v {
        IntOrPercent::Int(n) => json!(n),
        IntOrPercent::Percent(p) => json!(format!("{p}%")),
    }
}

// === budgets ===

/// A `policy/v1` PodDisruptionBudget with the status the disruption controller keeps.
pub(crate) fn budget(st: &State, b: &Budget) -> Value {
    let status = st.budget_status(b);
    // The whole selector, set-based requirements included (an empty one selects every pod
    // of the namespace, as in policy/v1).
    let mut spec = json!({
        "selector": serde_json::to_value(&b.selector).unwrap_or_else(|_| json!({})),
    });
    if let Some(v) = b.min_available {
        spec["minAvailable"] = int_or_percent(v);
    }
    if let Some(v) = b.max_unavailable {
        spec["maxUnavailable"] = int_or_percent(v);
    }
    if b.always_allow_unhealthy {
        spec["unhealthyPodEvictionPolicy"] = json!("AlwaysAllow");
    }
    let allowed = status.disruptions_allowed > 0;
    json!({
        "kind": "PodDisruptionBudget",
        "apiVersion": "policy/v1",
        "metadata": metadata(&b.name, Some(&b.namespace), &derived_uid(&b.namespace, &b.name), &st.current_rv().to_string(), st.config.start_time, &BTreeMap::new(), &BTreeMap::new()),
        "spec": spec,
        "status": {
            "observedGeneration": 1,
            "disruptionsAllowed": status.disruptions_allowed.max(0),
            "currentHealthy": status.current_healthy,
            "desiredHealthy": status.desired_healthy,
            "expectedPods": status.expected_pods,
            "conditions": [{
                "type": "DisruptionAllowed",
                "status": if allowed { "True" } else { "False" },
                "reason": if allowed { "SufficientPods" } else { "InsufficientPods" },
                "message": "",
                "observedGeneration": 1,
                "lastTransitionTime": time(st.config.start_time),
            }],
        },
    })
}

// === events ===

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
