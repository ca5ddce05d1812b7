//! PodDisruptionBudgets with the status the disruption controller keeps.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::budget::Budget;
use crate::state::State;

use super::meta::{derived_uid, int_or_percent, metadata, time};

/// A `policy/v1` PodDisruptionBudget with the status the disruption controller keeps.
pub(crate) fn budget(st: &State, b: &Budget) -> Value {
    let status = st.budget_status(b);
    // The whole selector, set-based requirements included (an empty one selects every pod
    // of the namespace, as in policy/v1).
    let mut spec = json!({
        "selector": serde_json::to_value(&b.selector).unwrap_or_else(|_| json!({})),
    });
    if let Some(v) = b.min_available {
        spec["minAvailable"] = int_or_percent(v);
    }
    if let Some(v) = b.max_unavailable {
        spec["maxUnavailable"] = int_or_percent(v);
    }
    if b.always_allow_unhealthy {
        spec["unhealthyPodEvictionPolicy"] = json!("AlwaysAllow");
    }
    let allowed = status.disruptions_allowed > 0;
    json!({
        "kind": "PodDisruptionBudget",
        "apiVersion": "policy/v1",
        "metadata": metadata(&b.name, Some(&b.namespace), &derived_uid(&b.namespace, &b.name), &st.current_rv().to_string(), st.config.start_time, &BTreeMap::new(), &BTreeMap::new()),
        "spec": spec,
        "status": {
            "observedGeneration": 1,
            "disruptionsAllowed": status.disruptions_allowed.max(0),
            "currentHealthy": status.current_healthy,
            "desiredHealthy": status.desired_healthy,
            "expectedPods": status.expected_pods,
            "conditions": [{
                "type": "DisruptionAllowed",
                "status": if allowed { "True" } else { "False" },
                "reason": if allowed { "SufficientPods" } else { "InsufficientPods" },
                "message": "",
                "observedGeneration": 1,
                "lastTransitionTime": time(st.config.start_time),
            }],
        },
    })
}
