//! What the API's reads need and cost: the rights a dry run and a plan show things under,
//! each user's rate of reads that go to the cluster, the budget those reads spend, and who
//! may read `/metrics`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use cluster_api::{
    ClusterApi, ConfigKind, ConfigObject, DisruptionBudget, Event, EvictOptions, EvictionOutcome,
    LabelSelector, Lease, Node, NodePatch, ObjectRef, Pod, PodFilter, Result, WatchStream,
    Workload, WorkloadFilter,
};
use restart_manager::build_with_reads;

use super::*;

/// A handle on the simulated cluster that counts the calls made through it: the calls a
/// client-side budget would be spent on.
#[derive(Clone)]
struct Budget {
    sim: SimCluster,
    calls: Arc<AtomicUsize>,
}

impl Budget {
    fn new(sim: &SimCluster) -> Self {
        Budget {
            sim: sim.clone(),
            calls: Arc::default(),
        }
    }

    fn spent(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn take(&self) -> &SimCluster {
        self.calls.fetch_add(1, Ordering::SeqCst);
        &self.sim
    }
}

#[async_trait]
impl ClusterApi for Budget {
    async fn get_node(&self, name: &str) -> Result<Node> {
        self.take().get_node(name).await
    }
    async fn list_nodes(&self) -> Result<Vec<Node>> {
        self.take().list_nodes().await
    }
    async fn watch_nodes(&self) -> Result<WatchStream<Node>> {
        self.sim.watch_nodes().await
    }
    async fn patch_node(&self, name: &str, patch: &NodePatch) -> Result<Node> {
        self.take().patch_node(name, patch).await
    }
    async fn list_pods(&self, filter: &PodFilter) -> Result<Vec<Pod>> {
        self.take().list_pods(filter).await
    }
    async fn watch_pods(&self, filter: &PodFilter) -> Result<WatchStream<Pod>> {
        self.sim.watch_pods(filter).await
    }
    async fn evict_pod(
        &self,
        namespace: &str,
        name: &str,
        options: &EvictOptions,
    ) -> Result<EvictionOutcome> {
        self.take().evict_pod(namespace, name, options).await
    }
    async fn list_disruption_budgets(&self) -> Result<Vec<DisruptionBudget>> {
        self.take().list_disruption_budgets().await
    }
    async fn get_lease(&self, namespace: &str, name: &str) -> Result<Lease> {
        self.take().get_lease(namespace, name).await
    }
    async fn get_secret(&self, namespace: &str, name: &str) -> Result<cluster_api::Secret> {
        self.take().get_secret(namespace, name).await
    }
    async fn create_secret(&self, secret: &cluster_api::Secret) -> Result<cluster_api::Secret> {
        self.take().create_secret(secret).await
    }
    async fn list_leases(&self, namespace: &str, selector: &LabelSelector) -> Result<Vec<Lease>> {
        self.take().list_leases(namespace, selector).await
    }
    async fn watch_leases(
        &self,
        namespace: &str,
        selector: &LabelSelector,
    ) -> Result<WatchStream<Lease>> {
        self.sim.watch_leases(namespace, selector).await
    }
    async fn create_lease(&self, lease: &Lease) -> Result<Lease> {
        self.take().create_lease(lease).await
    }
    async fn replace_lease(&self, lease: &Lease) -> Result<Lease> {
        self.take().replace_lease(lease).await
    }
    async fn delete_lease(
        &self,
        namespace: &str,
        name: &str,
        resource_version: Option<&str>,
    ) -> Result<()> {
        self.take()
            .delete_lease(namespace, name, resource_version)
            .await
    }
    async fn get_workload(&self, workload: &WorkloadRef) -> Result<Workload> {
        self.take().get_workload(workload).await
    }
    async fn list_workloads(&self, filter: &WorkloadFilter) -> Result<Vec<Workload>> {
        self.take().list_workloads(filter).await
    }
    async fn watch_workloads(&self, filter: &WorkloadFilter) -> Result<WatchStream<Workload>> {
        self.sim.watch_workloads(filter).await
    }
    async fn patch_template_annotations(
        &self,
        workload: &WorkloadRef,
        annotations: &BTreeMap<String, Option<String>>,
    ) -> Result<Workload> {
        self.take()
            .patch_template_annotations(workload, annotations)
            .await
    }
    async fn watch_config(
        &self,
        namespace: &str,
        kind: ConfigKind,
    ) -> Result<WatchStream<ConfigObject>> {
        self.sim.watch_config(namespace, kind).await
    }
    async fn record_event(&self, event: &Event) -> Result<()> {
        self.take().record_event(event).await
    }
    async fn list_events(&self, regarding: &ObjectRef) -> Result<Vec<Event>> {
        self.take().list_events(regarding).await
    }
}

/// The probe's attack: one user floods dry runs (and plans and history) while another
/// restarts. Every one of the flood's cluster reads goes on the callers' budget, none on the
/// one lock writes and the restart use; the user over their rate gets 429 naming the limit,
/// and the restart is served.
#[tokio::test(start_paused = true)]
async fn a_flood_of_dry_runs_spends_nothing_of_the_lock_writes_budget() {
    let sim = cluster();
    let shared = Budget::new(&sim);
    let reads = Budget::new(&sim);
    let mut config = settings(tokens());
    // Every request comes from one address here: only the per-user rate is in question.
    config.api_rate.per_second = 0;
    config.cluster_read_rate = restart_manager::ratelimit::Rate {
        per_second: 1,
        burst: 30,
    };
    let app = Arc::new(
        build_with_reads(
            Arc::new(shared.clone()),
            Arc::new(reads.clone()),
            Arc::new(sim.clone()),
            config,
        )
        .unwrap(),
    );
    let run = tokio::spawn({
        let app = app.clone();
        async move { app.run().await }
    });
    app.fleetlock.wait_ready().await;
    app.restarter.wait_ready().await;
    let s = Server {
        addr: "127.0.0.1:1".parse().unwrap(),
        sim: sim.clone(),
        app,
        run,
    };

    let before = shared.spent();
    let mut answered = 0;
    let mut refused = None;
    for i in 0..40 {
        let (method, path) = match i % 3 {
            0 => (
                "POST",
                "/api/v1/service/Deployment/shop/web/restart?dryRun=true",
            ),
            1 => ("GET", "/api/v1/fleet/nodes/n1/plan"),
            _ => ("GET", "/api/v1/service/Deployment/shop/web/history"),
        };
        let (status, body) = call(&s, method, path, Some(ALICE), "").await;
        match status {
            200 => answered += 1,
            429 => {
                refused.get_or_insert(body);
            }
            other => panic!("{method} {path}: {other} {body}"),
        }
    }
    assert_eq!(answered, 30, "the burst is served");
    assert!(reads.spent() >= 30, "the flood read on the callers' budget");
    assert_eq!(
        shared.spent(),
        before,
        "the flood spent nothing of the budget lock writes use"
    );
    let refused = refused.expect("past the burst, 429");
    assert_eq!(refused["kind"], "too_many_requests");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains("alice") && message.contains("--cluster-read-rate"),
        "{message}"
    );
    let (status, head, _) = s
        .send(&request(
            "POST",
            "/api/v1/service/Deployment/shop/web/restart?dryRun=true",
            &[&format!("authorization: Bearer {ALICE}")],
            "",
        ))
        .await;
    assert_eq!(status, 429);
    assert!(head.to_lowercase().contains("retry-after: 1"), "{head}");

