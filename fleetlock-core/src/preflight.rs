//! Pre-flight: the drain a node would get, planned against the cluster as it is now, before a
//! slot is taken or the node cordoned. A drain that could not finish without an operator (a
//! pod no controller would bring back, `emptyDir` data, a disruption budget that never allows
//! an eviction) is refused up front instead of leaving a cordoned node and a held slot behind.

use cluster_api::{DisruptionBudget, Pod};
use serde::{Deserialize, Serialize};

use crate::config::DrainConfig;
use crate::drain::{DrainOptions, RefuseReason, SkippedPod, plan_drain};
use crate::rules;

/// What a drain of one node would do, and whether it could finish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NodePlan {
    /// The Node's name (not a FleetLock id): whose pods were planned.
    pub node: String,
    /// Pods the drain would evict, in the order it would take them.
    pub evict: Vec<PlannedPod>,
    /// Pods it would leave on the node, and why.
    pub skip: Vec<SkippedPod>,
    /// Pods that would stop it until an operator deals with them.
    pub refuse: Vec<RefusedPod>,
    /// Pods a drain rule lets finish their work first, up to its limit.
    #[serde(default)]
    pub wait: Vec<WaitedPod>,
    /// The disruption budgets covering the pods to evict.
    pub budgets: Vec<BudgetCheck>,
    /// A rough duration of the drain, from the pods' termination grace periods and the
    /// evictions in flight at once; budgets that make it wait, and pods it lets finish
    /// (`wait`), come on top.
    pub estimated_seconds: i64,
    /// Why the drain could not finish without an operator; `None` when it could.
    pub blocked: Option<String>,
}

/// A pod the drain would evict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PlannedPod {
    /// `namespace/name`.
    pub pod: String,
    /// The seconds it is given to stop.
    pub grace_seconds: i64,
    /// No controller would recreate it (evicted because `drain.deleteUnmanaged` is set).
    pub unmanaged: bool,
    /// Its `emptyDir` data would be lost (evicted because `drain.deleteEmptyDirData` is set).
    pub empty_dir: bool,
    /// Its eviction priority (a drain rule's; 0 without one): higher goes first, and a lower
    /// one only once every pod of a higher one has left.
    #[serde(default)]
    pub priority: i32,
}

/// A pod a drain rule (`action: waitForCompletion`) lets finish before it is evicted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WaitedPod {
    /// `namespace/name`.
    pub pod: String,
    /// How long the drain waits for it at most, in seconds, before evicting it anyway.
    pub limit_seconds: u64,
}

/// A pod that would stop the drain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RefusedPod {
    /// `namespace/name`.
    pub pod: String,
    /// Why.
    pub reason: RefuseReason,
}

/// A disruption budget covering pods the drain would evict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BudgetCheck {
    /// `namespace/name`.
    pub budget: String,
    /// The pods on this node it covers.
    pub pods: Vec<String>,
    /// `status.disruptionsAllowed`.
    pub disruptions_allowed: i32,
    /// `status.currentHealthy`.
    pub current_healthy: i32,
    /// `status.desiredHealthy`.
    pub desired_healthy: i32,
    /// `status.expectedPods`.
    pub expected_pods: i32,
    /// What it means for the drain.
    pub verdict: BudgetVerdict,
}

/// What a budget means for a drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum BudgetVerdict {
    /// It allows at least one eviction now.
    Allows,
    /// It allows none now, but will once its pods elsewhere are healthy again: the drain
    /// waits.
    Waits,
    /// It allows none and never will while its spec and the workload's scale stay as they
    /// are: the drain could not finish.
    NeverAllows,
}

impl BudgetVerdict {
    /// In a few words for a person.
    pub fn describe(self) -> &'static str {
        match self {
            BudgetVerdict::Allows => "allows",
            BudgetVerdict::Waits => "waits for healthy pods",
            BudgetVerdict::NeverAllows => "never allows",
        }
    }
}

