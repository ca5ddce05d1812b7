//! One side of the comparison: a cluster the questions are asked of, over HTTP.

use super::*;

// === one side ===

/// One cluster the questions are asked of.
pub(crate) struct Side {
    pub(crate) name: &'static str,
    pub(crate) url: String,
    pub(crate) http: reqwest::Client,
    /// The administrator's bearer token (the simulation's; the real side uses a client
    /// certificate).
    pub(crate) admin_token: Option<String>,
    /// A client with no credentials (for the 401 question), trusting the same CA.
    pub(crate) anonymous: reqwest::Client,
    pub(crate) sim: Option<(SimCluster, Running)>,
}

/// An answer: the status code and the body (JSON, or the text as a string).
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) code: u16,
    pub(crate) body: Value,
}

impl Side {
    /// The real cluster of the kubeconfig in `KUBECONFIG`.
    pub(crate) fn real(kubeconfig: &str) -> Side {
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
    pub(crate) async fn simulated() -> Side {
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

    pub(crate) fn sim(&self) -> Option<&SimCluster> {
        self.sim.as_ref().map(|(sim, _)| sim)
    }

    /// A request as the administrator.
    pub(crate) async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_with(method, path, body, "application/json", Auth::Admin)
            .await
    }

    pub(crate) async fn call_with(
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
    pub(crate) async fn until<T, F, Fut>(&self, what: &str, mut probe: F) -> T
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

    pub(crate) async fn namespace(&self, ns: &str) {
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
    pub(crate) async fn deployment(&self, ns: &str, name: &str, replicas: i32, pending: bool) {
        self.workload(ns, "deployments", name, replicas, pending)
            .await;
    }

    /// A Deployment or StatefulSet (`resource`), as [`Side::deployment`].
    pub(crate) async fn workload(
        &self,
        ns: &str,
        resource: &str,
        name: &str,
        replicas: i32,
        pending: bool,
    ) {
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
    pub(crate) async fn pods(&self, ns: &str, app: &str) -> Vec<PodSeen> {
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
    pub(crate) async fn budget(
        &self,
        ns: &str,
        name: &str,
        app: &str,
        spec: Value,
        healthy: i64,
    ) -> Value {
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
    pub(crate) async fn settled_budget(&self, ns: &str, name: &str, healthy: i64) -> Value {
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
    pub(crate) async fn unready(&self, ns: &str, pod: &str) {
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
    pub(crate) async fn limited_user(&self, ns: &str) -> String {
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

    pub(crate) async fn delete_namespace(&self, ns: &str) {
        let _ = self
            .call(Method::DELETE, &format!("/api/v1/namespaces/{ns}"), None)
            .await;
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    Admin,
    Token(&'a str),
    Nobody,
}

#[derive(Debug, Clone)]
pub(crate) struct PodSeen {
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) phase: String,
    pub(crate) ready: bool,
}