    // Each user has their own allowance: bob's restart (and his dry run) are served while
    // alice waits, and the restart's writes go on the shared budget.
    let (status, body) = call(
        &s,
        "POST",
        "/api/v1/service/Deployment/shop/web/restart?dryRun=true",
        Some(BOB),
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &s,
        "POST",
        "/api/v1/service/Deployment/shop/web/restart",
        Some(BOB),
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["lock"]["holder"], "bob");
    assert!(
        shared.spent() > before,
        "the restart wrote on its own budget"
    );
}

/// A dry run shows the lock, the rollout, the pods with their nodes and readiness; a plan
/// the node's pods. Each needs the rights that see those elsewhere, not only the restart
/// right or the fleet's.
#[tokio::test(start_paused = true)]
async fn a_dry_run_needs_the_rights_to_see_what_it_shows() {
    // bob may restart shop/web (the allowlist lets everyone) but is no viewer.
    let mut auth = tokens();
    auth.viewers = vec!["group:sre".into()];
    let s = serve(&cluster(), settings(auth)).await;
    let dry_run = "/api/v1/service/Deployment/shop/web/restart?dryRun=true";
    let (status, body) = call(&s, "POST", dry_run, Some(BOB), "").await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("not a viewer"),
        "{body}"
    );
    let (status, plan) = call(&s, "POST", dry_run, Some(ALICE), "").await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["pods"].as_array().unwrap().len(), 2);
    // The restart itself still needs only the restart right.
    let (status, body) = call(
        &s,
        "POST",
        "/api/v1/service/Deployment/shop/web/restart",
        Some(BOB),
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// `/metrics` names the allowlisted workloads: on a fresh install it needs a caller who may
/// see them; `--metrics-open` opens it again.
#[tokio::test(start_paused = true)]
async fn metrics_need_a_token_unless_opened() {
    let mut auth = tokens();
    auth.viewers = vec!["group:sre".into()];
    let s = serve(&cluster(), settings(auth.clone())).await;
    let (status, _, body) = s.send(&request("GET", "/metrics", &[], "")).await;
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("shop"), "{body}");
    let bob = format!("authorization: Bearer {BOB}");
    let (status, _, body) = s.send(&request("GET", "/metrics", &[&bob], "")).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("may not read the metrics"), "{body}");
    let alice = format!("authorization: Bearer {ALICE}");
    let (status, _, body) = s.send(&request("GET", "/metrics", &[&alice], "")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#"namespace="shop""#), "{body}");

    let mut open = settings(auth);
    open.metrics_open = true;
    let s = serve(&cluster(), open).await;
    let (status, _, body) = s.send(&request("GET", "/metrics", &[], "")).await;
    assert_eq!(status, 200, "{body}");
}
