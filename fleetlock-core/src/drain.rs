//! Draining a node, the way `kubectl drain` does: the plan as plain functions, the progress as
//! data.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::time::Duration;

use cluster_api::{LabelSelector, Pod, Timestamp};
use serde::{Deserialize, Serialize};

use crate::rules::{self, DrainRule, RuleAction};

/// How a drain treats the pods that need a decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainOptions {
    /// Evict pods without a controller (they will not come back).
    pub delete_unmanaged: bool,
    /// Evict pods with `emptyDir` volumes (their data is lost).
    pub delete_empty_dir_data: bool,
    /// The server's own pod, evicted only once every other pod has left.
    pub own_pod: Option<(String, String)>,
    /// The drain rules, in order ([`crate::rules`]).
    pub rules: Vec<DrainRule>,
}

/// Why a pod stays on a draining node without blocking the drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum SkipReason {
    /// A DaemonSet would put it straight back; it goes down with the node.
    DaemonSet,
    /// The mirror of a static pod; the API cannot remove it.
    Mirror,
    /// Succeeded or Failed; it runs nothing.
    Finished,
    /// It arrived after the drain began and tolerates the cordon
    /// (`node.kubernetes.io/unschedulable`): evicting it would only bring it (or its
    /// replacement) straight back. It goes down with the node.
    ToleratesCordon,
    /// A drain rule (`action: skip`) leaves it; it goes down with the node.
    DrainRule,
}

// === impl SkipReason ===

impl SkipReason {
    /// Why, in a few words for a person.
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::DaemonSet => "DaemonSet pod",
            SkipReason::Mirror => "static pod",
            SkipReason::Finished => "finished",
            SkipReason::ToleratesCordon => "tolerates the cordon; arrived after the drain began",
            SkipReason::DrainRule => "a drain rule leaves it",
        }
    }
}

/// A pod a drain leaves on the node, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SkippedPod {
    /// `namespace/name`.
    pub pod: String,
    /// Why it stays.
    pub reason: SkipReason,
}

/// Why a drain refuses to proceed until an operator decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum RefuseReason {
    /// No controller will recreate it.
    Unmanaged,
    /// Its `emptyDir` data would be lost.
    EmptyDir,
}

impl RefuseReason {
    /// Why, in a few words for a person.
    pub fn describe(self) -> &'static str {
        match self {
            RefuseReason::Unmanaged => "no controller would bring it back",
            RefuseReason::EmptyDir => "its emptyDir data would be lost",
        }
    }
}

/// What a drain will do with each pod on the node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainPlan {
    /// Pods to evict, by eviction priority (highest first), the server's own pod last.
    pub evict: Vec<Pod>,
    /// How many pods at the head of `evict` may be evicted now: those of the highest
    /// priority left (every pod of a higher priority, terminating ones too, is gone first).
    pub first_tier: usize,
    /// Pods a drain rule waits for to finish their work, with the time left before they are
    /// evicted anyway.
    pub wait: Vec<(Pod, Duration)>,
    /// Pods that stay.
    pub skip: Vec<(Pod, SkipReason)>,
    /// Pods that stop the drain until an operator deals with them.
    pub refuse: Vec<(Pod, RefuseReason)>,
}

/// Decides, for every pod on a node, whether it must leave, may stay, or needs an operator,
/// as a drain does when it begins.
pub fn plan_drain<'a>(
    pods: impl IntoIterator<Item = &'a Pod>,
    options: &DrainOptions,
) -> DrainPlan {
    plan_drain_at(pods, options, Duration::ZERO)
}

/// [`plan_drain`] for a drain that has run for `elapsed`: a pod a rule waits for is evicted
/// once its rule's limit has passed.
pub fn plan_drain_at<'a>(
    pods: impl IntoIterator<Item = &'a Pod>,
    options: &DrainOptions,
    elapsed: Duration,
) -> DrainPlan {
    let mut plan = DrainPlan::default();
    let mut priority: HashMap<(String, String), i32> = HashMap::new();
    for pod in pods {
        let pod = pod.clone();
        if pod.mirror {
            plan.skip.push((pod, SkipReason::Mirror));
            continue;
        } else if pod.is_finished() {
            plan.skip.push((pod, SkipReason::Finished));
            continue;
        } else if pod.is_daemonset_pod() {
            plan.skip.push((pod, SkipReason::DaemonSet));
            continue;
        }
        let decision = rules::decide(&options.rules, &pod);
        match decision.action {
            RuleAction::Skip => plan.skip.push((pod, SkipReason::DrainRule)),
            RuleAction::WaitForCompletion if elapsed < decision.limit && !pod.is_terminating() => {
                plan.wait.push((pod, decision.limit - elapsed));
            }
            _ if pod.controller.is_none() && !options.delete_unmanaged && !pod.is_terminating() => {
                plan.refuse.push((pod, RefuseReason::Unmanaged));
            }
            _ if pod.empty_dir && !options.delete_empty_dir_data && !pod.is_terminating() => {
                plan.refuse.push((pod, RefuseReason::EmptyDir));
            }
            _ => {
                priority.insert((pod.namespace.clone(), pod.name.clone()), decision.priority);
                plan.evict.push(pod);
            }
        }
    }
    let is_own = |p: &Pod| {
        options
            .own_pod
            .as_ref()
            .is_some_and(|(ns, name)| &p.namespace == ns && &p.name == name)
    };
    let priority_of = |p: &Pod| {
        priority
            .get(&(p.namespace.clone(), p.name.clone()))
            .copied()
            .unwrap_or_default()
    };
    plan.evict.sort_by_key(|p| {
        (
            is_own(p),
            Reverse(priority_of(p)),
            p.namespace.clone(),
            p.name.clone(),
        )
    });
    plan.first_tier = match plan.evict.iter().find(|p| !is_own(p)) {
        Some(first) => {
            let top = priority_of(first);
            plan.evict
                .iter()
                .take_while(|p| !is_own(p) && priority_of(p) == top)
                .count()
        }
        // Only the server's own pod is left (or nothing).
        None => plan.evict.len(),
    };
    plan
}

