//! The simulated cluster measured against the real one: the same questions asked over HTTP of
//! the simulated API endpoint and of a real kube-apiserver, the answers normalised (status
//! code, reason, the message where a client parses it, the fields the adapter reads) and
//! compared one by one.
//!
//! ```sh
//! # both sides, live (the ignored test; scripts/cluster's cluster, whose node names it uses):
//! scripts/cluster up; eval "$(scripts/cluster env)"
//! cargo test -p cluster-sim --features apiserver --test conformance -- --ignored --nocapture
//! # the simulated side alone, against the answers last recorded from the real one
//! # (what plain `cargo test` runs); RM_CONFORMANCE_RECORD=1 with a live run rewrites them:
//! cargo test -p cluster-sim --features apiserver --test conformance -- --nocapture
//! ```
//!
//! Setting up differs per side where the simulation has no API for it (pods turned unready
//! by hand, users and their rights); the questions do not. Every answer that differs must be
//! listed in [`KNOWN`] with the reason, as docs/simulation.md lists it; an answer that
//! differs and is not listed fails the test, and so does a listed one that no longer differs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use cluster_api::Node;
use cluster_sim::SimCluster;
use cluster_sim::access::{AccessRule, UserSpec};
use cluster_sim::apiserver::{ApiServer, Running};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

/// How long any condition on either side may take to come true.
const DEADLINE: Duration = Duration::from_secs(90);

/// The recorded answers of the real API server, compared with when no live one is given.
const RECORDED: &str = include_str!("conformance/kube-apiserver.json");

/// Answers known to differ, each with why; docs/simulation.md lists the same.
const KNOWN: &[(&str, &str)] = &[(
    "selectors/label-invalid",
    "the simulation's label selector parser takes `app===` (a value of `=`); the API server \
         refuses it with 400 `unable to parse requirement`",
)];

/// The nodes both sides have (scripts/cluster's names).
const NODES: [&str; 3] = ["rm-node-0", "rm-node-1", "rm-node-2"];

/// The name of the restricted user's ServiceAccount, and its namespace's suffix.
const LIMITED: &str = "conformance-limited";

// === one side ===

/// One cluster the questions are asked of.
struct Side {
    name: &'static str,
    url: String,
    http: reqwest::Client,
    /// The administrator's bearer token (the simulation's; the real side uses a client
    /// certificate).
    admin_token: Option<String>,
    /// A client with no credentials (for the 401 question), trusting the same CA.
    anonymous: reqwest::Client,
    sim: Option<(SimCluster, Running)>,
}

/// An answer: the status code and the body (JSON, or the text as a string).
#[derive(Debug, Clone)]
struct Reply {
    code: u16,
    body: Value,
}

