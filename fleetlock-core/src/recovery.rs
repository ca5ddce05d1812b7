//! Healing after a reboot: what a holder's drain is about to evict (recorded with its slot),
//! and whether, after its steady-state, its node and those workloads are back, as plain
//! functions of the cluster as it is.
//!
//! A workload counts as back when every disruption budget that covered its evicted pods allows
//! a disruption again (or has every pod it expects healthy), or, for pods no budget covered,
//! when none of its controller's pods in the namespace is still pending or unready.

use std::collections::BTreeSet;

use cluster_api::{DisruptionBudget, Pod, Timestamp};
use jiff::SignedDuration;

use crate::config::{RecoveryConfig, UnchangedBootId};
use crate::group::Holder;

mod target;

pub use target::{RecoveryTarget, coarser};

/// The most targets a holder records: beyond this they are recorded by namespace (and beyond
/// this many namespaces, as every namespace), so that the group Lease stays well inside the
/// API server's 256 KiB limit on annotations however many pods a node carries.
pub const MAX_TARGETS: usize = 32;

/// The most entries a holder's `waitingFor` keeps; the last says how many more there are.
pub const MAX_WAITING: usize = 8;

/// What must be whole again once the pods in `evict` have been evicted: the budgets covering
/// any of them, and the controllers of those no budget covers. Pods without a controller do
/// not come back, so nothing waits for them.
pub fn targets<'a>(
    evict: impl IntoIterator<Item = &'a Pod>,
    budgets: &[DisruptionBudget],
) -> Vec<RecoveryTarget> {
    let mut found = BTreeSet::new();
    for pod in evict {
        let covering: Vec<&DisruptionBudget> = budgets.iter().filter(|b| b.covers(pod)).collect();
        if covering.is_empty() {
            if let Some(owner) = &pod.controller {
                found.insert(RecoveryTarget::Controller {
                    kind: owner.kind.clone(),
                    namespace: pod.namespace.clone(),
                    name: owner.name.clone(),
                });
            }
        } else {
            found.extend(covering.into_iter().map(|b| RecoveryTarget::Budget {
                namespace: b.namespace.clone(),
                name: b.name.clone(),
            }));
        }
    }
    if found.len() <= MAX_TARGETS {
        return found.into_iter().collect();
    }
    let namespaces: BTreeSet<String> = found.iter().map(|t| t.namespace().to_string()).collect();
    if namespaces.len() <= MAX_TARGETS {
        namespaces
            .into_iter()
            .map(|namespace| RecoveryTarget::Namespace { namespace })
            .collect()
    } else {
        vec![RecoveryTarget::Namespace {
            namespace: "*".into(),
        }]
    }
}

/// `waiting` cut to [`MAX_WAITING`] entries, the last saying how many were left out.
fn bounded(mut waiting: Vec<String>) -> Vec<String> {
    if waiting.len() > MAX_WAITING {
        let more = waiting.len() - (MAX_WAITING - 1);
        waiting.truncate(MAX_WAITING - 1);
        waiting.push(format!("{more} more"));
    }
    waiting
}

/// The node as the recovery check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeNow<'a> {
    /// Whether its `Ready` condition is `True`.
    pub ready: bool,
    /// Its bootID now.
    pub boot_id: &'a str,
    /// Its kubelet's last heartbeat now ([`cluster_api::Node::heartbeat`]).
    pub heartbeat: Option<Timestamp>,
    /// Whether our cordon is still on it.
    pub cordoned_by_us: bool,
}

/// Whether a budget is whole again: it allows a disruption, or every pod it expects is
/// healthy (a budget that never allows one, such as `maxUnavailable: 0`, is whole then).
pub fn budget_whole(budget: &DisruptionBudget) -> bool {
    budget.disruptions_allowed > 0
        || (budget.current_healthy >= budget.desired_healthy
            && budget.current_healthy >= budget.expected_pods)
}

/// Whether the node has booted since its reboot was approved: only the kubelet writes the
/// bootID, so a new one also shows it has reported since.
pub fn rebooted(holder: &Holder, node: &NodeNow<'_>) -> bool {
    holder.boot_id.as_deref().is_none_or(|b| b != node.boot_id)
}

/// Whether the kubelet has reported since the holder's steady-state: a new bootID, or a
/// heartbeat other than the one seen then. Zincati says steady-state as soon as it starts,
/// usually before the kubelet has reported: until then the Node shows its status from before
/// the reboot, Ready included (a reboot shorter than the node controller's grace period never
/// shows NotReady).
pub fn kubelet_reported(holder: &Holder, node: &NodeNow<'_>) -> bool {
    rebooted(holder, node)
        || node.heartbeat.is_some() && node.heartbeat != holder.returned_heartbeat
}

/// What a recovering holder still waits for, in words for a person; empty when it is back.
///
/// `budgets` are the cluster's budgets; `pods` hold at least every pod of the namespaces of
/// the holder's controller and namespace targets (every pod, for a `*` one). At most
/// [`MAX_WAITING`] entries. A budget or controller that no longer exists waits for
/// nothing.
pub fn waiting_for(
    holder: &Holder,
    node: &NodeNow<'_>,
    policy: &RecoveryConfig,
    budgets: &[DisruptionBudget],
    pods: &[Pod],
) -> Vec<String> {
    let mut waiting = Vec::new();
    let (rebooted, reported) = (rebooted(holder, node), kubelet_reported(holder, node));
    if !rebooted && policy.unchanged_boot_id == UnchangedBootId::Wait {
        waiting.push(format!(
            "a new bootID (still {}, as when the reboot was approved)",
            node.boot_id
        ));
    } else if !reported {
        waiting.push(format!(
            "the kubelet to report since the steady-state (bootID still {}, as when the \
             reboot was approved)",
            node.boot_id
        ));
    }
    if !node.ready {
        waiting.push("the node to be Ready".to_string());
    }
    if node.cordoned_by_us {
        waiting.push("our cordon to be undone".to_string());
    }
    for target in &holder.evicts {
        let whole = match target {
            RecoveryTarget::Budget { namespace, name } => budgets
                .iter()
                .find(|b| &b.namespace == namespace && &b.name == name)
                .is_none_or(budget_whole),
            RecoveryTarget::Namespace { namespace } => {
                let here = |ns: &str| namespace == "*" || ns == namespace;
                budgets
                    .iter()
                    .filter(|b| here(&b.namespace))
                    .all(budget_whole)
                    && !pods.iter().any(|p| {
                        here(&p.namespace)
                            && p.controller.is_some()
                            && !p.is_finished()
                            && !p.is_terminating()
                            && !p.ready
                    })
            }
            RecoveryTarget::Controller {
                kind,
                namespace,
                name,
            } => !pods.iter().any(|p| {
                &p.namespace == namespace
                    && p.controller
                        .as_ref()
                        .is_some_and(|o| &o.kind == kind && &o.name == name)
                    && !p.is_finished()
                    && !p.is_terminating()
                    && !p.ready
            }),
        };
        if !whole {
            waiting.push(format!("{target} to be available again"));
        }
    }
    bounded(waiting)
}

/// Whether a holder that has looked healthy since `healthy_since` has settled by `now`.
pub fn settled(healthy_since: Timestamp, settle: std::time::Duration, now: Timestamp) -> bool {
    let settle = SignedDuration::try_from(settle).unwrap_or(SignedDuration::MAX);
    now.duration_since(healthy_since) >= settle
}

#[cfg(test)]
mod tests;
