//! [`cluster_api::ClusterApi`] over a real Kubernetes API server, with kube-rs.
//!
//! [`KubeCluster`] performs every operation the cores need:
//!
//! | operation | request |
//! |---|---|
//! | `list_nodes`, `watch_nodes` | one shared Node watch, cached as trimmed `cluster_api::Node`s |
//! | `get_node` | `GET /api/v1/nodes/{name}` (fresh, for compare-and-swap) |
//! | `patch_node` | JSON merge patch; `metadata.resourceVersion` in the patch makes it conditional |
//! | `list_pods`, `watch_pods` | `/api/v1/pods?fieldSelector=spec.nodeName=...` |
//! | `evict_pod` | `POST /api/v1/namespaces/{ns}/pods/{name}/eviction` (`policy/v1`) |
//! | leases | `coordination.k8s.io/v1`, replace with `resourceVersion` (409 when stale) |
//! | workloads | `apps/v1` get, list, watch; merge patch of the pod template's annotations |
//! | events | `v1` Events (what `kubectl describe` shows), listed by `involvedObject` |
//!
//! API errors map onto [`cluster_api::Error`] by status (see [`errors`]); every call but the
//! watches goes through a client-side token bucket and a timeout ([`KubeOptions`]).
//! [`required_permissions`] lists exactly the RBAC the adapter needs;
//! [`KubeCluster::missing_permissions`] checks them at start-up.
//!
//! The Kubernetes API version of the k8s-openapi types is chosen by the binaries.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use cluster_api::{
    CacheHealth, ClusterApi, Error, Event, EventSeries, EvictOptions, EvictionOutcome,
    LabelSelector, Lease, Node, NodePatch, ObjectRef, Pod, PodFilter, Result, WatchEvent,
    WatchStream, Workload, WorkloadFilter, WorkloadKind, WorkloadRef, follow,
};
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec, SubjectAccessReview,
    SubjectAccessReviewSpec,
};
use k8s_openapi::api::coordination::v1 as coordination;
use k8s_openapi::api::core::v1 as core;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::watcher;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::UnboundedReceiverStream;

pub mod convert;
pub mod errors;
mod limiter;
pub mod rbac;
pub mod slim;
pub mod throttle;

pub use limiter::{RateLimiter, TooLate};
pub use rbac::{Permission, required_permissions};
pub use throttle::RetryAfterLayer;

/// Client-side limits.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeOptions {
    /// Requests per second on average (client-go's QPS).
    pub qps: f64,
    /// Requests allowed at once after a quiet spell.
    pub burst: u32,
    /// How long one request may take before it counts as unavailable, including its wait
    /// for a turn under `qps`.
    pub timeout: Duration,
    /// TokenReviews and SubjectAccessReviews made for the server's own callers, per second on
    /// average. They have a budget of their own, so that callers presenting made-up tokens
    /// cannot use up the turns that evictions and lock writes need.
    pub review_qps: f64,
    /// Reviews allowed at once after a quiet spell.
    pub review_burst: u32,
    /// How long a review may wait for a turn; past it the review is refused at once
    /// ([`Error::TooManyRequests`]) rather than queued behind a flood.
    pub review_wait: Duration,
    /// Keep only Node labels and annotations whose keys start with one of these; `None`
    /// keeps them all. A node carries a dozen labels and annotations nobody here reads;
    /// dropping them halves what a 5,000-node cache costs.
    pub node_metadata_prefixes: Option<Vec<String>>,
}

impl Default for KubeOptions {
    fn default() -> Self {
        KubeOptions {
            qps: 50.0,
            burst: 100,
            timeout: Duration::from_secs(30),
            review_qps: 20.0,
            review_burst: 40,
            review_wait: Duration::from_secs(1),
            node_metadata_prefixes: None,
        }
    }
}

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The kubeconfig could not be read or used.
    #[error("cannot use the kubeconfig {path}: {source}")]
    Kubeconfig {
        /// Which file.
        path: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Neither a kubeconfig nor an in-cluster service account was found.
    #[error(
        "no cluster configuration: not running in a cluster and no kubeconfig found ({0}); pass --kubeconfig"
    )]
    Infer(String),
    /// The client could not be built from the configuration.
    #[error("cannot build a Kubernetes client: {0}")]
    Client(String),
}