impl Side {
    /// The real cluster of the kubeconfig in `KUBECONFIG`.
    fn real(kubeconfig: &str) -> Side {
        let text = std::fs::read_to_string(kubeconfig)
            .unwrap_or_else(|e| panic!("cannot read the kubeconfig {kubeconfig}: {e}"));
        let config: Value = serde_saphyr::from_str(&text)
            .unwrap_or_else(|e| panic!("{kubeconfig} is not a kubeconfig: {e}"));
        let cluster = &config["clusters"][0]["cluster"];
        let user = &config["users"][0]["user"];
        let data = |inline: &Value, file: &Value| -> Option<Vec<u8>> {
            if let Some(b64) = inline.as_str() {
                return Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .expect("base64 in the kubeconfig"),
                );
            }
            file.as_str()
                .map(|path| std::fs::read(path).expect("a file the kubeconfig names"))
        };
        let url = cluster["server"]
            .as_str()
            .expect("a server in the kubeconfig")
            .trim_end_matches('/')
            .to_string();
        let ca = data(
            &cluster["certificate-authority-data"],
            &cluster["certificate-authority"],
        )
        .expect("the kubeconfig's cluster names its CA");
        let ca = reqwest::Certificate::from_pem(&ca).expect("a PEM CA");
        let mut builder = reqwest::Client::builder().tls_certs_only([ca.clone()]);
        let mut admin_token = user["token"].as_str().map(String::from);
        if let (Some(cert), Some(key)) = (
            data(
                &user["client-certificate-data"],
                &user["client-certificate"],
            ),
            data(&user["client-key-data"], &user["client-key"]),
        ) {
            let mut pem = cert;
            pem.extend_from_slice(&key);
            builder =
                builder.identity(reqwest::Identity::from_pem(&pem).expect("a PEM client key"));
        } else if admin_token.is_none() {
            panic!("the kubeconfig's user has neither a client certificate nor a token");
        }
        if admin_token.as_deref() == Some("") {
            admin_token = None;
        }
        Side {
            name: "real",
            url,
            http: builder.build().unwrap(),
            admin_token,
            anonymous: reqwest::Client::builder()
                .tls_certs_only([ca])
                .build()
                .unwrap(),
            sim: None,
        }
    }

    /// The simulated cluster behind its API endpoint, with the real side's nodes.
    async fn simulated() -> Side {
        let sim = SimCluster::with_config(cluster_sim::SimConfig {
            start_time: jiff::Timestamp::now(),
            ..cluster_sim::SimConfig::default()
        });
        for name in NODES {
            sim.add_node(Node::new(name).machine_id(cluster_sim::machine_id_for(name)));
        }
        // A small window, so that an old resourceVersion is out of it, as on the real side
        // (where the watch cache holds only what happened since the API server started).
        let running = ApiServer::new(sim.clone())
            .watch_window(200)
            .serve_on_localhost()
            .await
            .expect("the simulated endpoint");
        let ca = reqwest::Certificate::from_pem(running.ca_pem().unwrap().as_bytes()).unwrap();
        let token = cluster_sim::apiserver::DEFAULT_TOKEN.to_string();
        Side {
            name: "sim",
            url: running.url().trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .tls_certs_only([ca.clone()])
                .build()
                .unwrap(),
            admin_token: Some(token),
            anonymous: reqwest::Client::builder()
                .tls_certs_only([ca])
                .build()
                .unwrap(),
            sim: Some((sim, running)),
        }
    }

    fn sim(&self) -> Option<&SimCluster> {
        self.sim.as_ref().map(|(sim, _)| sim)
    }

    /// A request as the administrator.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_with(method, path, body, "application/json", Auth::Admin)
            .await
    }

    async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        content_type: &str,
        auth: Auth<'_>,
    ) -> Reply {
        let url = format!("{}{path}", self.url);
        let mut request = match auth {
            Auth::Admin => {
                let r = self.http.request(method, url);
                match &self.admin_token {
                    Some(token) => r.bearer_auth(token),
                    None => r,
                }
            }
            Auth::Token(token) => self.anonymous.request(method, url).bearer_auth(token),
            Auth::Nobody => self.anonymous.request(method, url),
        };
        if let Some(body) = body {
            request = request
                .header("content-type", content_type)
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {path}: {e}", self.name));
        let code = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { code, body }
    }

    /// Waits until `probe` gives `Some`, or fails naming `what`.
    async fn until<T, F, Fut>(&self, what: &str, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let start = Instant::now();
        loop {
            if let Some(t) = probe().await {
                return t;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{}: {what} did not happen within {DEADLINE:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // --- setting up ---

    async fn namespace(&self, ns: &str) {
        let r = self
            .call(
                Method::POST,
                "/api/v1/namespaces",
                Some(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})),
            )
            .await;
        assert_eq!(r.code, 201, "{}: namespace {ns}: {:?}", self.name, r.body);
        if self.sim.is_none() {
            // Pods need the namespace's default ServiceAccount, made by a controller.
            let path = &format!("/api/v1/namespaces/{ns}/serviceaccounts/default");
            self.until("the default ServiceAccount", || async move {
                (self.call(Method::GET, path, None).await.code == 200).then_some(())
            })
            .await;
        }
    }

    /// A Deployment `name` of `replicas` pods labelled `app: name`; `pending` keeps them
    /// from being scheduled (a node selector no node matches).
    async fn deployment(&self, ns: &str, name: &str, replicas: i32, pending: bool) {
        self.workload(ns, "deployments", name, replicas, pending)
            .await;
    }

    /// A Deployment or StatefulSet (`resource`), as [`Side::deployment`].
    async fn workload(&self, ns: &str, resource: &str, name: &str, replicas: i32, pending: bool) {
        let mut spec = json!({
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}],
        });
        if pending {
            spec["nodeSelector"] = json!({"conformance.restart-manager.io/nowhere": "true"});
        }
        let kind = if resource == "statefulsets" {
            "StatefulSet"
        } else {
            "Deployment"
        };
        let mut body = json!({
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": {
                "name": name,
                "annotations": {"cluster-sim.restart-manager.io/pod-start-seconds": "1"},
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
            },
        });
        if kind == "StatefulSet" {
            body["spec"]["serviceName"] = json!(name);
        }
        let r = self
            .call(
                Method::POST,
                &format!("/apis/apps/v1/namespaces/{ns}/{resource}"),
                Some(body),
            )
            .await;
        assert_eq!(r.code, 201, "{}: {resource}: {:?}", self.name, r.body);
        let want = if pending { 0 } else { replicas };
        self.until("the workload's pods", || async move {
            let pods = self.pods(ns, name).await;
            let ready = pods.iter().filter(|p| p.ready).count() as i32;
            (pods.len() as i32 == replicas && ready == want).then_some(())
        })
        .await;
    }

    /// The pods labelled `app: app`, sorted by name.
    async fn pods(&self, ns: &str, app: &str) -> Vec<PodSeen> {
        let r = self
            .call(
                Method::GET,
                &format!("/api/v1/namespaces/{ns}/pods?labelSelector=app%3D{app}"),
                None,
            )
            .await;
        let mut pods: Vec<PodSeen> = r.body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .map(|p| PodSeen {
                name: p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                uid: p["metadata"]["uid"].as_str().unwrap_or("").to_string(),
                phase: p["status"]["phase"].as_str().unwrap_or("").to_string(),
                ready: p["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True"),
            })
            .collect();
        pods.sort_by(|a, b| a.name.cmp(&b.name));
        pods
    }

    /// A budget over `app: app` with `spec` (minAvailable, maxUnavailable, policy), once the
    /// disruption controller has counted `healthy` pods in its status.
    async fn budget(&self, ns: &str, name: &str, app: &str, spec: Value, healthy: i64) -> Value {
        let mut full = spec;
        full["selector"] = json!({"matchLabels": {"app": app}});
        let r = self
            .call(
                Method::POST,
                &format!("/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets"),
                Some(json!({
                    "apiVersion": "policy/v1",
                    "kind": "PodDisruptionBudget",
                    "metadata": {"name": name},
                    "spec": full,
                })),
            )
            .await;
        assert_eq!(r.code, 201, "{}: budget: {:?}", self.name, r.body);
        self.settled_budget(ns, name, healthy).await
    }

    /// The budget's status once it counts `healthy` pods.
    async fn settled_budget(&self, ns: &str, name: &str, healthy: i64) -> Value {
        let path = &format!("/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/{name}");
        let status = self
            .until("the budget's status", || async move {
                let b = self.call(Method::GET, path, None).await.body;
                let s = &b["status"];
                let observed = s["observedGeneration"].as_i64().unwrap_or(0)
                    >= b["metadata"]["generation"].as_i64().unwrap_or(1);
                (observed && s["currentHealthy"].as_i64() == Some(healthy)).then(|| s.clone())
            })
            .await;
        json!({
            "expectedPods": status["expectedPods"],
            "desiredHealthy": status["desiredHealthy"],
            "currentHealthy": status["currentHealthy"],
            "disruptionsAllowed": status["disruptionsAllowed"],
        })
    }

    /// Turns a running pod unready, as a failing readiness probe does.
    async fn unready(&self, ns: &str, pod: &str) {
        match self.sim() {
            Some(sim) => sim.set_pod_ready(ns, pod, false).unwrap(),
            None => {
                let r = self
                    .call_with(
                        Method::PATCH,
                        &format!("/api/v1/namespaces/{ns}/pods/{pod}/status"),
                        Some(json!({"status": {"conditions": [
                            {"type": "Ready", "status": "False", "reason": "Conformance"},
                            {"type": "ContainersReady", "status": "False", "reason": "Conformance"},
                        ]}})),
                        "application/strategic-merge-patch+json",
                        Auth::Admin,
                    )
                    .await;
                assert_eq!(r.code, 200, "{}: unready: {:?}", self.name, r.body);
            }
        }
    }

    /// A ServiceAccount-like user in `ns` who may get, list and watch pods there, and its
    /// bearer token.
    async fn limited_user(&self, ns: &str) -> String {
        let user = format!("system:serviceaccount:{ns}:{LIMITED}");
        if let Some(sim) = self.sim() {
            let token = format!("{ns}-token");
            sim.add_user(UserSpec::new(&user, &token));
            sim.add_access_rule(AccessRule {
                subjects: vec![user],
                api_groups: vec![String::new()],
                resources: vec!["pods".into()],
                verbs: vec!["get".into(), "list".into(), "watch".into()],
                namespaces: vec![ns.to_string()],
                resource_names: vec![],
            });
            return token;
        }
        let post = |path: String, body: Value| async move {
            let r = self.call(Method::POST, &path, Some(body)).await;
            assert!(r.code == 201, "{}: {path}: {:?}", self.name, r.body);
            r.body
        };
        post(
            format!("/api/v1/namespaces/{ns}/serviceaccounts"),
            json!({"metadata": {"name": LIMITED}}),
        )
        .await;
        post(
            format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles"),
            json!({"metadata": {"name": "pod-reader"}, "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
            ]}),
        )
        .await;
        post(
            format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
            json!({
                "metadata": {"name": "pod-reader"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": LIMITED, "namespace": ns}],
            }),
        )
        .await;
        let review = post(
            format!("/api/v1/namespaces/{ns}/serviceaccounts/{LIMITED}/token"),
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}}),
        )
        .await;
        review["status"]["token"].as_str().unwrap().to_string()
    }

    async fn delete_namespace(&self, ns: &str) {
        let _ = self
            .call(Method::DELETE, &format!("/api/v1/namespaces/{ns}"), None)
            .await;
    }
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    Admin,
    Token(&'a str),
    Nobody,
}

