//! The simulated cluster behind a Kubernetes API endpoint.
//!
//! [`ApiServer`] serves a [`SimCluster`]'s state over the Kubernetes REST API, over HTTPS with
//! a CA it makes at start (or plain HTTP), and writes a kubeconfig for it, so that kubectl,
//! kube-rs and the `restart-manager` binary talk to the simulation as to a real cluster. Both
//! views share one state: a write through the endpoint is a write the in-process `SimCluster`
//! sees, and the reverse; writes go through the same [`ClusterApi`](cluster_api::ClusterApi)
//! methods, so the simulation's fault injection and call counters apply to them.
//!
//! | path | what |
//! |---|---|
//! | `/version`, `/api`, `/apis`, `/api/v1`, `/apis/{group}/{version}` | discovery |
//! | `nodes` | get, list, watch, patch (merge, strategic merge, JSON patch) |
//! | `pods`, `pods/eviction` | get, list, watch, delete; evict through budgets |
//! | `leases` | get, list, watch, create, update (compare-and-swap), delete |
//! | `deployments`, `statefulsets`, `daemonsets` | get, list, watch, patch of the pod template |
//! | `poddisruptionbudgets` | get, list |
//! | `events` (core), `namespaces` | get, list, create, patch (series) / get, list, create, delete |
//! | `tokenreviews`, `subjectaccessreviews`, `selfsubjectaccessreviews` | create |
//! | `replicasets` | get, list (a Deployment's revisions) |
//! | `events.k8s.io/v1` `events` | get, list |
//! | `/sim/v1/...` | the simulation's fault injection and counters (administrator only) |
//!
//! Reads are printed as a `meta.k8s.io/v1` `Table` when asked (`kubectl get`). Lists take
//! label and field selectors and `limit`/`continue`; watches start from a
//! `resourceVersion` still in the change window (older: a `410 Gone` in the stream), send
//! bookmarks when asked, and end after `timeoutSeconds`.

mod bodies;
mod control;
mod creates;
mod discovery;
mod pb;
mod reads;
mod render;
mod request;
mod reviews;
mod routes;
mod select;
mod shared;
mod status;
mod table;
mod tls;
mod watch;
mod writes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::SimCluster;
use shared::Shared;

/// How many changes are kept for watches to start from, unless set.
pub const DEFAULT_WATCH_WINDOW: usize = 10_000;

/// The bearer token of the kubeconfig an [`ApiServer`] writes, unless set.
pub const DEFAULT_TOKEN: &str = "cluster-sim-admin-token";

/// Builds the endpoint over a simulated cluster.
pub struct ApiServer {
    sim: SimCluster,
    tls: bool,
    window: usize,
    token: String,
}

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// No port to listen on.
    #[error("cannot listen: {0}")]
    Listen(#[source] std::io::Error),
    /// The endpoint's own CA and certificate could not be made.
    #[error("cannot make the endpoint's certificates: {0}")]
    Certificates(String),
}

/// A running endpoint.
pub struct Running {
    addr: SocketAddr,
    scheme: &'static str,
    ca_pem: Option<String>,
    token: String,
    requests: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

/// A temporary directory holding an endpoint's kubeconfig, removed when dropped.
#[derive(Debug)]
pub struct KubeconfigDir {
    dir: std::path::PathBuf,
    kubeconfig: std::path::PathBuf,
}

impl KubeconfigDir {
    /// The kubeconfig file.
    pub fn path(&self) -> &std::path::Path {
        &self.kubeconfig
    }

    /// The directory, for files that belong beside it.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for KubeconfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// === impl ApiServer ===

impl ApiServer {
    /// An HTTPS endpoint over `sim`, keeping [`DEFAULT_WATCH_WINDOW`] changes.
    pub fn new(sim: SimCluster) -> Self {
        ApiServer {
            sim,
            tls: true,
            window: DEFAULT_WATCH_WINDOW,
            token: DEFAULT_TOKEN.into(),
        }
    }