/// Plans the drain of `node` over its `pods`, against the cluster's `budgets`, as a drain
/// with `options` and `config` would run it.
pub fn plan_node(
    node: &str,
    pods: &[Pod],
    budgets: &[DisruptionBudget],
    options: &DrainOptions,
    config: &DrainConfig,
) -> NodePlan {
    let drain = plan_drain(pods, options);
    let grace = |p: &Pod| {
        config
            .grace_period_seconds
            .unwrap_or(p.termination_grace_period_seconds)
            .max(0)
    };
    let evict: Vec<PlannedPod> = drain
        .evict
        .iter()
        .map(|p| PlannedPod {
            pod: p.to_string(),
            grace_seconds: grace(p),
            unmanaged: p.controller.is_none(),
            empty_dir: p.empty_dir,
            priority: rules::decide(&options.rules, p).priority,
        })
        .collect();
    // Waves of `parallelism` evictions, each as long as its longest grace period.
    let mut graces: Vec<i64> = evict.iter().map(|p| p.grace_seconds).collect();
    graces.sort_unstable_by(|a, b| b.cmp(a));
    let estimated_seconds = graces
        .chunks(config.parallelism.max(1))
        .map(|wave| wave[0])
        .sum();

    let BudgetChecks {
        checks,
        overlapping,
        never,
    } = check_budgets(&drain.evict, budgets);
    let blocked = blocked(drain.refusal_message(), &never, &overlapping);
    NodePlan {
        node: node.to_string(),
        evict,
        skip: drain
            .skip
            .iter()
            .map(|(p, reason)| SkippedPod {
                pod: p.to_string(),
                reason: *reason,
            })
            .collect(),
        refuse: drain
            .refuse
            .iter()
            .map(|(p, reason)| RefusedPod {
                pod: p.to_string(),
                reason: *reason,
            })
            .collect(),
        wait: drain
            .wait
            .iter()
            .map(|(p, limit)| WaitedPod {
                pod: p.to_string(),
                limit_seconds: limit.as_secs(),
            })
            .collect(),
        budgets: checks,
        estimated_seconds,
        blocked,
    }
}

/// The budgets covering the pods a drain evicts, and what stops it among them.
struct BudgetChecks {
    checks: Vec<BudgetCheck>,
    /// Pods covered by more than one budget, with their budgets.
    overlapping: Vec<String>,
    /// Pods a budget that never allows holds back, with the budget.
    never: Vec<String>,
}

fn check_budgets(evict: &[Pod], budgets: &[DisruptionBudget]) -> BudgetChecks {
    let mut checks: Vec<BudgetCheck> = Vec::new();
    let mut overlapping = Vec::new();
    let mut never = Vec::new();
    for pod in evict {
        let covering: Vec<&DisruptionBudget> = budgets.iter().filter(|b| b.covers(pod)).collect();
        if covering.len() > 1 {
            let names: Vec<String> = covering.iter().map(|b| b.key()).collect();
            overlapping.push(format!("{pod} ({})", names.join(", ")));
        }
        for budget in covering {
            let key = budget.key();
            let check = match checks.iter().position(|c| c.budget == key) {
                Some(i) => &mut checks[i],
                None => {
                    checks.push(budget_check(budget, key));
                    checks.last_mut().expect("just pushed")
                }
            };
            check.pods.push(pod.to_string());
            // A pod the Eviction API lets go without a disruption (pending, terminating, or
            // unready where the budget's policy and status allow) is not held back.
            if check.verdict == BudgetVerdict::NeverAllows
                && !budget.lets_go_without_a_disruption(pod)
            {
                never.push(format!("{pod} ({})", check.budget));
            }
        }
    }
    BudgetChecks {
        checks,
        overlapping,
        never,
    }
}

