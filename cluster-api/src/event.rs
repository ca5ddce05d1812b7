use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The object an Event is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    /// `kind`, e.g. `Node`, `Deployment`.
    pub kind: String,
    /// `namespace`; `None` for cluster-scoped objects such as Nodes.
    pub namespace: Option<String>,
    /// `name`.
    pub name: String,
}

/// `Normal` or `Warning`, as `kubectl describe` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something an operator may need to look at.
    Warning,
}

/// An Event to record against an object: the audit trail `kubectl describe` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// What the event is about.
    pub regarding: ObjectRef,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: EventType,
    /// A short CamelCase reason, e.g. `RestartRequested`, `Drained`.
    pub reason: String,
    /// What was done, e.g. `Restart`, `Cordon`.
    pub action: String,
    /// The human explanation, including who asked and why.
    pub note: String,
    /// The component that reported it (`reportingController`).
    pub reporting_controller: String,
    /// The replica that reported it (`reportingInstance`).
    pub reporting_instance: String,
    /// When it happened. Filled in by the cluster when recorded with `None`.
    #[serde(default)]
    pub time: Option<Timestamp>,
}

// === impl ObjectRef ===

impl ObjectRef {
    /// A reference to a cluster-scoped object.
    pub fn cluster(kind: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectRef {
            kind: kind.into(),
            namespace: None,
            name: name.into(),
        }
    }

    /// A reference to a namespaced object.
    pub fn namespaced(
        kind: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        ObjectRef {
            kind: kind.into(),
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}
