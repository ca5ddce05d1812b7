//! Healing after a reboot: what a holder's drain is about to evict (recorded with its slot),
//! and whether, after its steady-state, its node and those workloads are back, as plain
//! functions of the cluster as it is.
//!
//! A workload counts as back when every disruption budget that covered its evicted pods allows
//! a disruption again (or has every pod it expects healthy), or, for pods no budget covered,
//! when none of its controller's pods in the namespace is still pending or unready.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use cluster_api::{DisruptionBudget, Pod, Timestamp};
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use crate::config::{RecoveryConfig, UnchangedBootId};
use crate::group::Holder;

/// Something a drain disrupts that must be whole again before the node's slot goes: a
/// disruption budget covering evicted pods, or, for evicted pods no budget covers, their
/// controller. Stored in the group Lease as `Kind namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RecoveryTarget {
    /// A `policy/v1` PodDisruptionBudget.
    Budget {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// Every budget and every controller's pods in a namespace (`*`: in every namespace):
    /// what a holder records instead of its precise targets when they are too many to keep
    /// in the group Lease ([`MAX_TARGETS`]). It waits for more, never for less. Stored as
    /// `Namespace <namespace>/*`.
    Namespace {
        /// The namespace, or `*` for all.
        namespace: String,
    },
    /// The controller (`ReplicaSet`, `StatefulSet`, `Job`, ...) of evicted pods.
    Controller {
        /// Its kind.
        kind: String,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
}

const BUDGET_KIND: &str = "PodDisruptionBudget";
const NAMESPACE_KIND: &str = "Namespace";

/// The most targets a holder records: beyond this they are recorded by namespace (and beyond
/// this many namespaces, as every namespace), so that the group Lease stays well inside the
/// API server's 256 KiB limit on annotations however many pods a node carries.
pub const MAX_TARGETS: usize = 32;

/// The most entries a holder's `waitingFor` keeps; the last says how many more there are.
pub const MAX_WAITING: usize = 8;

// === impl RecoveryTarget ===

impl RecoveryTarget {
    /// The namespace it lives in.
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
mod tests {
    use cluster_api::LabelSelector;

    use super::*;
    use crate::group::HolderPhase;

    fn budget(
        name: &str,
        selector: &str,
        healthy: (i32, i32, i32),
        allowed: i32,
    ) -> DisruptionBudget {
        DisruptionBudget {
            namespace: "shop".into(),
            name: name.into(),
            selector: Some(selector.parse::<LabelSelector>().unwrap()),
            expected_pods: healthy.0,
            desired_healthy: healthy.1,
            current_healthy: healthy.2,
            disruptions_allowed: allowed,
            always_allow_unhealthy: false,
        }
    }

    fn holder(evicts: Vec<RecoveryTarget>) -> Holder {
        Holder {
            phase: HolderPhase::Recovering,
            approved_at: Some(Timestamp::UNIX_EPOCH),
            boot_id: Some("boot-1".into()),
            evicts,
            ..Holder::granted("id", "n1", Timestamp::UNIX_EPOCH, "")
        }
    }

    #[test]
    fn targets_are_the_covering_budgets_else_the_controllers() {
        let web = Pod::new("shop", "web-1")
            .owned_by("ReplicaSet", "web-6f7")
            .label("app", "web");
        let web2 = Pod::new("shop", "web-2")
            .owned_by("ReplicaSet", "web-6f7")
            .label("app", "web");
        let cache = Pod::new("shop", "cache-0")
            .owned_by("StatefulSet", "cache")
            .label("app", "cache");
        let stray = Pod::new("shop", "debug");
        let budgets = [budget("web", "app=web", (3, 2, 3), 1)];
        let found = targets([&web, &web2, &cache, &stray], &budgets);
        let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["PodDisruptionBudget shop/web", "StatefulSet shop/cache"]
        );
        for target in &found {
            assert_eq!(
                &target.to_string().parse::<RecoveryTarget>().unwrap(),
                target
            );
        }
        let json = serde_json::to_string(&found).unwrap();
        assert_eq!(
            json,
            r#"["PodDisruptionBudget shop/web","StatefulSet shop/cache"]"#
        );
        assert!("ReplicaSet shop".parse::<RecoveryTarget>().is_err());
        assert!("ReplicaSet a/b/c".parse::<RecoveryTarget>().is_err());
    }

    #[test]
    fn a_holder_waits_until_node_and_workloads_are_back() {
        let policy = RecoveryConfig::default();
        let h = holder(vec![
            "PodDisruptionBudget shop/web".parse().unwrap(),
            "StatefulSet shop/cache".parse().unwrap(),
        ]);
        let node = NodeNow {
            ready: false,
            boot_id: "boot-2",
            heartbeat: None,
            cordoned_by_us: true,
        };
        let short = [budget("web", "app=web", (3, 2, 2), 0)];
        let pending = Pod::new("shop", "cache-0")
            .owned_by("StatefulSet", "cache")
            .phase(cluster_api::PodPhase::Pending);
        let waiting = waiting_for(&h, &node, &policy, &short, std::slice::from_ref(&pending));
        assert_eq!(
            waiting,
            [
                "the node to be Ready",
                "our cordon to be undone",
                "PodDisruptionBudget shop/web to be available again",
                "StatefulSet shop/cache to be available again",
            ]
        );

        let node = NodeNow {
            ready: true,
            cordoned_by_us: false,
            ..node
        };
        let whole = [budget("web", "app=web", (3, 2, 3), 1)];
        let running = Pod::new("shop", "cache-0").owned_by("StatefulSet", "cache");
        assert!(waiting_for(&h, &node, &policy, &whole, &[running]).is_empty());
        // A budget that never allows a disruption is whole once every pod is healthy; a
        // budget or controller that is gone waits for nothing.
        let strict = [budget("web", "app=web", (2, 2, 2), 0)];
        assert!(waiting_for(&h, &node, &policy, &strict, &[]).is_empty());
    }

    #[test]
    fn an_unchanged_boot_id_waits_for_the_kubelet_or_a_new_boot() {
        let t: Timestamp = "2026-01-05T09:00:00Z".parse().unwrap();
        let h = Holder {
            returned_heartbeat: Some(t),
            ..holder(Vec::new())
        };
        let stale = NodeNow {
            ready: true,
            boot_id: "boot-1",
            heartbeat: Some(t),
            cordoned_by_us: false,
        };
        // The status is the one from before the return: Ready proves nothing yet.
        let waiting = waiting_for(&h, &stale, &RecoveryConfig::default(), &[], &[]);
        assert_eq!(waiting.len(), 1);
        assert!(waiting[0].contains("kubelet to report"), "{waiting:?}");
        // The kubelet has posted its status since: `recover` takes the node as back.
        let reported = NodeNow {
            heartbeat: Some(t + SignedDuration::from_secs(10)),
            ..stale.clone()
        };
        assert!(waiting_for(&h, &reported, &RecoveryConfig::default(), &[], &[]).is_empty());
        // A new bootID is the kubelet's own report.
        let rebooted = NodeNow {
            boot_id: "boot-2",
            ..stale.clone()
        };
        assert!(waiting_for(&h, &rebooted, &RecoveryConfig::default(), &[], &[]).is_empty());
        // `wait` wants the new bootID whatever the kubelet says.
        let wait = RecoveryConfig {
            unchanged_boot_id: UnchangedBootId::Wait,
            ..RecoveryConfig::default()
        };
        let waiting = waiting_for(&h, &reported, &wait, &[], &[]);
        assert_eq!(waiting.len(), 1);
        assert!(waiting[0].contains("new bootID"), "{waiting:?}");
    }

    /// A node carrying thousands of pods, each under a budget of its own: recorded precisely,
    /// its targets alone would pass the API server's 256 KiB limit on the group Lease's
    /// annotations, and the grant (or any later write of the group) would be refused.
    #[test]
    fn too_many_targets_are_recorded_by_namespace_and_the_lease_stays_small() {
        let long = "a-workload-with-a-name-as-long-as-people-give-them";
        let pods: Vec<Pod> = (0..3000)
            .map(|i| {
                Pod::new(
                    if i % 2 == 0 { "shop" } else { "data" },
                    format!("{long}-{i}"),
                )
                .owned_by("ReplicaSet", format!("{long}-{i}"))
                .label("app", format!("{long}-{i}"))
            })
            .collect();
        let budgets: Vec<DisruptionBudget> = pods
            .iter()
            .map(|p| DisruptionBudget {
                namespace: p.namespace.clone(),
                ..budget(&p.name, &format!("app={}", p.name), (1, 0, 1), 1)
            })
            .collect();
        let found = targets(&pods, &budgets);
        let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["Namespace data/*", "Namespace shop/*"]);
        let recorded = serde_json::to_string(&Holder {
            evicts: found.clone(),
            ..holder(Vec::new())
        })
        .unwrap();
        assert!(recorded.len() < 1024, "{} bytes", recorded.len());
        for target in &found {
            assert_eq!(
                &target.to_string().parse::<RecoveryTarget>().unwrap(),
                target
            );
        }
        // Across more namespaces than are kept: every namespace.
        let scattered: Vec<Pod> = (0..100)
            .map(|i| Pod::new(format!("ns-{i}"), "p").owned_by("ReplicaSet", "r"))
            .collect();
        let found = targets(&scattered, &[]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].to_string(), "Namespace */*");
    }

    #[test]
    fn a_namespace_target_waits_for_every_budget_and_controller_in_it() {
        let policy = RecoveryConfig::default();
        let h = holder(vec!["Namespace shop/*".parse().unwrap()]);
        let node = NodeNow {
            ready: true,
            boot_id: "boot-2",
            heartbeat: None,
            cordoned_by_us: false,
        };
        let short = [budget("web", "app=web", (3, 2, 2), 0)];
        let waiting = waiting_for(&h, &node, &policy, &short, &[]);
        assert_eq!(waiting, ["Namespace shop/* to be available again"]);
        let starting = Pod::new("shop", "cache-0")
            .owned_by("StatefulSet", "cache")
            .not_ready();
        let whole = [budget("web", "app=web", (3, 2, 3), 1)];
        assert_eq!(
            waiting_for(&h, &node, &policy, &whole, std::slice::from_ref(&starting)).len(),
            1
        );
        let elsewhere = Pod::new("other", "x")
            .owned_by("ReplicaSet", "x")
            .not_ready();
        assert!(waiting_for(&h, &node, &policy, &whole, &[elsewhere]).is_empty());
        // `*` is every namespace.
        let everywhere = holder(vec!["Namespace */*".parse().unwrap()]);
        assert_eq!(
            waiting_for(&everywhere, &node, &policy, &whole, &[starting]).len(),
            1
        );
    }

    #[test]
    fn waiting_for_keeps_a_bounded_list() {
        let targets: Vec<RecoveryTarget> = (0..20)
            .map(|i| format!("StatefulSet shop/db-{i}").parse().unwrap())
            .collect();
        let h = holder(targets);
        let node = NodeNow {
            ready: true,
            boot_id: "boot-2",
            heartbeat: None,
            cordoned_by_us: false,
        };
        let pods: Vec<Pod> = (0..20)
            .map(|i| {
                Pod::new("shop", format!("db-{i}-0"))
                    .owned_by("StatefulSet", format!("db-{i}"))
                    .not_ready()
            })
            .collect();
        let waiting = waiting_for(&h, &node, &RecoveryConfig::default(), &[], &pods);
        assert_eq!(waiting.len(), MAX_WAITING);
        assert_eq!(waiting[MAX_WAITING - 1], "13 more");
    }

    #[test]
    fn settling_counts_from_the_first_healthy_look() {
        let t: Timestamp = "2026-01-05T09:00:00Z".parse().unwrap();
        let settle = std::time::Duration::from_secs(60);
        assert!(!settled(t, settle, t + SignedDuration::from_secs(59)));
        assert!(settled(t, settle, t + SignedDuration::from_secs(60)));
        assert!(settled(t, std::time::Duration::ZERO, t));
    }
}