#[derive(Debug, Clone)]
struct PodSeen {
    name: String,
    uid: String,
    phase: String,
    ready: bool,
}

// === normalising ===

/// An error answer as a client reads it: code, reason, message, causes.
fn status(r: &Reply, names: &[(&str, &str)]) -> Value {
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
fn scrub(message: &str, names: &[(&str, &str)]) -> String {
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
const CASES: &[&str] = &[
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

async fn run_case(case: &str, s: &Side, ns: &str) -> BTreeMap<String, Value> {
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

async fn evict(s: &Side, ns: &str, pod: &str, uid: Option<&str>) -> Reply {
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
fn status_of(r: &Reply, pods: &[PodSeen]) -> Value {
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
async fn budget_case(
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

async fn lease_case(s: &Side, ns: &str, out: &mut BTreeMap<String, Value>) {
    let path = format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases");
    let lease = |rv: Option<&str>, holder: &str| {
        let mut l = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "lock"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 30},
        });
        if let Some(rv) = rv {
            l["metadata"]["resourceVersion"] = json!(rv);
        }
        l
    };
    let created = s.call(Method::POST, &path, Some(lease(None, "a"))).await;
    out.insert("create".into(), status(&created, &[]));
    let again = s.call(Method::POST, &path, Some(lease(None, "b"))).await;
    out.insert("create-again".into(), status(&again, &[]));
    let rv = created.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let one = format!("{path}/lock");
    let swapped = s.call(Method::PUT, &one, Some(lease(Some(&rv), "b"))).await;
    out.insert(
        "update-current".into(),
        json!({"code": swapped.code, "holder": swapped.body["spec"]["holderIdentity"]}),
    );
    let stale = s.call(Method::PUT, &one, Some(lease(Some(&rv), "c"))).await;
    out.insert("update-stale".into(), status(&stale, &[]));
    let delete = s
        .call(
            Method::DELETE,
            &one,
            Some(json!({"preconditions": {"resourceVersion": rv}})),
        )
        .await;
    out.insert("delete-stale".into(), status(&delete, &[]));
    let missing = s
        .call(
            Method::PUT,
            &format!("{path}/absent"),
            Some({
                let mut l = lease(Some("1"), "a");
                l["metadata"]["name"] = json!("absent");
                l
            }),
        )
        .await;
    out.insert("update-missing".into(), status(&missing, &[]));
}

async fn annotation_case(s: &Side, ns: &str, out: &mut BTreeMap<String, Value>) {
    let path = format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases");
    // 262,144 bytes in all, keys and values: the limit exactly, then one byte more.
    let key = "restart-manager.io/big";
    for (name, extra) in [("at-limit", 0), ("over-limit", 1)] {
        let value = "x".repeat(256 * 1024 - key.len() + extra);
        let r = s
            .call(
                Method::POST,
                &path,
                Some(json!({
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": name, "annotations": {key: value}},
                    "spec": {},
                })),
            )
            .await;
        out.insert(format!("lease-{name}"), status(&r, &[]));
    }
    // A Node patch over the limit.
    let value = "x".repeat(256 * 1024);
    let r = s
        .call_with(
            Method::PATCH,
            &format!("/api/v1/nodes/{}", NODES[2]),
            Some(json!({"metadata": {"annotations": {key: value}}})),
            "application/merge-patch+json",
            Auth::Admin,
        )
        .await;
    out.insert("node-over-limit".into(), status(&r, &[]));
}

async fn event_case(s: &Side, ns: &str, out: &mut BTreeMap<String, Value>) {
    let path = format!("/api/v1/namespaces/{ns}/events");
    for (name, len) in [("note-at-limit", 1024), ("note-over-limit", 1025)] {
        let now = format!(
            "{}.000000Z",
            jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S")
        );
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": "lock."},
            "involvedObject": {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "name": "lock", "namespace": ns},
            "reason": "Conformance",
            "message": "x".repeat(len),
            "type": "Normal",
            "action": "Check",
            "reportingComponent": "restart-manager",
            "reportingInstance": "restart-manager-0",
            "source": {"component": "restart-manager"},
            "eventTime": now,
        });
        let r = s.call(Method::POST, &path, Some(event)).await;
        out.insert(name.into(), status(&r, &[]));
    }
    // Without an eventTime (the deprecated way, the kubelet's), the note is not bounded so.
    let r = s
        .call(
            Method::POST,
            &path,
            Some(json!({
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"generateName": "lock."},
                "involvedObject": {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "name": "lock", "namespace": ns},
                "reason": "Conformance",
                "message": "x".repeat(2048),
                "type": "Normal",
                "source": {"component": "restart-manager"},
                "firstTimestamp": "2026-12-07T22:00:00Z",
                "lastTimestamp": "2026-12-07T22:00:00Z",
                "count": 1,
            })),
        )
        .await;
    out.insert("long-note-without-event-time".into(), status(&r, &[]));
}

async fn selector_case(s: &Side, ns: &str, out: &mut BTreeMap<String, Value>) {
    s.deployment(ns, "web", 2, false).await;
    s.deployment(ns, "db", 1, false).await;
    s.deployment(ns, "idle", 1, true).await;
    let ask = |query: &'static str| async move {
        let r = s
            .call(
                Method::GET,
                &format!("/api/v1/namespaces/{ns}/pods?{query}"),
                None,
            )
            .await;
        if r.code != 200 {
            return status(&r, &[]);
        }
        let mut apps: Vec<String> = r.body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                p["metadata"]["labels"]["app"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        apps.sort();
        json!({"code": 200, "apps": apps})
    };
    for (name, query) in [
        ("label-equals", "labelSelector=app%3Dweb"),
        ("label-not-equals", "labelSelector=app!%3Dweb"),
        ("label-in", "labelSelector=app+in+(web,db)"),
        ("label-notin", "labelSelector=app+notin+(web)"),
        ("label-exists", "labelSelector=app"),
        ("label-absent", "labelSelector=!app"),
        ("label-invalid", "labelSelector=app%3D%3D%3D"),
        ("field-phase", "fieldSelector=status.phase%3DPending"),
        ("field-phase-not", "fieldSelector=status.phase!%3DPending"),
        ("field-node-empty", "fieldSelector=spec.nodeName%3D"),
        ("field-unsupported", "fieldSelector=metadata.labels%3Dx"),
        (
            "field-and-label",
            "fieldSelector=status.phase%3DRunning&labelSelector=app%3Ddb",
        ),
    ] {
        out.insert(name.into(), ask(query).await);
    }
    let nodes = s
        .call(
            Method::GET,
            &format!("/api/v1/nodes?fieldSelector=metadata.name%3D{}", NODES[1]),
            None,
        )
        .await;
    out.insert(
        "node-by-name".into(),
        json!({"code": nodes.code, "count": nodes.body["items"].as_array().map(Vec::len)}),
    );
    let unschedulable = s
        .call(
            Method::GET,
            // Only a node of ours, whatever other tests on the same cluster do to the rest.
            &format!(
                "/api/v1/nodes?fieldSelector=spec.unschedulable%3Dfalse,metadata.name%3D{}",
                NODES[1]
            ),
            None,
        )
        .await;
    out.insert(
        "node-unschedulable".into(),
        json!({"code": unschedulable.code, "count": unschedulable.body["items"].as_array().map(Vec::len)}),
    );
}

async fn paging_case(s: &Side, ns: &str, out: &mut BTreeMap<String, Value>) {
    let path = format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases");
    for i in 0..5 {
        let r = s
            .call(
                Method::POST,
                &path,
                Some(json!({"metadata": {"name": format!("lease-{i}")}, "spec": {}})),
            )
            .await;
        assert_eq!(r.code, 201, "{}: {:?}", s.name, r.body);
    }
    let mut pages = vec![];
    let mut next: Option<String> = None;
    loop {
        let query = match &next {
            Some(token) => format!("?limit=2&continue={}", urlencode(token)),
            None => "?limit=2".to_string(),
        };
        let r = s.call(Method::GET, &format!("{path}{query}"), None).await;
        assert_eq!(r.code, 200, "{}: {:?}", s.name, r.body);
        let names: Vec<&str> = r.body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["metadata"]["name"].as_str())
            .collect();
        pages.push(json!({
            "names": names,
            "remainingItemCount": r.body["metadata"]["remainingItemCount"],
            "continues": r.body["metadata"]["continue"].as_str().is_some_and(|c| !c.is_empty()),
        }));
        next = r.body["metadata"]["continue"]
            .as_str()
            .filter(|c| !c.is_empty())
            .map(String::from);
        if next.is_none() || pages.len() > 5 {
            break;
        }
    }
    out.insert("pages".into(), json!(pages));
    let bad = s
        .call(
            Method::GET,
            &format!("{path}?limit=2&continue=bm90LWEtdG9rZW4"),
            None,
        )
        .await;
    out.insert(
        "bad-continue".into(),
        json!({"code": bad.code, "reason": bad.body["reason"]}),
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The watch events of a watch request, until `stop` says so or the stream ends.
async fn watch_events(
    s: &Side,
    path: &str,
    mut stop: impl FnMut(&[Value]) -> bool,
) -> (u16, Vec<Value>) {
    let mut request = s.http.get(format!("{}{path}", s.url));
    if let Some(token) = &s.admin_token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let code = response.status().as_u16();
    let mut events = vec![];
    let mut buffer = Vec::new();
    let mut stream = response.bytes_stream();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let chunk = match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(chunk))) => chunk,
            Ok(_) => break,
            Err(_) => panic!(
                "{}: the watch {path} said too little in time: {events:?}",
                s.name
            ),
        };
        buffer.extend_from_slice(&chunk);
        while let Some(i) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=i).collect();
            if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                events.push(v);
            }
        }
        if stop(&events) {
            break;
        }
    }
    if !buffer.is_empty()
        && let Ok(v) = serde_json::from_slice::<Value>(&buffer)
    {
        events.push(v);
    }
    (code, events)
}

