//! [`KubeCluster`]: connecting, its options, and the limiter and timeout every call passes.
//! The operations themselves are in `api.rs`, `nodes.rs` and `reviews.rs`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cluster_api::{Error, EventSeries, Result};
use k8s_openapi::api::coordination::v1 as coordination;
use k8s_openapi::api::core::v1 as core;
use kube::Client;
use kube::api::Api;

use crate::errors;
use crate::limiter::RateLimiter;
use crate::throttle::RetryAfterLayer;

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

/// Honours the wait a throttling answer asked for on `limiter`, and hands the error on.
pub(crate) fn throttled(limiter: &RateLimiter, error: Error) -> Error {
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

/// A Kubernetes cluster behind the [`ClusterApi`](cluster_api::ClusterApi) boundary. Cheap to clone.
#[derive(Clone)]
pub struct KubeCluster {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) client: Client,
    pub(crate) url: Option<String>,
    pub(crate) options: KubeOptions,
    /// This handle's budget ([`KubeOptions::qps`], or one of its own:
    /// [`KubeCluster::with_own_budget`]).
    pub(crate) limiter: RateLimiter,
    /// The separate budget of access reviews ([`KubeOptions::review_qps`]), shared by every
    /// handle on the client.
    pub(crate) reviews: Arc<RateLimiter>,
    /// Open event series: the namespace and name of the Event each one is counted on.
    pub(crate) series: Arc<parking_lot::Mutex<EventSeries<(String, String)>>>,
}

// === impl KubeCluster ===

impl KubeCluster {
    /// Wraps a client (tests pass one over a fake API server).
    pub fn new(client: Client, options: KubeOptions) -> Self {
        KubeCluster {
            inner: Arc::new(Inner {
                limiter: RateLimiter::new(options.qps, options.burst),
                reviews: Arc::new(RateLimiter::new(options.review_qps, options.review_burst)),
                client,
                url: None,
                options,
                series: Arc::default(),
            }),
        }
    }

    /// A handle on the same client whose calls pass a token bucket of their own (`qps` on
    /// average, `burst` at once) instead of the shared one: for leader renewals, which must
    /// not queue behind a burst of other calls until their renew deadline has passed.
    pub fn with_own_budget(&self, qps: f64, burst: u32) -> Self {
        let inner = &self.inner;
        KubeCluster {
            inner: Arc::new(Inner {
                client: inner.client.clone(),
                url: inner.url.clone(),
                options: inner.options.clone(),
                limiter: RateLimiter::new(qps, burst),
                reviews: inner.reviews.clone(),
                series: inner.series.clone(),
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

    /// One request through the limiter and the timeout, which covers the wait for a turn as
    /// well as the answer. A throttling answer holds every later request for as long as the
    /// API server asked.
    pub(crate) async fn call<T>(
        &self,
        request: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T> {
        let deadline = tokio::time::Instant::now() + self.inner.options.timeout;
        self.turn(&self.inner.limiter, deadline).await?;
        self.answer(&self.inner.limiter, deadline, request).await
    }

    /// Waits for a turn under `limiter`, or says at once that none comes by `deadline`.
    pub(crate) async fn turn(
        &self,
        limiter: &RateLimiter,
        deadline: tokio::time::Instant,
    ) -> Result<()> {
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
    pub(crate) async fn answer<T>(
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

    pub(crate) fn pods(&self, namespace: Option<&str>) -> Api<core::Pod> {
        match namespace {
            Some(ns) => Api::namespaced(self.client(), ns),
            None => Api::all(self.client()),
        }
    }

    pub(crate) fn leases(&self, namespace: &str) -> Api<coordination::Lease> {
        Api::namespaced(self.client(), namespace)
    }

    pub(crate) fn secrets(&self, namespace: &str) -> Api<core::Secret> {
        Api::namespaced(self.client(), namespace)
    }

    pub(crate) fn events(&self, namespace: &str) -> Api<core::Event> {
        Api::namespaced(self.client(), namespace)
    }
}
