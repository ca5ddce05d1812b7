//! The questions: normalising answers, the list of cases, and the eviction and budget cases.

use super::*;

// === normalising ===

/// An error answer as a client reads it: code, reason, message, causes.
pub(crate) fn status(r: &Reply, names: &[(&str, &str)]) -> Value {
    if r.code < 300 {
        return json!({"code": r.code});
    }
    let b = &r.body;
    let mut causes: Vec<Value> = b["details"]["causes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for c in &mut causes {
        if let Some(m) = c["message"].as_str() {
            c["message"] = json!(scrub(m, names));
        }
    }
    json!({
        "code": r.code,
        "reason": b["reason"],
        "message": b["message"].as_str().map(|m| scrub(m, names)).or_else(|| b.as_str().map(|m| scrub(m, names))),
        "causes": causes,
    })
}

/// A message with the names that differ between the sides (generated pod names) replaced.
pub(crate) fn scrub(message: &str, names: &[(&str, &str)]) -> String {
    let mut m = message.to_string();
    for (name, placeholder) in names {
        if !name.is_empty() {
            m = m.replace(name, placeholder);
        }
    }
    // Resource versions are each side's own numbers.
    if let Some(i) = m.find("too old resource version: ") {
        m.truncate(i);
        m.push_str("too old resource version: <rv> (<rv>)");
    }
    // So are numbers in parentheses (a precondition's resource version and the record's).
    let mut out = String::with_capacity(m.len());
    let mut rest = m.as_str();
    while let Some(i) = rest.find('(') {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && rest[digits..].starts_with(')') {
            out.push_str("<n>");
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    // And the names the API server generates (an Event's `generateName` suffix).
    if let Some(tail) = out.strip_prefix("Event \"")
        && let Some(end) = tail.find('"')
    {
        out = format!("Event \"<generated>\"{}", &tail[end + 1..]);
    }
    out
}

// === the questions ===

/// The cases, in the order they run; each gives named answers.
pub(crate) const CASES: &[&str] = &[
    "evict-min-available-allows",
    "evict-min-available-refuses",
    "evict-max-unavailable-allows",
    "evict-max-unavailable-refuses",
    "evict-min-available-percent",
    "evict-min-available-percent-rounds-up",
    "evict-max-unavailable-percent",
    "evict-unhealthy-if-healthy-budget-satisfied",
    "evict-unhealthy-if-healthy-budget-unsatisfied",
    "evict-unhealthy-always-allow",
    "evict-healthy-always-allow-unsatisfied",
    "evict-pending",
    "evict-two-budgets",
    "evict-no-budget",
    "evict-missing-and-stale-uid",
    "lease-compare-and-swap",
    "annotation-limit",
    "event-note-limit",
    "selectors",
    "paging",
    "watch-old-resource-version",
    "watch-bookmarks",
    "rollout-status",
    "rollout-status-statefulset",
    "cordon-stale-resource-version",
    "rbac",
];

pub(crate) async fn run_case(case: &str, s: &Side, ns: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    match case {
        "evict-min-available-allows" => {
            budget_case(s, ns, &mut out, 3, json!({"minAvailable": 2}), None).await
        }
        "evict-min-available-refuses" => {
            budget_case(s, ns, &mut out, 3, json!({"minAvailable": 3}), None).await
        }
        "evict-max-unavailable-allows" => {
            budget_case(s, ns, &mut out, 3, json!({"maxUnavailable": 1}), None).await
        }
        "evict-max-unavailable-refuses" => {
            budget_case(s, ns, &mut out, 3, json!({"maxUnavailable": 0}), None).await
        }
        "evict-min-available-percent" => {
            budget_case(s, ns, &mut out, 3, json!({"minAvailable": "50%"}), None).await
        }
        "evict-min-available-percent-rounds-up" => {
            budget_case(s, ns, &mut out, 3, json!({"minAvailable": "67%"}), None).await
        }
        "evict-max-unavailable-percent" => {
            budget_case(s, ns, &mut out, 4, json!({"maxUnavailable": "30%"}), None).await
        }
        "evict-unhealthy-if-healthy-budget-satisfied" => {
            let spec = json!({"minAvailable": 1, "unhealthyPodEvictionPolicy": "IfHealthyBudget"});
            budget_case(s, ns, &mut out, 3, spec, Some(true)).await
        }
        "evict-unhealthy-if-healthy-budget-unsatisfied" => {
            let spec = json!({"minAvailable": 3, "unhealthyPodEvictionPolicy": "IfHealthyBudget"});
            budget_case(s, ns, &mut out, 3, spec, Some(true)).await
        }
        "evict-unhealthy-always-allow" => {
            let spec = json!({"minAvailable": 3, "unhealthyPodEvictionPolicy": "AlwaysAllow"});
            budget_case(s, ns, &mut out, 3, spec, Some(true)).await
        }
        "evict-healthy-always-allow-unsatisfied" => {
            let spec = json!({"minAvailable": 3, "unhealthyPodEvictionPolicy": "AlwaysAllow"});
            budget_case(s, ns, &mut out, 3, spec, Some(false)).await
        }
        "evict-pending" => {
            s.deployment(ns, "web", 2, true).await;
            let status = s
                .budget(ns, "web", "web", json!({"minAvailable": 2}), 0)
                .await;
            out.insert("budget-status".into(), status);
            let pods = s.pods(ns, "web").await;
            out.insert("pod-phase".into(), json!(pods[0].phase));
            let r = evict(s, ns, &pods[0].name, None).await;
            out.insert("eviction".into(), status_of(&r, &pods));
        }
        "evict-two-budgets" => {
            s.deployment(ns, "web", 3, false).await;
            s.budget(ns, "one", "web", json!({"maxUnavailable": 1}), 3)
                .await;
            s.budget(ns, "two", "web", json!({"maxUnavailable": 1}), 3)
                .await;
            let pods = s.pods(ns, "web").await;
            let r = evict(s, ns, &pods[0].name, None).await;
            out.insert("eviction".into(), status_of(&r, &pods));
        }
        "evict-no-budget" => {
            s.deployment(ns, "web", 1, false).await;
            let pods = s.pods(ns, "web").await;
            let r = evict(s, ns, &pods[0].name, None).await;
            out.insert("eviction".into(), status_of(&r, &pods));
        }
        "evict-missing-and-stale-uid" => {
            s.deployment(ns, "web", 1, false).await;
            let pods = s.pods(ns, "web").await;
            let r = evict(s, ns, "no-such-pod", None).await;
            out.insert("missing-pod".into(), status_of(&r, &pods));
            let stale = "00000000-0000-0000-0000-000000000000";
            let r = evict(s, ns, &pods[0].name, Some(stale)).await;
            let mut answer = status_of(&r, &pods);
            answer["message"] = json!(scrub(
                answer["message"].as_str().unwrap_or(""),
                &[(pods[0].uid.as_str(), "<uid>")]
            ));
            out.insert("stale-uid".into(), answer);
        }
        "lease-compare-and-swap" => lease_case(s, ns, &mut out).await,
        "annotation-limit" => annotation_case(s, ns, &mut out).await,
        "event-note-limit" => event_case(s, ns, &mut out).await,
        "selectors" => selector_case(s, ns, &mut out).await,
        "paging" => paging_case(s, ns, &mut out).await,
        "watch-old-resource-version" => old_watch_case(s, ns, &mut out).await,
        "watch-bookmarks" => bookmark_case(s, ns, &mut out).await,
        "rollout-status" => rollout_case(s, ns, "deployments", &mut out).await,
        "rollout-status-statefulset" => rollout_case(s, ns, "statefulsets", &mut out).await,
        "cordon-stale-resource-version" => cordon_case(s, &mut out).await,
        "rbac" => rbac_case(s, ns, &mut out).await,
        other => panic!("no case {other}"),
    }
    out
}

pub(crate) async fn evict(s: &Side, ns: &str, pod: &str, uid: Option<&str>) -> Reply {
    let mut body = json!({
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": pod, "namespace": ns},
    });
    if let Some(uid) = uid {
        body["deleteOptions"] = json!({"preconditions": {"uid": uid}});
    }
    s.call(
        Method::POST,
        &format!("/api/v1/namespaces/{ns}/pods/{pod}/eviction"),
        Some(body),
    )
    .await
}

/// An eviction's answer with the pods' generated names replaced by their index.
pub(crate) fn status_of(r: &Reply, pods: &[PodSeen]) -> Value {
    let placeholders: Vec<String> = (0..pods.len()).map(|i| format!("<pod-{i}>")).collect();
    let names: Vec<(&str, &str)> = pods
        .iter()
        .zip(&placeholders)
        .map(|(p, ph)| (p.name.as_str(), ph.as_str()))
        .collect();
    status(r, &names)
}

/// `replicas` ready pods under one budget; with `unhealthy`, the first pod is made unready
/// and evicted (`Some(true)`) or a ready one is (`Some(false)`).
pub(crate) async fn budget_case(
    s: &Side,
    ns: &str,
    out: &mut BTreeMap<String, Value>,
    replicas: i32,
    spec: Value,
    unhealthy: Option<bool>,
) {
    s.deployment(ns, "web", replicas, false).await;
    let mut healthy = i64::from(replicas);
    let pods = s.pods(ns, "web").await;
    if unhealthy.is_some() {
        s.unready(ns, &pods[0].name).await;
        healthy -= 1;
    }
    let status = s.budget(ns, "web", "web", spec, healthy).await;
    out.insert("budget-status".into(), status);
    let victim = match unhealthy {
        Some(false) => &pods[1],
        _ => &pods[0],
    };
    let r = evict(s, ns, &victim.name, None).await;
    out.insert("eviction".into(), status_of(&r, &pods));
}