/// Something to do to one namespaced object, for [`KubeCluster::subject_may`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access<'a> {
    /// The verb, e.g. `restart`.
    pub verb: &'a str,
    /// API group, e.g. `apps`.
    pub group: &'a str,
    /// Resource, e.g. `deployments`.
    pub resource: &'a str,
    /// Namespace.
    pub namespace: &'a str,
    /// Object name.
    pub name: &'a str,
}

/// A user as a TokenReview describes them, for [`KubeCluster::subject_may`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    /// The user name.
    pub name: String,
    /// A unique id; empty when the authenticator gives none.
    pub uid: String,
    /// Groups.
    pub groups: Vec<String>,
    /// What else the authenticator knows (a service account token's pod and node, scopes).
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Honours the wait a throttling answer asked for on `limiter`, and hands the error on.
fn throttled(limiter: &RateLimiter, error: Error) -> Error {
    if let Error::TooManyRequests {
        retry_after: Some(wait),
        ..
    } = &error
    {
        tracing::info!(
            wait_seconds = wait.as_secs(),
            "the Kubernetes API asked us to slow down"
        );
        limiter.hold_until(tokio::time::Instant::now() + *wait);
    }
    error
}

/// A Kubernetes cluster behind the [`ClusterApi`] boundary. Cheap to clone.
#[derive(Clone)]
pub struct KubeCluster {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    url: Option<String>,
    options: KubeOptions,
    limiter: RateLimiter,
    /// The separate budget of access reviews ([`KubeOptions::review_qps`]).
    reviews: RateLimiter,
    nodes: NodeCache,
    /// Open event series: the namespace and name of the Event each one is counted on.
    series: std::sync::Mutex<EventSeries<(String, String)>>,
}

/// The shared Node watch: trimmed Nodes, and a broadcast of their changes.
struct NodeCache {
    started: AtomicBool,
    state: RwLock<HashMap<String, Node>>,
    /// Changes; a re-list is only announced (`Restarted` with no Nodes): subscribers read
    /// the cache, so the channel never holds a copy of the whole fleet. A failure of the
    /// watch is passed on, so that every subscriber knows its view may have gaps.
    changes: broadcast::Sender<Result<WatchEvent<Node>>>,
    health: CacheHealth,
}

// === impl KubeCluster ===

impl KubeCluster {
    /// Wraps a client (tests pass one over a fake API server).
    pub fn new(client: Client, options: KubeOptions) -> Self {
        KubeCluster {
            inner: Arc::new(Inner {
                limiter: RateLimiter::new(options.qps, options.burst),
                reviews: RateLimiter::new(options.review_qps, options.review_burst),
                client,
                url: None,
                options,
                nodes: NodeCache {
                    started: AtomicBool::new(false),
                    state: RwLock::default(),
                    changes: broadcast::channel(4096).0,
                    health: CacheHealth::new("node"),
                },
                series: std::sync::Mutex::default(),
            }),
        }
    }

