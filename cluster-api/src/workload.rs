use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::LabelSelector;

/// The kinds of workload that can be restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WorkloadKind {
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` StatefulSet.
    StatefulSet,
    /// `apps/v1` DaemonSet.
    DaemonSet,
}

/// A kind name that is not one of the three workload kinds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown workload kind {0:?}: expected Deployment, StatefulSet or DaemonSet")]
pub struct UnknownKind(pub String);

/// Names one workload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WorkloadRef {
    /// `Deployment`, `StatefulSet` or `DaemonSet`: the `KIND` in `KIND/NAMESPACE/NAME`, the
    /// form it displays as.
    pub kind: WorkloadKind,
    /// `metadata.namespace` (every workload kind is namespaced). Not checked here: the
    /// allowlist checks it with [`crate::is_object_name`].
    pub namespace: String,
    /// `metadata.name`; not checked here either.
    pub name: String,
}

/// How a workload replaces its pods when the template changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpdateStrategy {
    /// Replace pods gradually. For a StatefulSet, ordinals below `partition` stay on the old
    /// revision.
    RollingUpdate {
        /// StatefulSet `partition`; `None` elsewhere.
        partition: Option<i32>,
    },
    /// Deployment `Recreate`: remove every old pod, then create the new ones.
    Recreate,
    /// StatefulSet/DaemonSet `OnDelete`: new pods only replace pods someone deletes.
    OnDelete,
}

/// One entry of `status.conditions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// `type`, e.g. `Progressing`, `Available`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `"True"`, `"False"` or `"Unknown"`.
    pub status: String,
    /// CamelCase reason, e.g. `ProgressDeadlineExceeded`.
    #[serde(default)]
    pub reason: String,
    /// Human explanation.
    #[serde(default)]
    pub message: String,
}

/// A workload's status, the same fields for the three kinds.
///
/// Deployments and StatefulSets map one to one. A DaemonSet maps `currentNumberScheduled` to
/// `replicas`, `updatedNumberScheduled` to `updated_replicas`, `numberReady` to
/// `ready_replicas`, `numberAvailable` to `available_replicas` and fills
/// `desired_number_scheduled`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    /// `status.observedGeneration`.
    pub observed_generation: Option<i64>,
    /// Pods that exist (not terminating).
    pub replicas: i32,
    /// Pods at the newest template.
    pub updated_replicas: i32,
    /// Pods passing readiness.
    pub ready_replicas: i32,
    /// Pods ready for at least `minReadySeconds`.
    pub available_replicas: i32,
    /// DaemonSet `desiredNumberScheduled`; 0 for the other kinds.
    pub desired_number_scheduled: i32,
    /// StatefulSet `currentRevision`.
    pub current_revision: Option<String>,
    /// StatefulSet `updateRevision`.
    pub update_revision: Option<String>,
    /// `status.conditions`.
    pub conditions: Vec<Condition>,
}

