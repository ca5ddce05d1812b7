//! Which objects a list or watch covers: namespace, label and field selectors, and pages.

use std::collections::{BTreeMap, HashMap};

use cluster_api::LabelSelector;
use serde_json::Value;

use super::discovery::Resource;
use super::status::ApiError;

/// A parsed `fieldSelector`: terms joined by commas, each `path=value`, `path==value` or
/// `path!=value`, judged on the object's JSON (a missing field is the empty string).
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

impl FieldSelector {
    pub(crate) fn parse(s: &str) -> Result<Self, ApiError> {
        let mut terms = Vec::new();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (path, equal, value) = if let Some((p, v)) = term.split_once("!=") {
                (p, false, v)
            } else if let Some((p, v)) = term.split_once("==") {
                (p, true, v)
            } else if let Some((p, v)) = term.split_once('=') {
                (p, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector: {term:?}: no operator"
                )));
            };
            terms.push((path.trim().to_string(), equal, value.trim().to_string()));
        }
        Ok(FieldSelector { terms })
    }

    /// Refuses a term on a field the API server does not index for `resource`, as it does:
    /// `400 field label not supported: PATH`.
    /// Whether it selects on no field at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    pub(crate) fn check_supported(&self, resource: Resource) -> Result<(), ApiError> {
        for (path, _, _) in &self.terms {
            let supported = matches!(path.as_str(), "metadata.name" | "metadata.namespace")
                || match resource {
                    Resource::Pods => matches!(
                        path.as_str(),
                        "spec.nodeName"
                            | "spec.restartPolicy"
                            | "spec.schedulerName"
                            | "spec.serviceAccountName"
                            | "spec.hostNetwork"
                            | "status.phase"
                            | "status.podIP"
                            | "status.podIPs"
                            | "status.nominatedNodeName"
                    ),
                    Resource::Nodes => path == "spec.unschedulable",
                    Resource::Namespaces => path == "status.phase",
                    Resource::ReplicaSets => path == "status.replicas",
                    // Events take their involved object's fields, reason, source, type and
                    // more; the simulation takes any.
                    Resource::Events | Resource::EventsV1 => true,
                    _ => false,
                };
            if !supported {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {path}"
                )));
            }
        }
        Ok(())
    }

    /// The value an equality term requires of `path`, if any (used to narrow a list).
    pub(crate) fn required(&self, path: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|(p, equal, _)| p == path && *equal)
            .map(|(_, _, v)| v.as_str())
    }

    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.terms.iter().all(|(path, equal, value)| {
            let mut at = object;
            for part in path.split('.') {
                at = &at[part];
            }
            let found = match at {
                Value::String(s) => s.clone(),
                // A false boolean is left out of the JSON; its field label still reads "false".
                Value::Null
                    if matches!(path.as_str(), "spec.unschedulable" | "spec.hostNetwork") =>
                {
                    "false".to_string()
                }
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (found == *value) == *equal
        })
    }
}

/// What a request selects.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selection {
    pub(crate) namespace: Option<String>,
    pub(crate) labels: Option<LabelSelector>,
    pub(crate) fields: FieldSelector,
}

impl Selection {
    pub(crate) fn from_query(
        namespace: Option<String>,
        query: &HashMap<String, String>,
    ) -> Result<Self, ApiError> {
        let labels =
            match query.get("labelSelector").map(String::as_str) {
                None | Some("") => None,
                Some(s) => Some(s.parse::<LabelSelector>().map_err(|e| {
                    ApiError::bad_request(format!("unable to parse requirement: {e}"))
                })?),
            };
        let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))?;
        Ok(Selection {
            namespace,
            labels,
            fields,
        })
    }

    /// Whether the object (its JSON) is selected.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        let meta = &object["metadata"];
        if let Some(ns) = &self.namespace
            && meta["namespace"].as_str() != Some(ns.as_str())
        {
            return false;
        }
        if let Some(selector) = &self.labels {
            let labels: BTreeMap<String, String> = meta["labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            if !selector.matches(&labels) {
                return false;
            }
        }
        self.fields.matches(object)
    }
}

/// The key objects are listed by: namespace, then name.
pub(crate) fn key_of(object: &Value) -> String {
    let meta = &object["metadata"];
    format!(
        "{}/{}",
        meta["namespace"].as_str().unwrap_or(""),
        meta["name"].as_str().unwrap_or("")
    )
}

/// Where a list resumes: the version of its first page and the last key served. Tokens carry
/// both; a page is served from the current state (changes since are replayed by a watch from
/// that version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) rv: u64,
    pub(crate) after: Option<String>,
}

impl Cursor {
    /// The cursor of a `continue` token, or of a first page at `rv`.
    pub(crate) fn parse(token: Option<&str>, rv: u64) -> Result<Cursor, ApiError> {
        match token {
            Some(t) if !t.is_empty() => {
                let (rv, after) = decode_token(t)
                    .ok_or_else(|| ApiError::bad_request("continue key is not valid"))?;
                Ok(Cursor {
                    rv,
                    after: Some(after),
                })
            }
            _ => Ok(Cursor { rv, after: None }),
        }
    }
}