    /// Connects with a kubeconfig file, or else as kubectl would: `KUBECONFIG`,
    /// `~/.kube/config`, then the in-cluster service account.
    pub async fn connect(
        kubeconfig: Option<&Path>,
        context: Option<&str>,
        options: KubeOptions,
    ) -> Result<Self, ConnectError> {
        let mut config = match kubeconfig {
            Some(path) => {
                let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                    ConnectError::Kubeconfig {
                        path: path.display().to_string(),
                        source: Box::new(e),
                    }
                })?;
                let opts = kube::config::KubeConfigOptions {
                    context: context.map(str::to_string),
                    ..Default::default()
                };
                kube::Config::from_custom_kubeconfig(kc, &opts)
                    .await
                    .map_err(|e| ConnectError::Kubeconfig {
                        path: path.display().to_string(),
                        source: Box::new(e),
                    })?
            }
            None if context.is_some() => {
                let opts = kube::config::KubeConfigOptions {
                    context: context.map(str::to_string),
                    ..Default::default()
                };
                kube::Config::from_kubeconfig(&opts)
                    .await
                    .map_err(|e| ConnectError::Infer(e.to_string()))?
            }
            None => kube::Config::infer()
                .await
                .map_err(|e| ConnectError::Infer(e.to_string()))?,
        };
        config.connect_timeout = Some(options.timeout);
        config.write_timeout = Some(options.timeout);
        // kube-client would retry every 429 by itself, up to 15 times with waits growing to
        // minutes: a disruption budget's refusal would come back as a timeout, and the
        // server's requests to wait would be spent inside one call. The cores decide when to
        // try again; the adapter honours Retry-After across all calls (see `call`).
        config.default_retry = false;
        let url = config.cluster_url.to_string();
        let client = kube::client::ClientBuilder::try_from(config)
            .map_err(|e| ConnectError::Client(e.to_string()))?
            .with_layer(&RetryAfterLayer)
            .build();
        let mut cluster = Self::new(client, options);
        if let Some(inner) = Arc::get_mut(&mut cluster.inner) {
            inner.url = Some(url);
        }
        Ok(cluster)
    }

    /// The API server's address, when known.
    pub fn url(&self) -> Option<&str> {
        self.inner.url.as_deref()
    }

    /// The underlying client.
    pub fn client(&self) -> Client {
        self.inner.client.clone()
    }

    /// The API server's version, proving it can be reached.
    pub async fn server_version(&self) -> Result<String> {
        let info = self.call(self.inner.client.apiserver_version()).await?;
        Ok(info.git_version)
    }

    /// Which of `wanted` this client's identity is not allowed, asked with
    /// SelfSubjectAccessReviews.
    pub async fn missing_permissions(&self, wanted: &[Permission]) -> Result<Vec<Permission>> {
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client());
        let mut missing = Vec::new();
        for p in wanted {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(attributes(
                        p.verb,
                        p.group,
                        p.resource,
                        p.namespace.clone(),
                        p.name.clone(),
                    )),
                    ..Default::default()
                },
                ..Default::default()
            };
            let answer = self
                .call(api.create(&PostParams::default(), &review))
                .await?;
            if !answer.status.is_some_and(|s| s.allowed) {
                missing.push(p.clone());
            }
        }
        Ok(missing)
    }

    /// Who a bearer token belongs to (TokenReview): `None` if the API server does not
    /// recognise it, or recognises it only for other audiences. With `audiences`, the token
    /// must have been issued for at least one of them (`kubectl create token --audience`);
    /// with none, the API server's own audiences count. Reviews go through their own
    /// budget ([`KubeOptions::review_qps`]).
    pub async fn review_token(&self, token: &str, audiences: &[String]) -> Result<Option<User>> {
        let api: Api<TokenReview> = Api::all(self.client());
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: (!audiences.is_empty()).then(|| audiences.to_vec()),
            },
            ..Default::default()
        };
        let answer = self
            .review(api.create(&PostParams::default(), &review))
            .await?;
        let Some(status) = answer.status.filter(|s| s.authenticated == Some(true)) else {
            return Ok(None);
        };
        // The API server answers with the audiences the token is good for among those asked;
        // an authenticator that ignores audiences must not let a token through for ours.
        if !audiences.is_empty()
            && !status
                .audiences
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|a| audiences.contains(a))
        {
            return Ok(None);
        }
        let user = status.user.unwrap_or_default();
        Ok(Some(User {
            name: user.username.unwrap_or_default(),
            uid: user.uid.unwrap_or_default(),
            groups: user.groups.unwrap_or_default(),
            extra: user.extra.unwrap_or_default().into_iter().collect(),
        }))
    }

    /// Whether a user may do something to one object (SubjectAccessReview), e.g. the custom
    /// verb `restart` on `deployments.apps` `web` in `shop`.
    ///
    /// The review names the user as the TokenReview described them (name, uid, groups and
    /// extra), so that an authoriser keying on uid or on extra (scopes, a node's name) judges
    /// the same person the API server would. It goes through the reviews' own budget.
    pub async fn subject_may(&self, user: &User, access: &Access<'_>) -> Result<bool> {
        let api: Api<SubjectAccessReview> = Api::all(self.client());
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.name.clone()),
                uid: (!user.uid.is_empty()).then(|| user.uid.clone()),
                groups: Some(user.groups.clone()),
                extra: (!user.extra.is_empty()).then(|| {
                    user.extra
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                }),
                resource_attributes: Some(attributes(
                    access.verb,
                    access.group,
                    access.resource,
                    Some(access.namespace.to_string()),
                    Some(access.name.to_string()),
                )),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = self
            .review(api.create(&PostParams::default(), &review))
            .await?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }

    /// One request through the limiter and the timeout, which covers the wait for a turn as
    /// well as the answer. A throttling answer holds every later request for as long as the
    /// API server asked.
    async fn call<T>(&self, request: impl Future<Output = Result<T, kube::Error>>) -> Result<T> {
        let deadline = tokio::time::Instant::now() + self.inner.options.timeout;
        self.turn(&self.inner.limiter, deadline).await?;
        self.answer(&self.inner.limiter, deadline, request).await
    }

    /// An access review: as [`call`](Self::call), but on the reviews' own budget, and
    /// refused at once when no turn comes within [`KubeOptions::review_wait`].
    async fn review<T>(&self, request: impl Future<Output = Result<T, kube::Error>>) -> Result<T> {
        let now = tokio::time::Instant::now();
        let limiter = &self.inner.reviews;
        if let Err(late) = limiter
            .acquire_before(Some(now + self.inner.options.review_wait))
            .await
        {
            return Err(Error::TooManyRequests {
                message: "too many access reviews at once; try again shortly".into(),
                retry_after: Some(late.turn.duration_since(now).max(Duration::from_secs(1))),
            });
        }
        self.answer(limiter, now + self.inner.options.timeout, request)
            .await
    }

    /// Waits for a turn under `limiter`, or says at once that none comes by `deadline`.
    async fn turn(&self, limiter: &RateLimiter, deadline: tokio::time::Instant) -> Result<()> {
        limiter.acquire_before(Some(deadline)).await.map_err(|_| {
            Error::unavailable(format!(
                "the client-side rate limit (--kube-qps {}) or the API server's Retry-After \
                 leaves no turn within {}s",
                self.inner.options.qps,
                self.inner.options.timeout.as_secs()
            ))
        })
    }

    /// A request's answer by `deadline`; a throttling answer holds `limiter`.
    async fn answer<T>(
        &self,
        limiter: &RateLimiter,
        deadline: tokio::time::Instant,
        request: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout_at(deadline, request).await {
            Ok(result) => result.map_err(|e| throttled(limiter, errors::map(e))),
            Err(_) => Err(Error::unavailable(format!(
                "the Kubernetes API did not answer within {}s",
                self.inner.options.timeout.as_secs()
            ))),
        }
    }

    /// A Node as the adapter hands it out: with only the wanted labels and annotations.
    fn node(&self, n: slim::SlimNode) -> Node {
        trim_node(
            convert::node(n),
            self.inner.options.node_metadata_prefixes.as_deref(),
        )
    }

    fn pods(&self, namespace: Option<&str>) -> Api<core::Pod> {
        match namespace {
            Some(ns) => Api::namespaced(self.client(), ns),
            None => Api::all(self.client()),
        }
    }

    fn leases(&self, namespace: &str) -> Api<coordination::Lease> {
        Api::namespaced(self.client(), namespace)
    }

    fn events(&self, namespace: &str) -> Api<core::Event> {
        Api::namespaced(self.client(), namespace)
    }

    /// Starts the shared Node watch once: it lists, watches, and after a failure lists
    /// again (with [`follow`]'s backoff), keeping the cache and its health current.
    fn start_nodes(&self) {
        if self.inner.nodes.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let nodes = &inner.nodes;
            let prefixes = inner.options.node_metadata_prefixes.clone();
            let trim = |n: Node| trim_node(n, prefixes.as_deref());
            let open = || {
                let api: Api<slim::SlimNode> = Api::all(inner.client.clone());
                // Small pages: each page is decoded whole before its Nodes are converted.
                let config = watcher::Config::default().page_size(100);
                std::future::ready(Ok(boxed(watch_events(api, config, convert::node))))
            };
            follow("node", open, |event| {
                let event = match event {
                    Ok(WatchEvent::Restarted(all)) => {
                        *nodes.state.write().unwrap_or_else(|e| e.into_inner()) = all
                            .into_iter()
                            .map(|n| {
                                let n = trim(n);
                                (n.name.clone(), n)
                            })
                            .collect();
                        nodes.health.restarted();
                        Ok(WatchEvent::Restarted(Vec::new()))
                    }
                    Ok(WatchEvent::Applied(n)) => {
                        let n = trim(n);
                        nodes
                            .state
                            .write()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(n.name.clone(), n.clone());
                        Ok(WatchEvent::Applied(n))
                    }
                    Ok(WatchEvent::Deleted(n)) => {
                        let n = trim(n);
                        nodes
                            .state
                            .write()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&n.name);
                        Ok(WatchEvent::Deleted(n))
                    }
                    Err(e) => {
                        nodes.health.failed(e);
                        Err(e.clone())
                    }
                };
                let _ = nodes.changes.send(event);
            })
            .await;
        });
    }

    /// Every cached Node, once the cache is current (or an error after the timeout: while
    /// the Node watch is failing, the cache may miss changes).
    async fn cached_nodes(&self) -> Result<Vec<Node>> {
        self.start_nodes();
        let nodes = &self.inner.nodes;
        tokio::time::timeout(self.inner.options.timeout, nodes.health.wait_healthy())
            .await
            .map_err(|_| {
                Error::unavailable("the node watch is not current; is the API server reachable?")
            })?;
        Ok(nodes
            .state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect())
    }
}