async fn old_watch_case(s: &Side, ns: &str, out: &mut BTreeMap<String, Value>) {
    // On the simulated side, push resource version 1 out of the change window first.
    if let Some(sim) = s.sim() {
        for i in 0..250 {
            sim.add_pod(cluster_api::Pod::new(ns, format!("filler-{i}")))
                .unwrap();
        }
    }
    let (code, events) = watch_events(
        s,
        &format!(
            "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases?watch=true&resourceVersion=1"
        ),
        |events| !events.is_empty(),
    )
    .await;
    let first = events.first().cloned().unwrap_or(Value::Null);
    out.insert(
        "watch-from-1".into(),
        json!({
            "http": code,
            "type": first["type"],
            "code": first["object"]["code"],
            "reason": first["object"]["reason"],
            "message": first["object"]["message"].as_str().map(|m| scrub(m, &[])),
        }),
    );
}

async fn bookmark_case(s: &Side, ns: &str, out: &mut BTreeMap<String, Value>) {
    let path = format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases");
    for i in 0..2 {
        s.call(
            Method::POST,
            &path,
            Some(json!({"metadata": {"name": format!("lease-{i}")}, "spec": {}})),
        )
        .await;
    }
    let (code, events) = watch_events(
        s,
        &format!(
            "{path}?watch=true&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=30"
        ),
        |events| events.iter().any(|e| e["type"] == "BOOKMARK"),
    )
    .await;
    let summary: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "type": e["type"],
                "name": e["object"]["metadata"]["name"],
                "initial-events-end": e["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
                "has-resource-version": e["object"]["metadata"]["resourceVersion"].as_str().is_some_and(|v| !v.is_empty()),
            })
        })
        .collect();
    out.insert(
        "streaming-list".into(),
        json!({"http": code, "events": summary}),
    );
}