/// One page of a list whose items come in key order: those after the cursor, at most
/// `limit`, and the token for the next page. Reads one item past the page, no more, so a
/// source that renders lazily renders only the page.
#[cfg(test)]
pub(crate) fn page(
    sorted: impl Iterator<Item = Value>,
    limit: Option<usize>,
    cursor: &Cursor,
) -> (Vec<Value>, Option<String>) {
    let (items, next, _) = page_counted(sorted, limit, cursor, false);
    (items, next)
}

/// [`page`], and with `count_rest` how many items follow the page (the list's
/// `remainingItemCount`), which reads the rest of the source.
pub(crate) fn page_counted(
    sorted: impl Iterator<Item = Value>,
    limit: Option<usize>,
    cursor: &Cursor,
    count_rest: bool,
) -> (Vec<Value>, Option<String>, Option<usize>) {
    let limit = limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
    let mut items = Vec::new();
    let mut more = false;
    let mut sorted = sorted;
    for item in sorted.by_ref() {
        if cursor
            .after
            .as_ref()
            .is_some_and(|after| key_of(&item) <= *after)
        {
            continue;
        }
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(item);
    }
    let next = more
        .then(|| {
            items
                .last()
                .map(|last| encode_token(cursor.rv, &key_of(last)))
        })
        .flatten();
    let rest = (more && count_rest).then(|| 1 + sorted.count());
    (items, next, rest)
}

fn encode_token(rv: u64, key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{rv}\n{key}"))
}

fn decode_token(t: &str) -> Option<(u64, String)> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()?;
    let s = String::from_utf8(bytes).ok()?;
    let (rv, key) = s.split_once('\n')?;
    Some((rv.parse().ok()?, key.to_string()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn field_selectors_judge_the_json() {
        let pod = json!({"metadata": {"name": "a", "namespace": "ns"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let on = |s: &str| FieldSelector::parse(s).unwrap().matches(&pod);
        assert!(on("spec.nodeName=n1"));
        assert!(on("spec.nodeName==n1,metadata.namespace=ns"));
        assert!(!on("spec.nodeName=n2"));
        assert!(on("status.phase!=Succeeded,status.phase!=Failed"));
        assert!(on("spec.missing="));
        assert!(FieldSelector::parse("nonsense").is_err());
    }

    /// As kube-apiserver v1.37.2 answers (cluster-sim/tests/conformance/ recorded it): a
    /// schedulable node, whose JSON leaves `spec.unschedulable` out, is selected by
    /// `spec.unschedulable=false`; a field the API server does not index is a 400.
    #[test]
    fn field_labels_are_the_api_servers() {
        let node = json!({"metadata": {"name": "n1"}, "spec": {}});
        let on = |s: &str| FieldSelector::parse(s).unwrap().matches(&node);
        assert!(on("spec.unschedulable=false"));
        assert!(!on("spec.unschedulable=true"));
        let refused = FieldSelector::parse("metadata.labels=x")
            .unwrap()
            .check_supported(Resource::Pods)
            .unwrap_err();
        assert_eq!(refused.status()["code"], 400);
        assert_eq!(
            refused.status()["message"],
            "field label not supported: metadata.labels"
        );
        for (resource, field) in [
            (Resource::Pods, "spec.nodeName=n1,status.phase!=Failed"),
            (Resource::Nodes, "spec.unschedulable=true,metadata.name=n1"),
            (Resource::Leases, "metadata.namespace=ns"),
        ] {
            assert!(
                FieldSelector::parse(field)
                    .unwrap()
                    .check_supported(resource)
                    .is_ok()
            );
        }
        assert!(
            FieldSelector::parse("spec.holderIdentity=a")
                .unwrap()
                .check_supported(Resource::Leases)
                .is_err()
        );
    }

    #[test]
    fn a_page_counts_what_follows_it_when_asked() {
        let items: Vec<Value> = (1..=5)
            .map(|i| json!({"metadata": {"name": format!("n{i}")}}))
            .collect();
        let first = Cursor::parse(None, 7).unwrap();
        let (_, next, rest) = page_counted(items.clone().into_iter(), Some(2), &first, true);
        assert_eq!(rest, Some(3));
        let cursor = Cursor::parse(next.as_deref(), 9).unwrap();
        let (_, _, rest) = page_counted(items.clone().into_iter(), Some(2), &cursor, true);
        assert_eq!(rest, Some(1));
        let (_, _, rest) = page_counted(items.into_iter(), Some(2), &first, false);
        assert_eq!(rest, None);
    }

    #[test]
    fn pages_continue_after_the_last_key() {
        let items: Vec<Value> = (1..=5)
            .map(|i| json!({"metadata": {"name": format!("n{i}")}}))
            .collect();
        let first_cursor = Cursor::parse(None, 7).unwrap();
        let (first, next) = page(items.clone().into_iter(), Some(2), &first_cursor);
        assert_eq!(first.len(), 2);
        let cursor = Cursor::parse(next.as_deref(), 9).unwrap();
        assert_eq!(cursor.rv, 7, "later pages keep the first page's version");
        let (second, next) = page(items.clone().into_iter(), Some(2), &cursor);
        assert_eq!(second[0]["metadata"]["name"], "n3");
        let cursor = Cursor::parse(next.as_deref(), 9).unwrap();
        let (last, next) = page(items.into_iter(), Some(2), &cursor);
        assert_eq!(last.len(), 1);
        assert_eq!(next, None, "no token after the last page");
        assert!(Cursor::parse(Some("not a token!"), 1).is_err());
    }
}