fn budget_check(budget: &DisruptionBudget, key: String) -> BudgetCheck {
    BudgetCheck {
        budget: key,
        pods: Vec::new(),
        disruptions_allowed: budget.disruptions_allowed,
        current_healthy: budget.current_healthy,
        desired_healthy: budget.desired_healthy,
        expected_pods: budget.expected_pods,
        verdict: if budget.disruptions_allowed > 0 {
            BudgetVerdict::Allows
        } else if budget.never_allows() {
            BudgetVerdict::NeverAllows
        } else {
            BudgetVerdict::Waits
        },
    }
}

/// Why the drain could not finish, if it could not: the drain plan's refusal, then budgets
/// that never allow, then pods under several budgets.
fn blocked(refusal: Option<String>, never: &[String], overlapping: &[String]) -> Option<String> {
    let mut reasons = Vec::new();
    if let Some(message) = refusal {
        reasons.push(message);
    }
    if !never.is_empty() {
        reasons.push(format!(
            "disruption budgets that allow no eviction while every pod they count on must \
             stay healthy cover {} (scale the workload up, or relax the budget)",
            never.join(", ")
        ));
    }
    if !overlapping.is_empty() {
        reasons.push(format!(
            "pods covered by more than one disruption budget cannot be evicted: {}",
            overlapping.join("; ")
        ));
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use cluster_api::LabelSelector;

    use super::*;

    fn budget(
        name: &str,
        app: &str,
        allowed: i32,
        healthy: i32,
        desired: i32,
        expected: i32,
    ) -> DisruptionBudget {
        DisruptionBudget {
            namespace: "shop".into(),
            name: name.into(),
            selector: Some(format!("app={app}").parse::<LabelSelector>().unwrap()),
            expected_pods: expected,
            desired_healthy: desired,
            current_healthy: healthy,
            disruptions_allowed: allowed,
            always_allow_unhealthy: false,
        }
    }

    fn web(name: &str) -> Pod {
        Pod::new("shop", name)
            .on("n1")
            .owned_by("ReplicaSet", "web-1")
            .label("app", "web")
    }

    fn plan(pods: &[Pod], budgets: &[DisruptionBudget]) -> NodePlan {
        plan_node(
            "n1",
            pods,
            budgets,
            &DrainOptions::default(),
            &DrainConfig::default(),
        )
    }

    #[test]
    fn a_drain_that_can_finish_is_not_blocked_and_names_what_it_would_do() {
        let pods = [
            web("web-a").grace_period(20),
            Pod::new("kube-system", "agent-x")
                .on("n1")
                .owned_by("DaemonSet", "agent"),
        ];
        let p = plan(&pods, &[budget("web", "web", 1, 3, 2, 3)]);
        assert_eq!(p.blocked, None);
        assert_eq!(p.evict.len(), 1);
        assert_eq!(p.evict[0].pod, "shop/web-a");
        assert_eq!(p.evict[0].grace_seconds, 20);
        assert_eq!(p.skip[0].pod, "kube-system/agent-x");
        assert_eq!(p.budgets.len(), 1);
        assert_eq!(p.budgets[0].verdict, BudgetVerdict::Allows);
        assert_eq!(p.budgets[0].pods, ["shop/web-a"]);
        assert_eq!(p.estimated_seconds, 20);
    }

    #[test]
    fn a_budget_with_nothing_to_spare_now_only_makes_the_drain_wait() {
        // Three expected, two wanted healthy, one of them restarting elsewhere: zero allowed
        // now, one again once it is back.
        let p = plan(&[web("web-a")], &[budget("web", "web", 0, 2, 2, 3)]);
        assert_eq!(p.budgets[0].verdict, BudgetVerdict::Waits);
        assert_eq!(p.blocked, None);
    }

    #[test]
    fn a_budget_that_never_allows_an_eviction_blocks_naming_it_and_the_pod() {
        // One replica with minAvailable: 1.
        let p = plan(&[web("web-a")], &[budget("web-pdb", "web", 0, 1, 1, 1)]);
        assert_eq!(p.budgets[0].verdict, BudgetVerdict::NeverAllows);
        let why = p.blocked.expect("blocked");
        assert!(why.contains("shop/web-a (shop/web-pdb)"), "{why}");
    }

    /// The Eviction API lets an unready running pod skip its budget only under
    /// `unhealthyPodEvictionPolicy: AlwaysAllow`, or while the budget is satisfied
    /// (currentHealthy >= desiredHealthy > 0). A one-replica Deployment with `minAvailable: 1`
    /// whose pod crash-loops is neither: every eviction gets 429, for good.
    #[test]
    fn an_unready_pod_under_a_budget_that_never_allows_blocks_unless_the_policy_lets_it_go() {
        let crash_looping = budget("web-pdb", "web", 0, 0, 1, 1);
        let p = plan(
            &[web("web-a").not_ready()],
            std::slice::from_ref(&crash_looping),
        );
        let why = p.blocked.expect("the drain would wait for ever");
        assert!(why.contains("shop/web-a (shop/web-pdb)"), "{why}");
        // Under AlwaysAllow the unready pod goes without the budget.
        let always = DisruptionBudget {
            always_allow_unhealthy: true,
            ..crash_looping.clone()
        };
        let p = plan(&[web("web-a").not_ready()], std::slice::from_ref(&always));
        assert_eq!(p.blocked, None, "{:?}", p.blocked);
        // AlwaysAllow says nothing of a Ready pod.
        assert!(plan(&[web("web-a")], &[always]).blocked.is_some());
        // Pending and terminating pods skip budgets whatever the policy.
        let pending = web("web-a")
            .not_ready()
            .phase(cluster_api::PodPhase::Pending);
        assert_eq!(plan(&[pending], &[crash_looping]).blocked, None);
    }

    #[test]
    fn unmanaged_and_empty_dir_pods_block_unless_allowed() {
        let pods = [
            Pod::new("default", "debug").on("n1"),
            Pod::new("shop", "cache-0")
                .on("n1")
                .owned_by("StatefulSet", "cache")
                .with_empty_dir(),
        ];
        let p = plan(&pods, &[]);
        assert_eq!(p.refuse.len(), 2);
        let why = p.blocked.expect("blocked");
        assert!(
            why.contains("default/debug") && why.contains("shop/cache-0"),
            "{why}"
        );

        let allowed = DrainOptions {
            delete_unmanaged: true,
            delete_empty_dir_data: true,
            ..DrainOptions::default()
        };
        let p = plan_node("n1", &pods, &[], &allowed, &DrainConfig::default());
        assert_eq!(p.blocked, None);
        let flags: Vec<_> = p
            .evict
            .iter()
            .map(|e| (e.pod.as_str(), e.unmanaged, e.empty_dir))
            .collect();
        assert_eq!(
            flags,
            [
                ("default/debug", true, false),
                ("shop/cache-0", false, true)
            ]
        );
    }

    #[test]
    fn a_pod_under_two_budgets_blocks() {
        let budgets = [
            budget("a", "web", 1, 3, 2, 3),
            budget("b", "web", 1, 3, 2, 3),
        ];
        let why = plan(&[web("web-a")], &budgets).blocked.expect("blocked");
        assert!(why.contains("more than one disruption budget"), "{why}");
        assert!(why.contains("shop/a, shop/b"), "{why}");
    }

    #[test]
    fn the_estimate_counts_waves_of_parallel_evictions() {
        let pods: Vec<Pod> = [60, 30, 30, 10, 5]
            .iter()
            .enumerate()
            .map(|(i, g)| web(&format!("web-{i}")).grace_period(*g))
            .collect();
        let config = DrainConfig {
            parallelism: 2,
            ..DrainConfig::default()
        };
        let p = plan_node("n1", &pods, &[], &DrainOptions::default(), &config);
        // Waves (60, 30), (30, 10), (5).
        assert_eq!(p.estimated_seconds, 60 + 30 + 5);
        let overridden = DrainConfig {
            grace_period_seconds: Some(1),
            ..config
        };
        let p = plan_node("n1", &pods, &[], &DrainOptions::default(), &overridden);
        assert_eq!(p.estimated_seconds, 3);
    }
}