/// What the restart core needs to know about a Deployment, StatefulSet or DaemonSet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    /// Which of the three kinds it is, which says which of the fields below apply.
    pub kind: WorkloadKind,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`.
    #[serde(default)]
    pub uid: String,
    /// `metadata.resourceVersion`.
    #[serde(default)]
    pub resource_version: String,
    /// `metadata.generation`: bumped by every spec change.
    pub generation: i64,
    /// `metadata.labels`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// `spec.replicas`; `None` for a DaemonSet.
    pub replicas: Option<i32>,
    /// `spec.paused` (Deployments only).
    #[serde(default)]
    pub paused: bool,
    /// `spec.strategy` / `spec.updateStrategy`.
    pub strategy: UpdateStrategy,
    /// `spec.progressDeadlineSeconds` (Deployments only).
    #[serde(default)]
    pub progress_deadline_seconds: Option<i32>,
    /// `spec.selector`.
    #[serde(default)]
    pub selector: LabelSelector,
    /// `spec.template.metadata.annotations`; where `kubectl rollout restart` writes.
    #[serde(default)]
    pub template_annotations: BTreeMap<String, String>,
    /// The ConfigMaps and Secrets of its namespace that its pod template mounts or reads
    /// ([`config_refs`]), sorted, each once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_refs: Vec<ConfigRef>,
    /// `status`, in the fields the three kinds share (see [`WorkloadStatus`]).
    #[serde(default)]
    pub status: WorkloadStatus,
}

/// The kinds of configuration object a pod template can take its files and environment from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConfigKind {
    /// A core/v1 ConfigMap.
    ConfigMap,
    /// A core/v1 Secret.
    Secret,
}

/// A ConfigMap or Secret, in the workload's own namespace, that its pods mount or read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConfigRef {
    /// ConfigMap or Secret.
    pub kind: ConfigKind,
    /// `metadata.name`, in the workload's namespace; never empty in what [`config_refs`]
    /// returns.
    pub name: String,
}

impl ConfigRef {
    /// A ConfigMap by name.
    pub fn config_map(name: impl Into<String>) -> Self {
        ConfigRef {
            kind: ConfigKind::ConfigMap,
            name: name.into(),
        }
    }

    /// A Secret by name.
    pub fn secret(name: impl Into<String>) -> Self {
        ConfigRef {
            kind: ConfigKind::Secret,
            name: name.into(),
        }
    }
}

impl fmt::Display for ConfigRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ConfigKind::ConfigMap => "ConfigMap",
            ConfigKind::Secret => "Secret",
        };
        write!(f, "{kind} {}", self.name)
    }
}

/// A ConfigMap or Secret as the restart core watches it: which one, and a digest of its data.
/// Nothing of the data itself is kept (a Secret's never leaves the adapter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigObject {
    /// ConfigMap or Secret.
    pub kind: ConfigKind,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.resourceVersion`.
    pub resource_version: String,
    /// [`config_digest`] of its data: equal digests, equal data.
    pub digest: String,
}

impl ConfigObject {
    /// The reference a pod template would use for it.
    pub fn reference(&self) -> ConfigRef {
        ConfigRef {
            kind: self.kind,
            name: self.name.clone(),
        }
    }
}

/// The SHA-256 of a ConfigMap's or Secret's data (`data` and `binaryData` together), over
/// its entries in key order, each key and value length-prefixed, in hex: the same data gives
/// the same digest whatever order it came in.
pub fn config_digest<'a>(entries: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    use sha2::{Digest, Sha256};
    let mut sorted: Vec<(&str, &[u8])> = entries.into_iter().collect();
    sorted.sort_unstable();
    let mut hash = Sha256::new();
    for (key, value) in sorted {
        for part in [key.as_bytes(), value] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// References as a pod template lists them (volumes, projected volumes, `env`, `envFrom`,
/// of every container), sorted and each once; empty names (an invalid template) are left
/// out.
pub fn config_refs(found: impl IntoIterator<Item = ConfigRef>) -> Vec<ConfigRef> {
    let mut refs: Vec<ConfigRef> = found.into_iter().filter(|r| !r.name.is_empty()).collect();
    refs.sort();
    refs.dedup();
    refs
}

/// Which workloads a list or watch covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadFilter {
    /// Only this kind.
    pub kind: WorkloadKind,
    /// Only this namespace; `None` for all.
    pub namespace: Option<String>,
    /// Only this name (field selector `metadata.name`).
    pub name: Option<String>,
}

// === impl WorkloadKind ===