async fn rollout_case(s: &Side, ns: &str, resource: &str, out: &mut BTreeMap<String, Value>) {
    s.workload(ns, resource, "web", 3, false).await;
    let path = &format!("/apis/apps/v1/namespaces/{ns}/{resource}/web");
    let fields = |d: &Value| {
        let st = &d["status"];
        let conditions: BTreeMap<String, Value> = st["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["type"].as_str().unwrap_or("").to_string(),
                    json!({"status": c["status"], "reason": c["reason"]}),
                )
            })
            .collect();
        json!({
            "generation": d["metadata"]["generation"],
            "observedGeneration": st["observedGeneration"],
            "replicas": st["replicas"],
            "updatedReplicas": st["updatedReplicas"],
            "readyReplicas": st["readyReplicas"],
            "availableReplicas": st["availableReplicas"],
            "unavailableReplicas": st["unavailableReplicas"],
            "conditions": conditions,
            // A StatefulSet's revisions are hashes of each side's own; whether they agree is
            // what `rollout status` reads.
            "revisionsAgree": st["updateRevision"].as_str().map(|u| st["currentRevision"] == u),
        })
    };
    let settled = |st: &Value| {
        st["updateRevision"].is_null() || st["currentRevision"] == st["updateRevision"]
    };
    // The Deployment's own status follows its pods' a moment later.
    let before = s
        .until("the Deployment's status", || async move {
            let d = s.call(Method::GET, path, None).await.body;
            let st = &d["status"];
            (st["observedGeneration"] == d["metadata"]["generation"]
                && st["availableReplicas"] == 3
                && settled(st))
            .then_some(d)
        })
        .await;
    out.insert("before".into(), fields(&before));
    let patched = s
        .call_with(
            Method::PATCH,
            path,
            Some(json!({"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": "2026-12-07T22:00:00Z"
            }}}}})),
            "application/strategic-merge-patch+json",
            Auth::Admin,
        )
        .await;
    out.insert(
        "restart-patch".into(),
        json!({"code": patched.code, "generation": patched.body["metadata"]["generation"]}),
    );
    let done = s
        .until("the rollout's end", || async move {
            let d = s.call(Method::GET, path, None).await.body;
            let st = &d["status"];
            let observed = st["observedGeneration"] == d["metadata"]["generation"];
            let count = |f: &str| st[f].as_i64().unwrap_or(0);
            (observed
                && count("updatedReplicas") == 3
                && count("replicas") == 3
                && count("availableReplicas") == 3
                && settled(st))
            .then_some(d)
        })
        .await;
    out.insert("after".into(), fields(&done));
}

