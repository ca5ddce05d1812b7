use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A Kubernetes label selector: `matchLabels` plus set-based requirements.
///
/// Parses from and prints to the string form the API accepts in `?labelSelector=`
/// (`app=web,tier!=cache,env in (prod,staging),!canary`), and deserializes from the object form
/// used in manifests (`{matchLabels: {...}, matchExpressions: [...]}`). The empty selector
/// matches everything, as in Kubernetes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels that must be present with exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Further requirements, all of which must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<Requirement>,
}

/// One set-based requirement of a [`LabelSelector`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// How the label's value is tested.
    pub operator: Operator,
    /// The values for `In` and `NotIn`; empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// The operator of a [`Requirement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operator {
    /// The label's value is one of the values.
    In,
    /// The label is absent or its value is none of the values.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

/// A label selector string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label selector {selector:?}: {reason}")]
pub struct SelectorParseError {
    selector: String,
    reason: String,
}

// === impl LabelSelector ===

impl LabelSelector {
    /// The selector that matches every object.
    pub fn everything() -> Self {
        Self::default()
    }

    /// A selector requiring one label to have one value.
    pub fn eq(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self::default().and_eq(key, value)
    }

    /// Adds a `key=value` requirement.
    pub fn and_eq(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.match_labels.insert(key.into(), value.into());
        self
    }

    /// Whether the selector matches every object.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            if !std::mem::take(&mut first) {
                f.write_str(",")?;
            }
            Ok::<_, fmt::Error>(())
        };
        for (k, v) in &self.match_labels {
            sep(f)?;
            write!(f, "{k}={v}")?;
        }
        for r in &self.match_expressions {
            sep(f)?;
            match r.operator {
                Operator::In => write!(f, "{} in ({})", r.key, r.values.join(","))?,
                Operator::NotIn => write!(f, "{} notin ({})", r.key, r.values.join(","))?,
                Operator::Exists => write!(f, "{}", r.key)?,
                Operator::DoesNotExist => write!(f, "!{}", r.key)?,
            }
        }
        Ok(())
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| SelectorParseError {
            selector: s.to_string(),
            reason,
        };
        let mut selector = LabelSelector::default();
        for term in split_terms(s) {
            let term = term.trim();
            if term.is_empty() {
                if s.trim().is_empty() {
                    continue;
                }
                return Err(err("empty requirement".into()));
            }
            if let Some(key) = term.strip_prefix('!') {
                let key = valid_key(key.trim()).map_err(err)?;
                selector.match_expressions.push(Requirement {
                    key,
                    operator: Operator::DoesNotExist,
                    values: vec![],
                });
            } else if let Some((key, value)) = term.split_once("!=") {
                let key = valid_key(key.trim()).map_err(err)?;
                selector.match_expressions.push(Requirement {
                    key,
                    operator: Operator::NotIn,
                    values: vec![value.trim().to_string()],
                });
            } else if let Some((key, value)) =
                term.split_once("==").or_else(|| term.split_once('='))
            {
                let key = valid_key(key.trim()).map_err(err)?;
                selector.match_labels.insert(key, value.trim().to_string());
            } else if let Some((key, rest)) = split_set_term(term) {
                let (operator, values) = rest;
                let key = valid_key(key).map_err(err)?;
                selector.match_expressions.push(Requirement {
                    key,
                    operator,
                    values,
                });
            } else if term.contains(['(', ')', ' ']) {
                return Err(err(format!("cannot understand requirement {term:?}")));
            } else {
                let key = valid_key(term).map_err(err)?;
                selector.match_expressions.push(Requirement {
                    key,
                    operator: Operator::Exists,
                    values: vec![],
                });
            }
        }
        Ok(selector)
    }
}

/// Splits on commas that are not inside parentheses.
fn split_terms(s: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Parses `key in (a,b)` / `key notin (a,b)`.
fn split_set_term(term: &str) -> Option<(&str, (Operator, Vec<String>))> {
    let open = term.find('(')?;
    let close = term.rfind(')')?;
    if close != term.len() - 1 || close < open {
        return None;
    }
    let head = term[..open].trim();
    let (key, op) = head.rsplit_once(char::is_whitespace)?;
    let operator = match op {
        "in" => Operator::In,
        "notin" => Operator::NotIn,
        _ => return None,
    };
    let values = term[open + 1..close]
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    Some((key.trim(), (operator, values)))
}

fn valid_key(key: &str) -> Result<String, String> {
    let ok = !key.is_empty()
        && key.len() <= 317
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(key.to_string())
    } else {
        Err(format!("{key:?} is not a valid label key"))
    }
}

// === impl Requirement ===

impl Requirement {
    /// Whether labels satisfy this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_every_form_and_prints_it_back() {
        let s: LabelSelector = "app=web,tier!=cache,env in (prod, staging),!canary,team"
            .parse()
            .unwrap();
        assert_eq!(s.match_labels, labels(&[("app", "web")]));
        assert_eq!(s.match_expressions.len(), 4);
        assert_eq!(
            s.to_string(),
            "app=web,tier notin (cache),env in (prod,staging),!canary,team"
        );
        let again: LabelSelector = s.to_string().parse().unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn matches_like_kubernetes() {
        let s: LabelSelector = "app=web,env in (prod),!canary,tier!=cache".parse().unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("env", "prod")])));
        assert!(s.matches(&labels(&[("app", "web"), ("env", "prod"), ("tier", "db")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "dev")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "prod"), ("canary", "")])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("env", "prod"),
            ("tier", "cache")
        ])));
        assert!(LabelSelector::everything().matches(&labels(&[])));
    }

    #[test]
    fn bad_selectors_name_the_problem() {
        let err = "app=web,,x".parse::<LabelSelector>().unwrap_err();
        assert!(err.to_string().contains("empty requirement"), "{err}");
        let err = "a b c".parse::<LabelSelector>().unwrap_err();
        assert!(err.to_string().contains("\"a b c\""), "{err}");
        assert!("".parse::<LabelSelector>().unwrap().is_empty());
    }

    #[test]
    fn deserializes_the_manifest_form() {
        let s: LabelSelector = serde_json::from_str(
            r#"{"matchLabels":{"app":"web"},"matchExpressions":[{"key":"env","operator":"In","values":["prod"]}]}"#,
        )
        .unwrap();
        assert_eq!(s.to_string(), "app=web,env in (prod)");
    }
}