impl WorkloadKind {
    /// Every name a kind is known by, lower case, as [`FromStr`] accepts them in any case:
    /// the kind, its resource name, and kubectl's short name.
    pub const NAMES: [(&'static str, WorkloadKind); 9] = [
        ("deployment", WorkloadKind::Deployment),
        ("deployments", WorkloadKind::Deployment),
        ("deploy", WorkloadKind::Deployment),
        ("statefulset", WorkloadKind::StatefulSet),
        ("statefulsets", WorkloadKind::StatefulSet),
        ("sts", WorkloadKind::StatefulSet),
        ("daemonset", WorkloadKind::DaemonSet),
        ("daemonsets", WorkloadKind::DaemonSet),
        ("ds", WorkloadKind::DaemonSet),
    ];

    /// Every kind.
    pub const ALL: [WorkloadKind; 3] = [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
    ];

    /// `Deployment`, `StatefulSet` or `DaemonSet`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
        }
    }

    /// The API resource name: `deployments`, `statefulsets`, `daemonsets`.
    pub fn resource(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployments",
            WorkloadKind::StatefulSet => "statefulsets",
            WorkloadKind::DaemonSet => "daemonsets",
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WorkloadKind {
    type Err = UnknownKind;

    /// Accepts the kind (`Deployment`), its resource name (`deployments`), the singular
    /// (`deployment`) and kubectl's short names (`deploy`, `sts`, `ds`), in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WorkloadKind::NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|&(_, kind)| kind)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

// === impl WorkloadRef ===

impl WorkloadRef {
    /// Names a workload.
    pub fn new(kind: WorkloadKind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        WorkloadRef {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// As a reference for Events.
    pub fn object_ref(&self) -> crate::ObjectRef {
        crate::ObjectRef::namespaced(self.kind.as_str(), &self.namespace, &self.name)
    }
}

impl fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

// === impl Workload ===

impl Workload {
    /// Which workload this is.
    pub fn reference(&self) -> WorkloadRef {
        WorkloadRef::new(self.kind, &self.namespace, &self.name)
    }

    /// The condition of this type, if present.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.status.conditions.iter().find(|c| c.type_ == type_)
    }
}

// === impl WorkloadFilter ===

impl WorkloadFilter {
    /// Every workload of a kind.
    pub fn kind(kind: WorkloadKind) -> Self {
        WorkloadFilter {
            kind,
            namespace: None,
            name: None,
        }
    }

    /// Exactly one workload.
    pub fn one(r: &WorkloadRef) -> Self {
        WorkloadFilter {
            kind: r.kind,
            namespace: Some(r.namespace.clone()),
            name: Some(r.name.clone()),
        }
    }

    /// Whether `w` is covered.
    pub fn matches(&self, w: &Workload) -> bool {
        w.kind == self.kind
            && self.namespace.as_ref().is_none_or(|ns| &w.namespace == ns)
            && self.name.as_ref().is_none_or(|n| &w.name == n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_digest_follows_the_data_not_its_order() {
        let a = config_digest([("b", &b"2"[..]), ("a", &b"1"[..])]);
        assert_eq!(a, config_digest([("a", &b"1"[..]), ("b", &b"2"[..])]));
        assert_eq!(a.len(), 64);
        assert_ne!(a, config_digest([("a", &b"1"[..]), ("b", &b"3"[..])]));
        // Where a key ends and its value begins is part of the data.
        assert_ne!(
            config_digest([("ab", &b"c"[..])]),
            config_digest([("a", &b"bc"[..])])
        );
        assert_ne!(config_digest([]), config_digest([("", &b""[..])]));
    }

    #[test]
    fn kinds_parse_like_kubectl() {
        for (s, k) in [
            ("Deployment", WorkloadKind::Deployment),
            ("deployments", WorkloadKind::Deployment),
            ("deploy", WorkloadKind::Deployment),
            ("sts", WorkloadKind::StatefulSet),
            ("StatefulSet", WorkloadKind::StatefulSet),
            ("ds", WorkloadKind::DaemonSet),
            ("daemonset", WorkloadKind::DaemonSet),
        ] {
            assert_eq!(s.parse::<WorkloadKind>().unwrap(), k, "{s}");
        }
        let err = "CronJob".parse::<WorkloadKind>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown workload kind \"CronJob\": expected Deployment, StatefulSet or DaemonSet"
        );
    }
}
