//! The small conversions every object shares: absent maps and strings as empty, and label
//! selectors.

use std::collections::BTreeMap;

use cluster_api::{LabelSelector, Operator, Requirement};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

pub(super) fn map(m: Option<BTreeMap<String, String>>) -> BTreeMap<String, String> {
    m.unwrap_or_default()
}

pub(super) fn string(s: Option<String>) -> String {
    s.unwrap_or_default()
}

pub(super) fn selector(s: Option<meta::LabelSelector>) -> LabelSelector {
    let s = s.unwrap_or_default();
    LabelSelector {
        match_labels: map(s.match_labels),
        match_expressions: s
            .match_expressions
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| {
                let operator = match r.operator.as_str() {
                    "In" => Operator::In,
                    "NotIn" => Operator::NotIn,
                    "Exists" => Operator::Exists,
                    "DoesNotExist" => Operator::DoesNotExist,
                    _ => return None,
                };
                Some(Requirement {
                    key: r.key,
                    operator,
                    values: r.values.unwrap_or_default(),
                })
            })
            .collect(),
    }
}
