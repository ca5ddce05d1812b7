use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the cores need to know about a Node, and nothing more.
///
/// A full Node from the API server weighs tens of kilobytes (images, managed fields,
/// conditions); this is the few hundred bytes a reboot coordinator decides with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`; distinguishes a re-created Node from the one it replaced.
    #[serde(default)]
    pub uid: String,
    /// `metadata.resourceVersion` of the state this was read at.
    #[serde(default)]
    pub resource_version: String,
    /// `status.nodeInfo.machineID` (the node's `/etc/machine-id`); empty if the kubelet could
    /// not read it.
    #[serde(default)]
    pub machine_id: String,
    /// `status.nodeInfo.bootID`; changes on every boot.
    #[serde(default)]
    pub boot_id: String,
    /// Whether the `Ready` condition is `True`.
    #[serde(default)]
    pub ready: bool,
    /// The `Ready` condition's `lastHeartbeatTime`: when the kubelet last posted the node's
    /// status (at its start, on every change, and every `nodeStatusReportFrequency`, 5 min by
    /// default, otherwise). Set by the kubelet's clock, so compare it only with itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<jiff::Timestamp>,
    /// `spec.unschedulable`: whether the node is cordoned.
    #[serde(default)]
    pub unschedulable: bool,
    /// `metadata.labels`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// `status.addresses` of type `InternalIP` and `ExternalIP`: where the node's own traffic
    /// comes from.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// `spec.podCIDRs`: the pod network range assigned to the node, whose gateway or tunnel
    /// address is where its host traffic comes from under many network plugins.
    #[serde(default)]
    pub pod_cidrs: Vec<String>,
}

/// A change to a Node, sent as one JSON merge patch.
///
/// With `resource_version` set the patch is a compare-and-swap: it fails with
/// [`Error::Conflict`](crate::Error::Conflict) if the Node changed since it was read, which is
/// how "cordon, and remember that we did" stays correct when an admin cordons at the same
/// moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodePatch {
    /// Set `spec.unschedulable`.
    pub unschedulable: Option<bool>,
    /// Set (`Some`) or remove (`None`) annotations.
    pub annotations: BTreeMap<String, Option<String>>,
    /// Set (`Some`) or remove (`None`) labels.
    pub labels: BTreeMap<String, Option<String>>,
    /// Only apply if the Node is still at this `resourceVersion`.
    pub resource_version: Option<String>,
}

// === impl Node ===

impl Node {
    /// A Ready, schedulable node with no machine id; add the rest with the builder methods.
    pub fn new(name: impl Into<String>) -> Self {
        Node {
            name: name.into(),
            uid: String::new(),
            resource_version: String::new(),
            machine_id: String::new(),
            boot_id: String::new(),
            ready: true,
            heartbeat: None,
            unschedulable: false,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            addresses: Vec::new(),
            pod_cidrs: Vec::new(),
        }
    }

    /// With this address (`InternalIP` or `ExternalIP`).
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.addresses.push(address.into());
        self
    }

    /// With this pod CIDR.
    pub fn pod_cidr(mut self, cidr: impl Into<String>) -> Self {
        self.pod_cidrs.push(cidr.into());
        self
    }

    /// With this `machineID`.
    pub fn machine_id(mut self, id: impl Into<String>) -> Self {
        self.machine_id = id.into();
        self
    }

    /// With this `bootID`.
    pub fn boot_id(mut self, id: impl Into<String>) -> Self {
        self.boot_id = id.into();
        self
    }

    /// Cordoned (`spec.unschedulable = true`).
    pub fn cordoned(mut self) -> Self {
        self.unschedulable = true;
        self
    }

    /// With the `Ready` condition not `True`.
    pub fn not_ready(mut self) -> Self {
        self.ready = false;
        self
    }

    /// With one more label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// With one more annotation.
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// Whether new pods may be placed here: Ready and not cordoned.
    pub fn is_schedulable(&self) -> bool {
        self.ready && !self.unschedulable
    }
}

// === impl NodePatch ===

impl NodePatch {
    /// An empty patch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `spec.unschedulable`.
    pub fn unschedulable(mut self, value: bool) -> Self {
        self.unschedulable = Some(value);
        self
    }

    /// Sets an annotation.
    pub fn annotate(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), Some(value.into()));
        self
    }

    /// Removes an annotation.
    pub fn remove_annotation(mut self, key: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), None);
        self
    }

    /// Sets label `key` to `value`, replacing any value it has.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), Some(value.into()));
        self
    }

    /// Removes a label.
    pub fn remove_label(mut self, key: impl Into<String>) -> Self {
        self.labels.insert(key.into(), None);
        self
    }

    /// Makes the patch conditional on the Node still being at `resource_version`.
    pub fn if_version(mut self, resource_version: impl Into<String>) -> Self {
        self.resource_version = Some(resource_version.into());
        self
    }

    /// Whether applying the patch would change nothing.
    pub fn is_empty(&self) -> bool {
        self.unschedulable.is_none() && self.annotations.is_empty() && self.labels.is_empty()
    }

    /// Applies the patch to a Node in memory, as the API server would (metadata only; the
    /// caller bumps the resource version).
    pub fn apply_to(&self, node: &mut Node) {
        if let Some(u) = self.unschedulable {
            node.unschedulable = u;
        }
        apply_map(&mut node.annotations, &self.annotations);
        apply_map(&mut node.labels, &self.labels);
    }
}

pub(crate) fn apply_map(
    target: &mut BTreeMap<String, String>,
    changes: &BTreeMap<String, Option<String>>,
) {
    for (k, v) in changes {
        match v {
            Some(v) => {
                target.insert(k.clone(), v.clone());
            }
            None => {
                target.remove(k);
            }
        }
    }
}