fn trim_node(mut node: Node, prefixes: Option<&[String]>) -> Node {
    if let Some(prefixes) = prefixes {
        let keep = |k: &String| prefixes.iter().any(|p| k.starts_with(p.as_str()));
        node.labels.retain(|k, _| keep(k));
        node.annotations.retain(|k, _| keep(k));
    }
    node
}

fn attributes(
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<String>,
    name: Option<String>,
) -> ResourceAttributes {
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r.to_string(), Some(s.to_string())),
        None => (resource.to_string(), None),
    };
    ResourceAttributes {
        verb: Some(verb.to_string()),
        group: Some(group.to_string()),
        resource: Some(resource),
        subresource,
        namespace,
        name,
        ..Default::default()
    }
}

/// A watch as a stream of `cluster-api` events: the initial list becomes one `Restarted`.
/// The first failure is passed on as an `Err` and ends the stream: the consumer (through
/// [`follow`]) knows its view may have gaps, and watches again, which lists afresh.
fn watch_events<K, T>(
    api: Api<K>,
    config: watcher::Config,
    convert: fn(K) -> T,
) -> impl Stream<Item = Result<WatchEvent<T>>> + Send
where
    K: kube::Resource + Clone + DeserializeOwned + fmt::Debug + Send + 'static,
    T: Send + 'static,
{
    let events = watcher(api, config).boxed();
    futures::stream::unfold(
        (Some(events), Vec::new()),
        move |(events, mut buffer)| async move {
            let mut events = events?;
            loop {
                let next = match events.next().await? {
                    Ok(watcher::Event::Init) => {
                        buffer.clear();
                        continue;
                    }
                    Ok(watcher::Event::InitApply(o)) => {
                        buffer.push(convert(o));
                        continue;
                    }
                    Ok(watcher::Event::InitDone) => {
                        WatchEvent::Restarted(std::mem::take(&mut buffer))
                    }
                    Ok(watcher::Event::Apply(o)) => WatchEvent::Applied(convert(o)),
                    Ok(watcher::Event::Delete(o)) => WatchEvent::Deleted(convert(o)),
                    Err(e) => return Some((Err(errors::watch(e)), (None, buffer))),
                };
                return Some((Ok(next), (Some(events), buffer)));
            }
        },
    )
}

