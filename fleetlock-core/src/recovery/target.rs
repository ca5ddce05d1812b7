//! What a recovery waits for, as stored in a holder's entry of the group Lease.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Something a drain disrupts that must be whole again before the node's slot goes: a
/// disruption budget covering evicted pods, or, for evicted pods no budget covers, their
/// controller. Stored in the group Lease as `Kind namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RecoveryTarget {
    /// A `policy/v1` PodDisruptionBudget.
    Budget {
        /// The budget's namespace, which is that of the pods it covers.
        namespace: String,
        /// The budget's `metadata.name`.
        name: String,
    },
    /// Every budget and every controller's pods in a namespace (`*`: in every namespace):
    /// what a holder records instead of its precise targets when they are too many to keep
    /// in the group Lease ([`MAX_TARGETS`](super::MAX_TARGETS)). It waits for more, never for less. Stored as
    /// `Namespace <namespace>/*`.
    Namespace {
        /// The namespace, or `*` for all.
        namespace: String,
    },
    /// The controller (`ReplicaSet`, `StatefulSet`, `Job`, ...) of evicted pods.
    Controller {
        /// The `kind` of the pods' controlling owner reference: `ReplicaSet`, not the Deployment
        /// above it.
        kind: String,
        /// The evicted pods' namespace, which is their controller's too.
        namespace: String,
        /// The `name` of the pods' controlling owner reference.
        name: String,
    },
}

const BUDGET_KIND: &str = "PodDisruptionBudget";
const NAMESPACE_KIND: &str = "Namespace";

// === impl RecoveryTarget ===

impl RecoveryTarget {
    /// The namespace it lives in; `*` for a [`Namespace`](RecoveryTarget::Namespace) target
    /// covering all of them.
    pub fn namespace(&self) -> &str {
        match self {
            RecoveryTarget::Budget { namespace, .. }
            | RecoveryTarget::Namespace { namespace }
            | RecoveryTarget::Controller { namespace, .. } => namespace,
        }
    }
}

impl fmt::Display for RecoveryTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoveryTarget::Budget { namespace, name } => {
                write!(f, "{BUDGET_KIND} {namespace}/{name}")
            }
            RecoveryTarget::Namespace { namespace } => write!(f, "{NAMESPACE_KIND} {namespace}/*"),
            RecoveryTarget::Controller {
                kind,
                namespace,
                name,
            } => write!(f, "{kind} {namespace}/{name}"),
        }
    }
}

impl From<RecoveryTarget> for String {
    fn from(target: RecoveryTarget) -> Self {
        target.to_string()
    }
}

impl FromStr for RecoveryTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parsed = s.split_once(' ').and_then(|(kind, rest)| {
            let (namespace, name) = rest.split_once('/')?;
            let ok = |p: &str| !p.is_empty() && !p.contains(['/', ' ']);
            (ok(kind) && ok(namespace) && ok(name)).then(|| {
                let (namespace, name) = (namespace.to_string(), name.to_string());
                if kind == BUDGET_KIND {
                    RecoveryTarget::Budget { namespace, name }
                } else if kind == NAMESPACE_KIND && name == "*" {
                    RecoveryTarget::Namespace { namespace }
                } else {
                    RecoveryTarget::Controller {
                        kind: kind.to_string(),
                        namespace,
                        name,
                    }
                }
            })
        });
        parsed.ok_or_else(|| format!("{s:?} is not \"Kind namespace/name\""))
    }
}

impl TryFrom<String> for RecoveryTarget {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// `targets` by the namespaces they live in; every namespace (`*`) when `everywhere`. Coarser:
/// a holder recording them waits for more, never for less.
pub fn coarser(targets: &[RecoveryTarget], everywhere: bool) -> Vec<RecoveryTarget> {
    if targets.is_empty() {
        return Vec::new();
    }
    let namespaces: BTreeSet<&str> = targets.iter().map(RecoveryTarget::namespace).collect();
    if everywhere || namespaces.contains("*") {
        return vec![RecoveryTarget::Namespace {
            namespace: "*".into(),
        }];
    }
    namespaces
        .into_iter()
        .map(|namespace| RecoveryTarget::Namespace {
            namespace: namespace.to_string(),
        })
        .collect()
}
