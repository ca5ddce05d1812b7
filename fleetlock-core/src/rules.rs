//! Drain rules: ordered, first match wins, by namespace and pod labels. A rule evicts (the
//! default), leaves the pod on the node, or waits for it to finish its work up to a limit; and
//! it sets the pod's eviction priority, so that frontends leave before their databases.

use std::time::Duration;

use cluster_api::{LabelSelector, Pod};
use serde::{Deserialize, Deserializer};

/// How long a `waitForCompletion` rule waits when it names no limit.
pub const DEFAULT_WAIT_LIMIT: Duration = Duration::from_secs(60 * 60);

/// One drain rule: which pods, and what a drain does with them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DrainRule {
    /// The namespaces it applies to; empty: every namespace.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// A label selector over the pod's labels (`app=etl`, `tier in (web,edge)`); unset: every
    /// pod of those namespaces.
    #[serde(default, deserialize_with = "selector")]
    pub selector: Option<LabelSelector>,
    /// What the drain does with a matching pod.
    #[serde(default)]
    pub action: RuleAction,
    /// With `waitForCompletion`: how long, from the grant, the drain waits for the pod to
    /// finish before evicting it anyway ([`DEFAULT_WAIT_LIMIT`] unless set).
    #[serde(default, deserialize_with = "optional_duration")]
    pub limit: Option<Duration>,
    /// Eviction order: pods of a higher priority are evicted first, and a pod of a lower
    /// priority only once every pod of a higher one has left the node. 0 unless set.
    #[serde(default)]
    pub priority: i32,
}

/// What a drain does with the pods a rule matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RuleAction {
    /// Evict it, as without a rule.
    #[default]
    Evict,
    /// Leave it on the node; it goes down with the reboot.
    Skip,
    /// Do not evict it while it runs; the drain waits for it to finish, up to the limit.
    WaitForCompletion,
}

/// What the rules decide for one pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// What to do.
    pub action: RuleAction,
    /// Its eviction priority.
    pub priority: i32,
    /// With `WaitForCompletion`: how long to wait.
    pub limit: Duration,
    /// Which rule decided (its index), if one matched.
    pub rule: Option<usize>,
}

// === impl DrainRule ===

impl DrainRule {
    /// Whether the rule applies to `pod`.
    pub fn matches(&self, pod: &Pod) -> bool {
        (self.namespaces.is_empty() || self.namespaces.contains(&pod.namespace))
            && self
                .selector
                .as_ref()
                .is_none_or(|s| s.matches(&pod.labels))
    }

    /// What is wrong with the rule, if anything (for configuration validation).
    pub fn problem(&self) -> Option<String> {
        if self.limit.is_some() && self.action != RuleAction::WaitForCompletion {
            return Some("limit only applies to action: waitForCompletion".into());
        }
        if self.action == RuleAction::Skip && self.priority != 0 {
            return Some("priority does not apply to action: skip (the pod is not evicted)".into());
        }
        if self.namespaces.is_empty() && self.selector.is_none() {
            return Some("a rule needs namespaces or a selector (it would match every pod)".into());
        }
        None
    }
}

/// The first rule matching `pod` decides; without one, the pod is evicted at priority 0.
pub fn decide(rules: &[DrainRule], pod: &Pod) -> Decision {
    rules
        .iter()
        .enumerate()
        .find(|(_, r)| r.matches(pod))
        .map_or(
            Decision {
                action: RuleAction::Evict,
                priority: 0,
                limit: DEFAULT_WAIT_LIMIT,
                rule: None,
            },
            |(i, r)| Decision {
                action: r.action,
                priority: r.priority,
                limit: r.limit.unwrap_or(DEFAULT_WAIT_LIMIT),
                rule: Some(i),
            },
        )
}

fn selector<'de, D: Deserializer<'de>>(d: D) -> Result<Option<LabelSelector>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

fn optional_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    cluster_api::duration::duration(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str) -> Vec<DrainRule> {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let rules = rules(
            "- {namespaces: [batch], selector: kind=etl, action: waitForCompletion, limit: 2h}\n\
             - {selector: app=debug, action: skip}\n\
             - {namespaces: [shop], selector: 'tier in (web)', priority: 10}\n\
             - {namespaces: [shop, batch], priority: -5}\n",
        );
        let etl = Pod::new("batch", "etl-1").label("kind", "etl");
        let decided = decide(&rules, &etl);
        assert_eq!(decided.action, RuleAction::WaitForCompletion);
        assert_eq!(decided.limit, Duration::from_secs(7200));
        assert_eq!(decided.rule, Some(0));
        let debug = Pod::new("anywhere", "shell").label("app", "debug");
        assert_eq!(decide(&rules, &debug).action, RuleAction::Skip);
        let web = Pod::new("shop", "web-1").label("tier", "web");
        assert_eq!(decide(&rules, &web).priority, 10);
        let db = Pod::new("shop", "db-0").label("tier", "db");
        assert_eq!(decide(&rules, &db).priority, -5);
        let other = Pod::new("monitoring", "prometheus-0");
        assert_eq!(
            decide(&rules, &other),
            Decision {
                action: RuleAction::Evict,
                priority: 0,
                limit: DEFAULT_WAIT_LIMIT,
                rule: None
            }
        );
    }

    #[test]
    fn rules_that_make_no_sense_are_named() {
        for (yaml, want) in [
            ("- {selector: a=b, limit: 5m}\n", "limit only applies"),
            (
                "- {selector: a=b, action: skip, priority: 3}\n",
                "priority does not apply",
            ),
            ("- {action: skip}\n", "needs namespaces or a selector"),
        ] {
            let problem = rules(yaml)[0].problem().unwrap();
            assert!(problem.contains(want), "{yaml}: {problem}");
        }
        let bad: Result<Vec<DrainRule>, _> = serde_saphyr::from_str("- {selector: 'a in'}\n");
        assert!(bad.is_err());
        let bad: Result<Vec<DrainRule>, _> = serde_saphyr::from_str("- {action: delete}\n");
        assert!(bad.unwrap_err().to_string().contains("delete"));
    }
}