    /// Serve plain HTTP instead of HTTPS.
    pub fn plain_http(mut self) -> Self {
        self.tls = false;
        self
    }

    /// How many changes a watch may start behind; older versions get `410 Gone`.
    pub fn watch_window(mut self, changes: usize) -> Self {
        self.window = changes;
        self
    }

    /// The bearer token that authenticates as the cluster's administrator.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = token.into();
        self
    }

    /// Starts serving on a free port of `127.0.0.1`.
    pub async fn serve_on_localhost(self) -> Result<Running, ServeError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(ServeError::Listen)?;
        self.serve(listener)
    }

    /// Starts serving on `listener` (bind `127.0.0.1:0` for a free port).
    pub fn serve(self, listener: TcpListener) -> Result<Running, ServeError> {
        let addr = listener.local_addr().map_err(ServeError::Listen)?;
        self.sim.with(|st| {
            let now = st.current_rv();
            st.changes.enable(self.window, now);
        });
        let shared = Shared {
            sim: self.sim.clone(),
            token: self.token.clone().into(),
            requests: Arc::default(),
        };
        let requests = shared.requests.clone();
        let router = routes::router(shared);
        let certificates = if self.tls {
            Some(tls::make().map_err(ServeError::Certificates)?)
        } else {
            None
        };
        let ca_pem = certificates.as_ref().map(|c| c.ca_pem.clone());
        let acceptor = certificates.map(|c| tokio_rustls::TlsAcceptor::from(c.server_config));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _peer)) = listener.accept().await else {
                    continue;
                };
                // As Go's net/http does: a response's last small segment is not held back
                // waiting for the client's (delayed) acknowledgement of the previous one.
                stream.set_nodelay(true).ok();
                let router = router.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = hyper_util::service::TowerToHyperService::new(router);
                    let builder = auto::Builder::new(TokioExecutor::new());
                    let result = match acceptor {
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(tls) => {
                                builder
                                    .serve_connection_with_upgrades(TokioIo::new(tls), service)
                                    .await
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "TLS handshake failed");
                                return;
                            }
                        },
                        None => {
                            builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                                .await
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended");
                    }
                });
            }
        });
        Ok(Running {
            addr,
            scheme: if self.tls { "https" } else { "http" },
            ca_pem,
            token: self.token,
            requests,
            task,
        })
    }
}

// === impl Running ===

impl Running {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its URL, e.g. `https://127.0.0.1:6443`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The CA that signed its certificate, in PEM (HTTPS only).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// A kubeconfig that reaches it as the administrator.
    pub fn kubeconfig(&self) -> String {
        tls::kubeconfig(&self.url(), self.ca_pem.as_deref(), &self.token)
    }

    /// A kubeconfig like [`kubeconfig`](Self::kubeconfig) that authenticates with another
    /// user's bearer token (one of the scenario's users, with only the rights its rules give).
    pub fn kubeconfig_for(&self, token: &str) -> String {
        tls::kubeconfig(&self.url(), self.ca_pem.as_deref(), token)
    }

    /// Writes [`kubeconfig`](Self::kubeconfig) to `dir/kubeconfig` and returns its path.
    pub fn write_kubeconfig(&self, dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig())?;
        Ok(path)
    }

    /// How many HTTP requests it has served (discovery, reads, writes, watches, refusals).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Writes [`kubeconfig`](Self::kubeconfig) into a directory of its own under the system's
    /// temporary directory, removed when the returned guard is dropped (a test may put its
    /// other files beside it).
    pub fn temp_kubeconfig(&self) -> std::io::Result<KubeconfigDir> {
        let dir = std::env::temp_dir().join(format!(
            "cluster-sim-{}-{}",
            std::process::id(),
            self.addr.port()
        ));
        let kubeconfig = self.write_kubeconfig(&dir)?;
        Ok(KubeconfigDir { dir, kubeconfig })
    }

    /// Stops accepting connections.
    pub fn stop(self) {
        self.task.abort();
    }

    /// Waits until the endpoint stops (it never does by itself).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}