async fn cordon_case(s: &Side, out: &mut BTreeMap<String, Value>) {
    let path = format!("/api/v1/nodes/{}", NODES[1]);
    let node = s.call(Method::GET, &path, None).await;
    let rv = node.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    // A change in between: a label.
    let labelled = s
        .call_with(
            Method::PATCH,
            &path,
            Some(
                json!({"metadata": {"labels": {"conformance.restart-manager.io/touched": "yes"}}}),
            ),
            "application/merge-patch+json",
            Auth::Admin,
        )
        .await;
    assert_eq!(labelled.code, 200, "{}: {:?}", s.name, labelled.body);
    for (name, content_type) in [
        ("merge", "application/merge-patch+json"),
        ("strategic", "application/strategic-merge-patch+json"),
    ] {
        let r = s
            .call_with(
                Method::PATCH,
                &path,
                Some(json!({"metadata": {"resourceVersion": rv}, "spec": {"unschedulable": true}})),
                content_type,
                Auth::Admin,
            )
            .await;
        out.insert(format!("stale-{name}"), status(&r, &[]));
    }
    let after = s.call(Method::GET, &path, None).await;
    out.insert(
        "still-schedulable".into(),
        json!(after.body["spec"]["unschedulable"].as_bool() != Some(true)),
    );
    let current = after.body["metadata"]["resourceVersion"].clone();
    let r = s
        .call_with(
            Method::PATCH,
            &path,
            Some(
                json!({"metadata": {"resourceVersion": current}, "spec": {"unschedulable": true}}),
            ),
            "application/merge-patch+json",
            Auth::Admin,
        )
        .await;
    out.insert(
        "current".into(),
        json!({"code": r.code, "unschedulable": r.body["spec"]["unschedulable"]}),
    );
    let _ = s
        .call_with(
            Method::PATCH,
            &path,
            Some(json!({
                "metadata": {"labels": {"conformance.restart-manager.io/touched": null}},
                "spec": {"unschedulable": null},
            })),
            "application/merge-patch+json",
            Auth::Admin,
        )
        .await;
}