fn boxed<T: Send + 'static>(
    s: impl Stream<Item = Result<WatchEvent<T>>> + Send + 'static,
) -> WatchStream<T> {
    Box::pin(s)
}

fn pod_params(filter: &PodFilter) -> (Option<String>, Option<String>) {
    let fields = filter.node.as_ref().map(|n| format!("spec.nodeName={n}"));
    let labels = filter
        .labels
        .as_ref()
        .filter(|s| !s.is_empty())
        .map(|s| s.to_string());
    (fields, labels)
}

fn list_params(fields: Option<&str>, labels: Option<&str>) -> ListParams {
    let mut lp = ListParams::default();
    if let Some(f) = fields {
        lp = lp.fields(f);
    }
    if let Some(l) = labels {
        lp = lp.labels(l);
    }
    lp
}

fn watch_config(fields: Option<&str>, labels: Option<&str>) -> watcher::Config {
    let mut wc = watcher::Config::default();
    if let Some(f) = fields {
        wc = wc.fields(f);
    }
    if let Some(l) = labels {
        wc = wc.labels(l);
    }
    wc
}

/// `{"k": "v"}` / `{"k": null}` for a merge patch.
fn merge_map(changes: &BTreeMap<String, Option<String>>) -> Value {
    Value::Object(
        changes
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_ref().map_or(Value::Null, |v| Value::String(v.clone())),
                )
            })
            .collect(),
    )
}

