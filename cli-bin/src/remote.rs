//! Server mode: the same commands through a running server's HTTP API.

use async_trait::async_trait;
use cluster_api::WorkloadRef;
use fleetlock_core::{FleetSnapshot, NodePlan};
use futures::stream::BoxStream;
use futures::{SinkExt, StreamExt};
use restart_core::{HistoryEntry, LockInfo, RestartPlan, ServiceStatus, SetStatus};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::backend::{Backend, CliError, Exit};

/// A running restart-manager.
pub struct Remote {
    base: reqwest::Url,
    token: Option<String>,
    http: reqwest::Client,
}

impl Remote {
    /// Talks to the server at `base` (`http://host:port`), with a bearer token if given.
    pub fn new(base: &str, token: Option<String>) -> Result<Self, CliError> {
        let usage = || {
            CliError::new(
                Exit::Usage,
                format!("--server {base:?} must be a URL starting with http:// or https://"),
            )
        };
        let base = reqwest::Url::parse(base).map_err(|_| usage())?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(usage());
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("restartctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                CliError::new(Exit::Failure, format!("cannot build an HTTP client: {e}"))
            })?;
        Ok(Remote { base, token, http })
    }

    /// Why the token is at risk on the way to this server, if it is: plain HTTP to a host
    /// other than this machine.
    pub fn exposure_warning(&self) -> Option<String> {
        let host = self.base.host_str().unwrap_or("");
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let local = bare == "localhost"
            || bare
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        (self.token.is_some() && self.base.scheme() == "http" && !local).then(|| {
            format!(
                "the token travels unencrypted to {}; anyone on the way can read and reuse it \
                 (use https://)",
                if host.is_empty() { "the server" } else { host }
            )
        })
    }

    /// The server's URL for these path segments, each percent-encoded on its own, so a name
    /// with `/`, `?` or `..` in it can never reach another endpoint.
    fn url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn path(w: &WorkloadRef, then: Option<&str>) -> Vec<String> {
        let mut segments = vec![
            "api".to_string(),
            "v1".into(),
            "service".into(),
            w.kind.to_string(),
            w.namespace.clone(),
            w.name.clone(),
        ];
        segments.extend(then.map(str::to_string));
        segments
    }

    async fn send<T: DeserializeOwned, S: AsRef<str>>(
        &self,
        method: reqwest::Method,
        segments: &[S],
        body: Option<Value>,
    ) -> Result<T, CliError> {
        self.send_query(method, segments, &[], body).await
    }

    /// [`send`](Self::send) with query parameters.
    async fn send_query<T: DeserializeOwned, S: AsRef<str>>(
        &self,
        method: reqwest::Method,
        segments: &[S],
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<T, CliError> {
        let segments: Vec<&str> = segments.iter().map(AsRef::as_ref).collect();
        let mut url = self.url(&segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut request = self.http.request(method, url);
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
    /// The status stream's JSON messages (of one workload, if given), pings answered.
    async fn messages(
        &self,
        only: Option<&WorkloadRef>,
    ) -> Result<BoxStream<'static, Value>, CliError> {
        let mut url = self.url(&["api", "v1", "service", "status"]);
        let ws = if url.scheme() == "https" { "wss" } else { "ws" };
        let _ = url.set_scheme(ws);
        if let Some(w) = only {
            url.query_pairs_mut()
                .append_pair("kind", w.kind.as_str())
                .append_pair("namespace", &w.namespace)
                .append_pair("name", &w.name);
        }
        let mut request = url
            .as_str()
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
                if let Ok(v) = serde_json::from_str::<Value>(&text) {
                    return Some((v, socket));
                }
            }
        });
        Ok(stream.boxed())
    }
}

#[async_trait]
impl Backend for Remote {
    async fn statuses(&self) -> Result<Vec<ServiceStatus>, CliError> {
        self.send(reqwest::Method::GET, &["api", "v1", "service"], None)
            .await
    }

    async fn status(&self, w: &WorkloadRef) -> Result<ServiceStatus, CliError> {
        self.send(reqwest::Method::GET, &Self::path(w, None), None)
            .await
    }

    async fn restart(
        &self,
        w: &WorkloadRef,
        reason: Option<&str>,
    ) -> Result<ServiceStatus, CliError> {
        self.send(
            reqwest::Method::POST,
            &Self::path(w, Some("restart")),
            Some(json!({ "reason": reason })),
        )
        .await
    }

    async fn dry_run(
        &self,
        w: &WorkloadRef,
        reason: Option<&str>,
    ) -> Result<RestartPlan, CliError> {
        self.send_query(
            reqwest::Method::POST,
            &Self::path(w, Some("restart")),
            &[("dryRun", "true")],
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
                &Self::path(w, Some("unlock")),
                Some(json!({ "reason": reason })),
            )
            .await?;
        Ok(r.released)
    }