async fn rbac_case(s: &Side, ns: &str, out: &mut BTreeMap<String, Value>) {
    let token = s.limited_user(ns).await;
    let user = format!("system:serviceaccount:{ns}:{LIMITED}");
    let as_user = |method: Method, path: String, body: Option<Value>| {
        let token = token.clone();
        async move {
            s.call_with(method, &path, body, "application/json", Auth::Token(&token))
                .await
        }
    };
    let r = as_user(Method::GET, format!("/api/v1/namespaces/{ns}/pods"), None).await;
    out.insert("list-pods-allowed".into(), json!({"code": r.code}));
    let r = as_user(Method::GET, "/api/v1/namespaces/default/pods".into(), None).await;
    out.insert("list-pods-elsewhere".into(), status(&r, &[]));
    let r = as_user(
        Method::GET,
        format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/lock"),
        None,
    )
    .await;
    out.insert("get-lease".into(), status(&r, &[]));
    let r = as_user(Method::GET, "/api/v1/nodes".into(), None).await;
    out.insert("list-nodes".into(), status(&r, &[]));
    let r = as_user(
        Method::POST,
        format!("/api/v1/namespaces/{ns}/pods/some-pod/eviction"),
        Some(json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "some-pod"}})),
    )
    .await;
    out.insert("evict".into(), status(&r, &[]));
    let r = s
        .call_with(
            Method::GET,
            "/api/v1/nodes",
            None,
            "application/json",
            Auth::Token("not-a-token"),
        )
        .await;
    out.insert("bad-token".into(), status(&r, &[]));
    let r = s
        .call_with(
            Method::GET,
            "/api/v1/nodes",
            None,
            "application/json",
            Auth::Nobody,
        )
        .await;
    out.insert("anonymous".into(), status(&r, &[]));
    for (name, path) in [
        ("anonymous-discovery", "/api"),
        ("anonymous-version", "/version"),
        ("anonymous-healthz", "/healthz"),
    ] {
        let r = s
            .call_with(Method::GET, path, None, "application/json", Auth::Nobody)
            .await;
        out.insert(name.into(), status(&r, &[]));
    }
    for (name, verb, resource, sub, namespace) in [
        ("self-review-list-pods", "list", "pods", "", ns),
        ("self-review-delete-pods", "delete", "pods", "", ns),
        ("self-review-evict", "create", "pods", "eviction", ns),
        ("self-review-other-namespace", "list", "pods", "", "default"),
    ] {
        let r = as_user(
            Method::POST,
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews".into(),
            Some(json!({
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {"verb": verb, "resource": resource, "subresource": sub, "namespace": namespace}},
            })),
        )
        .await;
        out.insert(
            name.into(),
            json!({"code": r.code, "allowed": r.body["status"]["allowed"]}),
        );
    }
    for (name, verb) in [("review-get-pods", "get"), ("review-patch-pods", "patch")] {
        let r = s
            .call(
                Method::POST,
                "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                Some(json!({
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SubjectAccessReview",
                    "spec": {
                        "user": user,
                        "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}"), "system:authenticated"],
                        "resourceAttributes": {"verb": verb, "resource": "pods", "namespace": ns},
                    },
                })),
            )
            .await;
        out.insert(
            name.into(),
            json!({"code": r.code, "allowed": r.body["status"]["allowed"]}),
        );
    }
}

// === the comparison ===

/// What plain `cargo test` runs: the simulated side asked, its answers compared with those
/// recorded from the real API server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulated_cluster_answers_as_the_recorded_real_one() {
    compare(None).await;
}

/// Both sides asked, live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: scripts/cluster up; eval \"$(scripts/cluster env)\"; cargo test \
            -p cluster-sim --features apiserver --test conformance -- --ignored --nocapture"]
async fn the_simulated_cluster_answers_as_a_live_real_one() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = std::env::var("KUBECONFIG").expect(
        "the live comparison needs KUBECONFIG naming a disposable real cluster's admin \
         kubeconfig (scripts/cluster env prints it)",
    );
    compare(Some(Side::real(&kubeconfig))).await;
}