macro_rules! with_workload_api {
    ($self:expr, $kind:expr, $namespace:expr, |$api:ident, $convert:ident| $body:expr) => {
        match $kind {
            WorkloadKind::Deployment => {
                let $api: Api<Deployment> = workload_api($self.client(), $namespace);
                let $convert = convert::deployment;
                $body
            }
            WorkloadKind::StatefulSet => {
                let $api: Api<StatefulSet> = workload_api($self.client(), $namespace);
                let $convert = convert::statefulset;
                $body
            }
            WorkloadKind::DaemonSet => {
                let $api: Api<DaemonSet> = workload_api($self.client(), $namespace);
                let $convert = convert::daemonset;
                $body
            }
        }
    };
}

fn workload_api<K>(client: Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    }
}

#[async_trait]
impl ClusterApi for KubeCluster {
    async fn get_node(&self, name: &str) -> Result<Node> {
        let api: Api<slim::SlimNode> = Api::all(self.client());
        Ok(self.node(self.call(api.get(name)).await?))
    }

    async fn list_nodes(&self) -> Result<Vec<Node>> {
        self.cached_nodes().await
    }

    async fn watch_nodes(&self) -> Result<WatchStream<Node>> {
        // Subscribe first, so no change falls between the snapshot and the stream.
        let mut changes = self.inner.nodes.changes.subscribe();
        let snapshot = self.cached_nodes().await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(Ok(WatchEvent::Restarted(snapshot)));
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let event = match changes.recv().await {
                    Ok(Ok(WatchEvent::Restarted(_)))
                    | Err(broadcast::error::RecvError::Lagged(_)) => {
                        match this.cached_nodes().await {
                            Ok(all) => Ok(WatchEvent::Restarted(all)),
                            Err(e) => Err(e),
                        }
                    }
                    Ok(event) => event,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let failed = event.is_err();
                // After a failure this stream ends: its consumer watches again.
                if tx.send(event).is_err() || failed {
                    return;
                }
            }
        });
        Ok(Box::pin(UnboundedReceiverStream::new(rx)))
    }

    async fn patch_node(&self, name: &str, patch: &NodePatch) -> Result<Node> {
        let mut metadata = serde_json::Map::new();
        if let Some(rv) = &patch.resource_version {
            metadata.insert("resourceVersion".into(), json!(rv));
        }
        if !patch.annotations.is_empty() {
            metadata.insert("annotations".into(), merge_map(&patch.annotations));
        }
        if !patch.labels.is_empty() {
            metadata.insert("labels".into(), merge_map(&patch.labels));
        }
        let mut body = json!({ "metadata": metadata });
        if let Some(u) = patch.unschedulable {
            body["spec"] = json!({ "unschedulable": u });
        }
        let api: Api<slim::SlimNode> = Api::all(self.client());
        let written = self
            .call(api.patch(name, &PatchParams::default(), &Patch::Merge(&body)))
            .await?;
        Ok(self.node(written))
    }

    async fn list_pods(&self, filter: &PodFilter) -> Result<Vec<Pod>> {
        let (fields, labels) = pod_params(filter);
        let lp = list_params(fields.as_deref(), labels.as_deref());
        let list = self
            .call(self.pods(filter.namespace.as_deref()).list(&lp))
            .await?;
        Ok(list.items.into_iter().map(convert::pod).collect())
    }

    async fn watch_pods(&self, filter: &PodFilter) -> Result<WatchStream<Pod>> {
        let (fields, labels) = pod_params(filter);
        let wc = watch_config(fields.as_deref(), labels.as_deref());
        Ok(boxed(watch_events(
            self.pods(filter.namespace.as_deref()),
            wc,
            convert::pod,
        )))
    }

    async fn evict_pod(
        &self,
        namespace: &str,
        name: &str,
        options: &EvictOptions,
    ) -> Result<EvictionOutcome> {
        // Written by hand: kube's `Api::evict` sends `delete_options` in snake case, which the
        // API server ignores, so a grace-period override would be silently dropped.
        let mut body = json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        });
        if let Some(grace) = options.grace_period_seconds {
            body["deleteOptions"] = json!({"gracePeriodSeconds": grace.max(0)});
        }
        let request = http::Request::post(format!(
            "/api/v1/namespaces/{namespace}/pods/{name}/eviction"
        ))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.to_string().into_bytes())
        .map_err(|e| Error::invalid(format!("cannot build the eviction request: {e}")))?;
        let deadline = tokio::time::Instant::now() + self.inner.options.timeout;
        self.turn(&self.inner.limiter, deadline).await?;
        let client = self.client();
        match tokio::time::timeout_at(deadline, client.request::<kube::core::Status>(request)).await
        {
            Ok(result) => errors::eviction(result).map_err(|e| throttled(&self.inner.limiter, e)),
            Err(_) => Err(Error::unavailable(
                "the eviction did not get an answer in time",
            )),
        }
    }

    async fn get_lease(&self, namespace: &str, name: &str) -> Result<Lease> {
        Ok(convert::lease(
            self.call(self.leases(namespace).get(name)).await?,
        ))
    }

    async fn list_leases(&self, namespace: &str, selector: &LabelSelector) -> Result<Vec<Lease>> {
        let labels = (!selector.is_empty()).then(|| selector.to_string());
        let lp = list_params(None, labels.as_deref());
        let list = self.call(self.leases(namespace).list(&lp)).await?;
        Ok(list.items.into_iter().map(convert::lease).collect())
    }

    async fn watch_leases(
        &self,
        namespace: &str,
        selector: &LabelSelector,
    ) -> Result<WatchStream<Lease>> {
        let labels = (!selector.is_empty()).then(|| selector.to_string());
        let wc = watch_config(None, labels.as_deref());
        Ok(boxed(watch_events(
            self.leases(namespace),
            wc,
            convert::lease,
        )))
    }

    async fn create_lease(&self, lease: &Lease) -> Result<Lease> {
        let mut object = convert::to_lease(lease);
        object.metadata.resource_version = None;
        let written = self
            .call(
                self.leases(&lease.namespace)
                    .create(&PostParams::default(), &object),
            )
            .await?;
        Ok(convert::lease(written))
    }

    async fn replace_lease(&self, lease: &Lease) -> Result<Lease> {
        if lease.resource_version.is_empty() {
            return Err(Error::invalid(format!(
                "leases.coordination.k8s.io \"{}\": a replace must carry the resourceVersion it was read at",
                lease.name
            )));
        }
        let object = convert::to_lease(lease);
        let written = self
            .call(self.leases(&lease.namespace).replace(
                &lease.name,
                &PostParams::default(),
                &object,
            ))
            .await?;
        Ok(convert::lease(written))
    }

    async fn delete_lease(
        &self,
        namespace: &str,
        name: &str,
        resource_version: Option<&str>,
    ) -> Result<()> {
        let dp = DeleteParams {
            preconditions: resource_version.map(|rv| Preconditions {
                resource_version: Some(rv.to_string()),
                uid: None,
            }),
            ..Default::default()
        };
        self.call(self.leases(namespace).delete(name, &dp)).await?;
        Ok(())
    }

    async fn get_workload(&self, w: &WorkloadRef) -> Result<Workload> {
        with_workload_api!(self, w.kind, Some(w.namespace.as_str()), |api, convert| {
            Ok(convert(self.call(api.get(&w.name)).await?))
        })
    }

    async fn list_workloads(&self, filter: &WorkloadFilter) -> Result<Vec<Workload>> {
        let fields = filter.name.as_ref().map(|n| format!("metadata.name={n}"));
        let lp = list_params(fields.as_deref(), None);
        with_workload_api!(
            self,
            filter.kind,
            filter.namespace.as_deref(),
            |api, convert| {
                Ok(self
                    .call(api.list(&lp))
                    .await?
                    .items
                    .into_iter()
                    .map(convert)
                    .collect())
            }
        )
    }

    async fn watch_workloads(&self, filter: &WorkloadFilter) -> Result<WatchStream<Workload>> {
        let fields = filter.name.as_ref().map(|n| format!("metadata.name={n}"));
        let wc = watch_config(fields.as_deref(), None);
        with_workload_api!(
            self,
            filter.kind,
            filter.namespace.as_deref(),
            |api, convert| Ok(boxed(watch_events(api, wc, convert)))
        )
    }

    async fn patch_template_annotations(
        &self,
        w: &WorkloadRef,
        annotations: &BTreeMap<String, Option<String>>,
    ) -> Result<Workload> {
        let body =
            json!({"spec": {"template": {"metadata": {"annotations": merge_map(annotations)}}}});
        with_workload_api!(self, w.kind, Some(w.namespace.as_str()), |api, convert| {
            Ok(convert(
                self.call(api.patch(&w.name, &PatchParams::default(), &Patch::Merge(&body)))
                    .await?,
            ))
        })
    }

    async fn record_event(&self, event: &Event) -> Result<()> {
        let now = jiff::Timestamp::now();
        let repeat = self
            .inner
            .series
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .repeat(event);
        if let Some(((namespace, name), count)) = repeat {
            let patch = convert::series_patch(count, event.time.unwrap_or(now));
            let patched = self
                .call(self.events(&namespace).patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                ))
                .await;
            match patched {
                Ok(_) => return Ok(()),
                // Expired (Events live an hour): start a new series below.
                Err(Error::NotFound { .. }) => self
                    .inner
                    .series
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .forget(event),
                Err(e) => return Err(e),
            }
        }
        let object = convert::to_event(event, now);
        let namespace = convert::event_namespace(&event.regarding);
        let created = self
            .call(
                self.events(&namespace)
                    .create(&PostParams::default(), &object),
            )
            .await?;
        if let Some(name) = created.metadata.name {
            self.inner
                .series
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .started(event, (namespace, name));
        }
        Ok(())
    }

    async fn list_events(&self, regarding: &ObjectRef) -> Result<Vec<Event>> {
        let fields = format!(
            "involvedObject.kind={},involvedObject.name={}",
            regarding.kind, regarding.name
        );
        let lp = list_params(Some(&fields), None);
        let list = self
            .call(self.events(&convert::event_namespace(regarding)).list(&lp))
            .await?;
        let mut events: Vec<Event> = list.items.into_iter().map(convert::event).collect();
        events.sort_by_key(|e| e.time);
        Ok(events)
    }
}