// === impl DrainPlan ===

impl DrainPlan {
    /// Whether the node is empty of everything that must leave (terminating pods still count)
    /// and no pod a rule waits for still runs.
    pub fn is_done(&self) -> bool {
        self.evict.is_empty() && self.wait.is_empty()
    }

    /// What an operator must do before the drain can go on, naming the pods.
    pub fn refusal_message(&self) -> Option<String> {
        let names = |reason: RefuseReason| {
            self.refuse
                .iter()
                .filter(|(_, r)| *r == reason)
                .map(|(p, _)| p.to_string())
                .collect::<Vec<_>>()
        };
        let mut parts = Vec::new();
        let unmanaged = names(RefuseReason::Unmanaged);
        if !unmanaged.is_empty() {
            parts.push(format!(
                "pods without a controller would not come back: {} (delete them, or set \
                 drain.deleteUnmanaged)",
                unmanaged.join(", ")
            ));
        }
        let empty_dir = names(RefuseReason::EmptyDir);
        if !empty_dir.is_empty() {
            parts.push(format!(
                "pods with emptyDir volumes would lose their data: {} (set \
                 drain.deleteEmptyDirData to accept that)",
                empty_dir.join(", ")
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// The running pods on a node that match any blocking selector.
pub fn blocking_pods<'a>(pods: &'a [Pod], selectors: &[LabelSelector]) -> Vec<&'a Pod> {
    pods.iter()
        .filter(|p| !p.is_finished() && !p.is_terminating())
        .filter(|p| selectors.iter().any(|s| s.matches(&p.labels)))
        .collect()
}

/// How far a node's drain has got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DrainStatus {
    /// The Node being drained: the slot holder's Node name, not the id it asked with.
    pub node: String,
    /// Where the drain is.
    pub phase: DrainPhase,
    /// When the slot was granted.
    pub started: Timestamp,
    /// Pods that must still leave (terminating ones included).
    pub pods_left: usize,
    /// Some of them, by name.
    pub waiting_for: Vec<String>,
    /// Why evictions are being refused right now (disruption budgets, API errors).
    pub blocked: Vec<String>,
    /// Pods left on the node on purpose (at most 20), and why.
    #[serde(default)]
    pub skipped: Vec<SkippedPod>,
    /// Past the drain timeout and still going.
    pub overdue: bool,
    /// A sentence for a person: with the API server's own words when it refused something.
    pub message: String,
    /// The sentence FleetLock answers the node itself with (it lands in Zincati's journal):
    /// the node's own name and pods, counts, never the API server's words, which name this
    /// server's ServiceAccount, nor anything about other nodes.
    #[serde(skip)]
    pub summary: String,
}

/// Where a drain is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum DrainPhase {
    /// Evicting and waiting.
    Running,
    /// Stopped until an operator acts (see the message).
    Blocked,
    /// The node is empty and the reboot is approved.
    Done,
    /// The drain overran its timeout and the slot was given back.
    TimedOut,
    /// The slot was given back while draining.
    Cancelled,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(pods: &[Pod]) -> Vec<&str> {
        pods.iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn plans_like_kubectl_drain() {
        let pods = [
            Pod::new("shop", "web-1")
                .on("n1")
                .owned_by("ReplicaSet", "web-abc"),
            Pod::new("kube-system", "agent-x")
                .on("n1")
                .owned_by("DaemonSet", "agent"),
            Pod::new("kube-system", "etcd-n1").on("n1").mirror(),
            Pod::new("batch", "done")
                .on("n1")
                .owned_by("Job", "j")
                .phase(cluster_api::PodPhase::Succeeded),
            Pod::new("default", "debug").on("n1"),
            Pod::new("shop", "cache-0")
                .on("n1")
                .owned_by("StatefulSet", "cache")
                .with_empty_dir(),
        ];
        let plan = plan_drain(&pods, &DrainOptions::default());
        assert_eq!(names(&plan.evict), ["web-1"]);
        let skipped: Vec<_> = plan
            .skip
            .iter()
            .map(|(p, r)| (p.name.as_str(), *r))
            .collect();
        assert_eq!(
            skipped,
            [
                ("agent-x", SkipReason::DaemonSet),
                ("etcd-n1", SkipReason::Mirror),
                ("done", SkipReason::Finished)
            ]
        );
        let message = plan.refusal_message().unwrap();
        assert!(message.contains("default/debug"), "{message}");
        assert!(message.contains("shop/cache-0"), "{message}");
        assert!(message.contains("drain.deleteUnmanaged"), "{message}");

        let forced = plan_drain(
            &pods,
            &DrainOptions {
                delete_unmanaged: true,
                delete_empty_dir_data: true,
                ..DrainOptions::default()
            },
        );
        assert_eq!(names(&forced.evict), ["debug", "cache-0", "web-1"]);
        assert!(forced.refusal_message().is_none());
    }

    #[test]
    fn the_servers_own_pod_goes_last() {
        let pods = [
            Pod::new("restart-manager", "server-a")
                .on("n1")
                .owned_by("ReplicaSet", "server"),
            Pod::new("zzz", "last-by-name")
                .on("n1")
                .owned_by("ReplicaSet", "z"),
            Pod::new("aaa", "first-by-name")
                .on("n1")
                .owned_by("ReplicaSet", "a"),
        ];
        let plan = plan_drain(
            &pods,
            &DrainOptions {
                own_pod: Some(("restart-manager".into(), "server-a".into())),
                ..Default::default()
            },
        );
        assert_eq!(
            names(&plan.evict),
            ["first-by-name", "last-by-name", "server-a"]
        );
    }

    #[test]
    fn rules_order_skip_and_wait() {
        let rules: Vec<DrainRule> = serde_saphyr::from_str(
            "- {selector: tier=web, priority: 10}\n\
             - {selector: tier=db, priority: -10}\n\
             - {selector: app=debug, action: skip}\n\
             - {namespaces: [batch], action: waitForCompletion, limit: 30m}\n",
        )
        .unwrap();
        let options = DrainOptions {
            rules,
            ..DrainOptions::default()
        };
        let pod = |ns: &str, name: &str, label: (&str, &str)| {
            Pod::new(ns, name)
                .on("n1")
                .owned_by("ReplicaSet", "rs")
                .label(label.0, label.1)
        };
        let pods = [
            pod("shop", "db-0", ("tier", "db")),
            pod("shop", "api-1", ("tier", "api")),
            pod("shop", "web-1", ("tier", "web")),
            pod("shop", "web-2", ("tier", "web")),
            Pod::new("ops", "shell").on("n1").label("app", "debug"),
            pod("batch", "etl-7", ("kind", "etl")),
        ];
        let plan = plan_drain(&pods, &options);
        assert_eq!(names(&plan.evict), ["web-1", "web-2", "api-1", "db-0"]);
        assert_eq!(plan.first_tier, 2, "the frontends first");
        assert_eq!(
            plan.skip[0].1,
            SkipReason::DrainRule,
            "the debug shell stays"
        );
        assert!(
            plan.refuse.is_empty(),
            "a skipped unmanaged pod refuses nothing"
        );
        assert_eq!(plan.wait.len(), 1);
        assert_eq!(plan.wait[0].1, Duration::from_secs(1800));
        // The frontends gone, the API is next; the batch pod still holds the drain.
        let later = plan_drain_at(&pods[..2], &options, Duration::from_secs(600));
        assert_eq!(names(&later.evict[..later.first_tier]), ["api-1"]);
        let rest = [pods[5].clone()];
        let waiting = plan_drain_at(&rest, &options, Duration::from_secs(600));
        assert!(!waiting.is_done());
        assert_eq!(waiting.wait[0].1, Duration::from_secs(1200));
        // Past its limit it is evicted; finished, it is skipped like any finished pod.
        let overdue = plan_drain_at(&rest, &options, Duration::from_secs(1800));
        assert_eq!(names(&overdue.evict), ["etl-7"]);
        let done = [rest[0].clone().phase(cluster_api::PodPhase::Succeeded)];
        assert!(plan_drain_at(&done, &options, Duration::ZERO).is_done());
    }

    #[test]
    fn terminating_pods_still_count_until_gone() {
        let mut leaving = Pod::new("shop", "web-1")
            .on("n1")
            .owned_by("ReplicaSet", "web");
        leaving.deletion_timestamp = Some("2026-01-05T09:00:00Z".parse().unwrap());
        let plan = plan_drain([&leaving], &DrainOptions::default());
        assert!(!plan.is_done());
        assert!(plan_drain([], &DrainOptions::default()).is_done());
    }

    #[test]
    fn blocking_selectors_match_running_pods_only() {
        let selector: LabelSelector = "app=backup".parse().unwrap();
        let pods = [
            Pod::new("ops", "backup-1").on("n1").label("app", "backup"),
            Pod::new("ops", "backup-0")
                .on("n1")
                .label("app", "backup")
                .phase(cluster_api::PodPhase::Succeeded),
            Pod::new("ops", "web").on("n1").label("app", "web"),
        ];
        let blocking = blocking_pods(&pods, &[selector]);
        assert_eq!(blocking.len(), 1);
        assert_eq!(blocking[0].name, "backup-1");
    }
}