/// Asks every question of the simulated side and of `real` (or takes the recorded answers),
/// prints the table, and fails on a difference not listed in [`KNOWN`].
async fn compare(real: Option<Side>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let live = real.is_some();
    let sim = Side::simulated().await;
    let run = format!("r{}", std::process::id());
    let started = Instant::now();

    let mut answers: BTreeMap<String, (Value, Value)> = BTreeMap::new();
    let recorded: BTreeMap<String, Value> = if live {
        BTreeMap::new()
    } else {
        serde_json::from_str(RECORDED).expect("the recorded answers are JSON")
    };
    if !live {
        eprintln!(
            "\n!!! No live API server: the simulated cluster is compared with the answers \
             RECORDED from kube-apiserver ({}), not with a running one. The live comparison is \
             the ignored test of this file: scripts/cluster up; eval \"$(scripts/cluster env)\"; \
             cargo test -p cluster-sim --features apiserver --test conformance -- --ignored \
             --nocapture\n",
            recorded
                .get("_source")
                .and_then(Value::as_str)
                .unwrap_or("unknown version")
        );
    }
    let mut namespaces = vec![];
    for case in CASES {
        let ns = format!("conf-{run}-{}", short(case));
        namespaces.push(ns.clone());
        let sim_side = async {
            sim.namespace(&ns).await;
            run_case(case, &sim, &ns).await
        };
        let real_side = async {
            match &real {
                Some(real) => {
                    real.namespace(&ns).await;
                    Some(run_case(case, real, &ns).await)
                }
                None => None,
            }
        };
        let t = Instant::now();
        let (s, r) = futures::join!(sim_side, real_side);
        eprintln!("case {case}: {:.1} s", t.elapsed().as_secs_f64());
        for (question, sim_answer) in s {
            let key = format!("{case}/{question}");
            let real_answer = match &r {
                Some(r) => r.get(&question).cloned().unwrap_or(Value::Null),
                None => recorded.get(&key).cloned().unwrap_or(Value::Null),
            };
            answers.insert(key, (real_answer, sim_answer));
        }
    }
    if let Some(real) = &real {
        for ns in &namespaces {
            real.delete_namespace(ns).await;
        }
    }

    // The namespaces differ in the run's id; answers name them.
    let normalise = |v: &Value| -> Value {
        let text = v.to_string().replace(&run, "<run>");
        serde_json::from_str(&text).unwrap()
    };
    let mut equal = 0;
    let mut unexpected = vec![];
    let mut fixed = vec![];
    println!(
        "\n{:<58} {:<5} {}",
        "question",
        "equal",
        if live {
            "real | sim"
        } else {
            "recorded real | sim"
        }
    );
    for (key, (real_answer, sim_answer)) in &answers {
        let (real_answer, sim_answer) = (normalise(real_answer), normalise(sim_answer));
        let same = real_answer == sim_answer;
        let known = KNOWN.iter().find(|(k, _)| k == key);
        if same {
            equal += 1;
            println!("{key:<58} yes");
            if known.is_some() {
                fixed.push(key.clone());
            }
        } else {
            println!("{key:<58} NO    {real_answer}\n{:<64} {sim_answer}", "");
            if known.is_none() {
                unexpected.push(key.clone());
            }
        }
    }
    println!(
        "\nconformance: {} answers compared{}, {equal} equal, {} known differences, {:.0} s",
        answers.len(),
        if live {
            " live"
        } else {
            " with the recorded ones"
        },
        answers.len() - equal,
        started.elapsed().as_secs_f64(),
    );
    if live && std::env::var("RM_CONFORMANCE_RECORD").as_deref() == Ok("1") {
        let mut record: BTreeMap<String, Value> = answers
            .iter()
            .map(|(k, (real, _))| (k.clone(), normalise(real)))
            .collect();
        let version = real
            .as_ref()
            .unwrap()
            .call(Method::GET, "/version", None)
            .await;
        record.insert(
            "_source".into(),
            json!(format!(
                "{} recorded {}",
                version.body["gitVersion"].as_str().unwrap_or("?"),
                jiff::Timestamp::now().strftime("%Y-%m-%d")
            )),
        );
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/conformance/kube-apiserver.json"
        );
        std::fs::write(path, serde_json::to_string_pretty(&record).unwrap() + "\n").unwrap();
        println!("recorded the real answers in {path}");
    }
    assert!(
        unexpected.is_empty(),
        "answers differ that docs/simulation.md does not list: {unexpected:?}"
    );
    assert!(
        fixed.is_empty(),
        "answers listed as differing are now equal; take them out of KNOWN and the docs: {fixed:?}"
    );
}

/// A case's name short enough for a namespace.
fn short(case: &str) -> String {
    let s: String = case
        .split('-')
        .map(|w| w.chars().take(4).collect::<String>())
        .collect::<Vec<_>>()
        .join("-");
    s.chars().take(40).collect()
}
