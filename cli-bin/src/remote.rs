//! Server mode: the same commands through a running server's HTTP API.

use async_trait::async_trait;
use cluster_api::WorkloadRef;
use fleetlock_core::FleetSnapshot;
use futures::stream::BoxStream;
use futures::{SinkExt, StreamExt};
use restart_core::{HistoryEntry, LockInfo, ServiceStatus};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::backend::{Backend, CliError, Exit};

/// A running restart-manager.
pub struct Remote {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Remote {
    /// Talks to the server at `base` (`http://host:port`), with a bearer token if given.
    pub fn new(base: &str, token: Option<String>) -> Result<Self, CliError> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(CliError::new(
                Exit::Usage,
                format!("--server {base:?} must start with http:// or https://"),
            ));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("restartctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                CliError::new(Exit::Failure, format!("cannot build an HTTP client: {e}"))
            })?;
        Ok(Remote { base, token, http })
    }

    fn path(w: &WorkloadRef) -> String {
        format!("/api/v1/service/{}/{}/{}", w.kind, w.namespace, w.name)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, CliError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| {
            CliError::new(Exit::Failure, format!("cannot reach the server at {}: {e}", self.base))
                .hint("check --server (or RESTARTCTL_SERVER), or use --kubeconfig to talk to the cluster directly")
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| CliError::new(Exit::Failure, format!("reading the answer: {e}")))?;
        if !status.is_success() {
            #[derive(Deserialize)]
            struct ApiError {
                kind: String,
                message: String,
            }
            return Err(match serde_json::from_str::<ApiError>(&text) {
                Ok(e) => CliError::from_kind(&e.kind, e.message),
                Err(_) => CliError::new(
                    Exit::Failure,
                    format!("the server answered {status}: {text}"),
                ),
            });
        }
        serde_json::from_str(&text).map_err(|e| CliError::new(Exit::Failure, format!("the server's answer is not what restartctl expects ({e}); are the versions compatible?")))
    }
}

#[async_trait]
impl Backend for Remote {
    async fn statuses(&self) -> Result<Vec<ServiceStatus>, CliError> {
        self.send(reqwest::Method::GET, "/api/v1/service", None)
            .await
    }

    async fn status(&self, w: &WorkloadRef) -> Result<ServiceStatus, CliError> {
        self.send(reqwest::Method::GET, &Self::path(w), None).await
    }

    async fn restart(
        &self,
        w: &WorkloadRef,
        reason: Option<&str>,
    ) -> Result<ServiceStatus, CliError> {
        self.send(
            reqwest::Method::POST,
            &format!("{}/restart", Self::path(w)),
            Some(json!({ "reason": reason })),
        )
        .await
    }

    async fn unlock(&self, w: &WorkloadRef, reason: &str) -> Result<Option<LockInfo>, CliError> {
        #[derive(Deserialize)]
        struct Released {
            released: Option<LockInfo>,
        }
        let r: Released = self
            .send(
                reqwest::Method::POST,
                &format!("{}/unlock", Self::path(w)),
                Some(json!({ "reason": reason })),
            )
            .await?;
        Ok(r.released)
    }

    async fn history(&self, w: &WorkloadRef) -> Result<Vec<HistoryEntry>, CliError> {
        self.send(
            reqwest::Method::GET,
            &format!("{}/history", Self::path(w)),
            None,
        )
        .await
    }

    async fn fleet(&self) -> Result<FleetSnapshot, CliError> {
        self.send(reqwest::Method::GET, "/api/v1/fleet", None).await
    }

    async fn pause(&self, group: &str, paused: bool) -> Result<(), CliError> {
        let action = if paused { "pause" } else { "resume" };
        let _: Value = self
            .send(
                reqwest::Method::POST,
                &format!("/api/v1/fleet/groups/{group}/{action}"),
                None,
            )
            .await?;
        Ok(())
    }

    async fn updates(
        &self,
        only: Option<&WorkloadRef>,
    ) -> Result<BoxStream<'static, ServiceStatus>, CliError> {
        let mut url = format!(
            "{}/api/v1/service/status",
            self.base.replacen("http", "ws", 1)
        );
        if let Some(w) = only {
            url.push_str(&format!(
                "?kind={}&namespace={}&name={}",
                w.kind, w.namespace, w.name
            ));
        }
        let mut request = url
            .into_client_request()
            .map_err(|e| CliError::new(Exit::Usage, format!("bad server URL: {e}")))?;
        if let Some(token) = &self.token {
            let value = format!("Bearer {token}").parse().map_err(|_| {
                CliError::new(
                    Exit::Usage,
                    "the token contains characters a header cannot carry",
                )
            })?;
            request.headers_mut().insert("authorization", value);
        }
        let (socket, _) = tokio_tungstenite::connect_async(request).await.map_err(|e| {
            let denied = matches!(&e, tokio_tungstenite::tungstenite::Error::Http(r) if r.status() == 401 || r.status() == 403);
            if denied {
                CliError::from_kind("unauthenticated", format!("the server refused the status stream: {e}"))
            } else {
                CliError::new(Exit::Failure, format!("cannot open the status stream at {}: {e}", self.base))
            }
        })?;
        let stream = futures::stream::unfold(socket, |mut socket| async move {
            loop {
                let message = socket.next().await?.ok()?;
                let text = match message {
                    Message::Text(t) => t,
                    Message::Ping(p) => {
                        let _ = socket.send(Message::Pong(p)).await;
                        continue;
                    }
                    Message::Close(_) => return None,
                    _ => continue,
                };
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                let statuses: Vec<ServiceStatus> = match v["type"].as_str() {
                    Some("snapshot") => {
                        serde_json::from_value(v["services"].clone()).unwrap_or_default()
                    }
                    Some("update") => serde_json::from_value(v["service"].clone())
                        .into_iter()
                        .collect(),
                    _ => continue,
                };
                return Some((futures::stream::iter(statuses), socket));
            }
        })
        .flatten();
        Ok(stream.boxed())
    }
}