    async fn history(&self, w: &WorkloadRef) -> Result<Vec<HistoryEntry>, CliError> {
        self.send(reqwest::Method::GET, &Self::path(w, Some("history")), None)
            .await
    }

    async fn fleet(&self) -> Result<FleetSnapshot, CliError> {
        self.send(reqwest::Method::GET, &["api", "v1", "fleet"], None)
            .await
    }

    async fn plan(&self, node: &str) -> Result<NodePlan, CliError> {
        self.send(
            reqwest::Method::GET,
            &["api", "v1", "fleet", "nodes", node, "plan"],
            None,
        )
        .await
    }

    async fn pause(&self, group: &str, paused: bool) -> Result<(), CliError> {
        let action = if paused { "pause" } else { "resume" };
        let _: Value = self
            .send(
                reqwest::Method::POST,
                &["api", "v1", "fleet", "groups", group, action],
                None,
            )
            .await?;
        Ok(())
    }

    async fn updates(
        &self,
        only: Option<&WorkloadRef>,
    ) -> Result<BoxStream<'static, ServiceStatus>, CliError> {
        let messages = self.messages(only).await?;
        let statuses = messages.flat_map(|v| {
            let statuses: Vec<ServiceStatus> = match v["type"].as_str() {
                Some("snapshot") => {
                    serde_json::from_value(v["services"].clone()).unwrap_or_default()
                }
                Some("update") => serde_json::from_value(v["service"].clone())
                    .into_iter()
                    .collect(),
                _ => Vec::new(),
            };
            futures::stream::iter(statuses)
        });
        Ok(statuses.boxed())
    }

    async fn sets(&self) -> Result<Vec<SetStatus>, CliError> {
        self.send(reqwest::Method::GET, &["api", "v1", "sets"], None)
            .await
    }

    async fn start_set(&self, name: &str, reason: Option<&str>) -> Result<SetStatus, CliError> {
        self.send(
            reqwest::Method::POST,
            &["api", "v1", "sets", name, "restart"],
            Some(json!({ "reason": reason })),
        )
        .await
    }

    async fn cancel_set(&self, name: &str) -> Result<Option<SetStatus>, CliError> {
        #[derive(Deserialize)]
        struct Cancelled {
            cancelled: bool,
            set: SetStatus,
        }
        let c: Cancelled = self
            .send(
                reqwest::Method::POST,
                &["api", "v1", "sets", name, "cancel"],
                None,
            )
            .await?;
        Ok(c.cancelled.then_some(c.set))
    }

    async fn set_updates(&self, name: &str) -> Result<BoxStream<'static, SetStatus>, CliError> {
        // Subscribed before the set is read, so no change falls between them.
        let messages = self.messages(None).await?;
        let now: SetStatus = self
            .send(reqwest::Method::GET, &["api", "v1", "sets", name], None)
            .await?;
        let name = name.to_string();
        let changes = messages.flat_map(move |v| {
            let sets: Vec<SetStatus> = match v["type"].as_str() {
                Some("snapshot") => serde_json::from_value(v["sets"].clone()).unwrap_or_default(),
                Some("set") => serde_json::from_value(v["set"].clone())
                    .into_iter()
                    .collect(),
                _ => Vec::new(),
            };
            let name = name.clone();
            futures::stream::iter(sets.into_iter().filter(move |s| s.set.name == name))
        });
        Ok(futures::stream::iter([now]).chain(changes).boxed())
    }
}

#[cfg(test)]
mod tests {
    use cluster_api::WorkloadKind;

    use super::*;

    fn provider() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }

    #[test]
    fn every_path_segment_is_encoded_on_its_own() {
        provider();
        let r = Remote::new("https://rm.example/prefix/", None).unwrap();
        let w = WorkloadRef::new(WorkloadKind::Deployment, "shop", "../../fleet?x=1#y");
        let segments = Remote::path(&w, Some("restart"));
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        assert_eq!(
            r.url(&segments).as_str(),
            "https://rm.example/prefix/api/v1/service/Deployment/shop/..%2F..%2Ffleet%3Fx=1%23y/restart"
        );
    }

    #[test]
    fn a_token_over_plain_http_is_warned_about_unless_it_stays_on_this_machine() {
        provider();
        let warned = |url: &str, token: Option<&str>| {
            Remote::new(url, token.map(String::from))
                .unwrap()
                .exposure_warning()
        };
        let w = warned("http://rm.example:8080", Some("t")).unwrap();
        assert!(w.contains("unencrypted to rm.example"), "{w}");
        assert_eq!(warned("https://rm.example", Some("t")), None);
        assert_eq!(warned("http://rm.example", None), None);
        assert_eq!(warned("http://127.0.0.1:8080", Some("t")), None);
        assert_eq!(warned("http://[::1]:8080", Some("t")), None);
        assert_eq!(warned("http://localhost:8080", Some("t")), None);
        assert!(Remote::new("ftp://rm.example", None).is_err());
        assert!(Remote::new("rm.example:8080", None).is_err());
    }
}
