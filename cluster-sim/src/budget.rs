//! PodDisruptionBudgets, evaluated the way the disruption controller and the Eviction API do.

use std::fmt;
use std::str::FromStr;

use cluster_api::LabelSelector;
use serde::{Deserialize, Deserializer};

/// A `policy/v1` PodDisruptionBudget.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Budget {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `spec.selector`; pods in the namespace it matches are covered.
    pub selector: LabelSelector,
    /// `spec.minAvailable`.
    #[serde(default)]
    pub min_available: Option<IntOrPercent>,
    /// `spec.maxUnavailable`.
    #[serde(default)]
    pub max_unavailable: Option<IntOrPercent>,
    /// `spec.unhealthyPodEvictionPolicy: AlwaysAllow` (else `IfHealthyBudget`, the default).
    #[serde(default)]
    pub always_allow_unhealthy: bool,
}

/// An absolute count or a percentage, as in `minAvailable: 2` or `maxUnavailable: "25%"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntOrPercent {
    /// A count of pods.
    Int(i32),
    /// A percentage of the expected pods.
    Percent(u8),
}

/// What a budget currently allows, as the disruption controller computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetStatus {
    /// Pods the budget expects (matching pods, or the owners' replicas for percentages and
    /// `maxUnavailable`).
    pub expected_pods: i32,
    /// `status.desiredHealthy`.
    pub desired_healthy: i32,
    /// `status.currentHealthy`: matching pods that are Ready and not terminating.
    pub current_healthy: i32,
    /// `status.disruptionsAllowed`.
    pub disruptions_allowed: i32,
}

// === impl Budget ===

impl Budget {
    /// A budget keeping at least `n` matching pods available.
    pub fn min_available(
        namespace: impl Into<String>,
        name: impl Into<String>,
        selector: LabelSelector,
        n: IntOrPercent,
    ) -> Self {
        Budget {
            namespace: namespace.into(),
            name: name.into(),
            selector,
            min_available: Some(n),
            max_unavailable: None,
            always_allow_unhealthy: false,
        }
    }

    /// A budget allowing at most `n` matching pods to be unavailable.
    pub fn max_unavailable(
        namespace: impl Into<String>,
        name: impl Into<String>,
        selector: LabelSelector,
        n: IntOrPercent,
    ) -> Self {
        Budget {
            namespace: namespace.into(),
            name: name.into(),
            selector,
            min_available: None,
            max_unavailable: Some(n),
            always_allow_unhealthy: false,
        }
    }

    /// With `unhealthyPodEvictionPolicy: AlwaysAllow`: a running pod that is not Ready may be
    /// evicted whatever the budget says.
    pub fn always_allow_unhealthy(mut self) -> Self {
        self.always_allow_unhealthy = true;
        self
    }

    /// Evaluates the budget over its matching pods.
    ///
    /// `matching` is the number of pods the selector matches, `healthy` how many of those are
    /// Ready and not terminating, and `scale` the summed desired replicas of their controllers
    /// (used for percentages and `maxUnavailable`, as in Kubernetes).
    pub fn status(&self, matching: i32, healthy: i32, scale: i32) -> BudgetStatus {
        let (expected, desired) = match (self.min_available, self.max_unavailable) {
            (Some(IntOrPercent::Int(n)), _) => (matching, n),
            (Some(IntOrPercent::Percent(p)), _) => (scale, percent_of(p, scale)),
            (None, Some(max)) => {
                let allowed = match max {
                    IntOrPercent::Int(n) => n,
                    IntOrPercent::Percent(p) => percent_of(p, scale),
                };
                (scale, (scale - allowed).max(0))
            }
            // Kubernetes defaults an empty spec to minAvailable: 1.
            (None, None) => (matching, 1),
        };
        BudgetStatus {
            expected_pods: expected,
            desired_healthy: desired,
            current_healthy: healthy,
            disruptions_allowed: (healthy - desired).max(0),
        }
    }
}

/// Percentages round up, as `GetScaledValueFromIntOrPercent(.., roundUp: true)` does.
fn percent_of(p: u8, of: i32) -> i32 {
    (i32::from(p) * of + 99) / 100
}

// === impl IntOrPercent ===

impl FromStr for IntOrPercent {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is neither a count nor a percentage like \"25%\"");
        match s.trim().strip_suffix('%') {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= 100)
                .map(IntOrPercent::Percent)
                .ok_or_else(bad),
            None => s
                .trim()
                .parse::<i32>()
                .ok()
                .filter(|n| *n >= 0)
                .map(IntOrPercent::Int)
                .ok_or_else(bad),
        }
    }
}

impl fmt::Display for IntOrPercent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrPercent::Int(n) => write!(f, "{n}"),
            IntOrPercent::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl<'de> Deserialize<'de> for IntOrPercent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i32),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) if n >= 0 => Ok(IntOrPercent::Int(n)),
            Raw::Int(n) => Err(serde::de::Error::custom(format!(
                "{n} is negative; a budget needs a count of at least 0"
            ))),
            Raw::Str(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any() -> LabelSelector {
        LabelSelector::everything()
    }

    #[test]
    fn min_available_counts_healthy_pods() {
        let b = Budget::min_available("ns", "b", any(), IntOrPercent::Int(2));
        assert_eq!(b.status(3, 3, 3).disruptions_allowed, 1);
        assert_eq!(b.status(3, 2, 3).disruptions_allowed, 0);
        assert_eq!(b.status(3, 1, 3).disruptions_allowed, 0);
    }

    #[test]
    fn percentages_round_up_against_the_owners_scale() {
        let b = Budget::min_available("ns", "b", any(), IntOrPercent::Percent(50));
        // 50% of 3 rounds up to 2 desired healthy.
        assert_eq!(b.status(3, 3, 3).desired_healthy, 2);
        let b = Budget::max_unavailable("ns", "b", any(), IntOrPercent::Percent(25));
        // 25% of 4 = 1 unavailable allowed, so 3 must stay healthy.
        assert_eq!(b.status(4, 4, 4).desired_healthy, 3);
        assert_eq!(b.status(4, 4, 4).disruptions_allowed, 1);
        let b = Budget::max_unavailable("ns", "b", any(), IntOrPercent::Int(0));
        assert_eq!(b.status(4, 4, 4).disruptions_allowed, 0);
    }

    #[test]
    fn parses_counts_and_percentages() {
        assert_eq!("3".parse::<IntOrPercent>(), Ok(IntOrPercent::Int(3)));
        assert_eq!("25%".parse::<IntOrPercent>(), Ok(IntOrPercent::Percent(25)));
        assert!("250%".parse::<IntOrPercent>().is_err());
        assert!(
            "lots"
                .parse::<IntOrPercent>()
                .unwrap_err()
                .contains("\"lots\"")
        );
    }
}
