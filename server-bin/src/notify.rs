//! Notifications: reboot and restart transitions POSTed to webhooks (plain JSON, CloudEvents
//! 1.0, Slack-compatible), each sink fed by its own bounded queue and worker, retried with
//! backoff, never in the way of a drain or a request.
//!
//! The cores announce each transition once across replicas (`fleetlock_core::notices`,
//! `restart_core::notices`); this module only delivers. A queue that is full drops the
//! notification (counted, logged) rather than wait.

use std::sync::Arc;
use std::time::Duration;

use fleetlock_core::RebootNotice;
use manager_config::{NotificationsConfig, SinkConfig, SinkFormat, wants};
use reqwest::StatusCode;
use restart_core::RestartNotice;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::Metrics;

/// How many notifications wait per sink before new ones are dropped.
const QUEUE: usize = 256;
/// The longest wait between two attempts.
const RETRY_MAX: Duration = Duration::from_secs(300);
/// The `source` of CloudEvents.
const SOURCE: &str = "restart-manager";

/// One transition, as every sink gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// `reboot.approved`, `restart.failed`, ... (see `manager_config::EVENTS`).
    #[serde(rename = "type")]
    pub type_: String,
    /// `node/worker-1`, `deployment/shop/web`.
    pub subject: String,
    /// When it happened (RFC 3339).
    pub time: String,
    /// A sentence for a person.
    pub message: String,
    /// The node, for reboots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The reboot group, for reboots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `Kind/namespace/name`, for restarts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// Who restarted (or unlocked), for restarts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub who: Option<String>,
    /// Why, if they said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The server replica that sends it.
    pub instance: String,
}

impl Notification {
    /// A reboot transition.
    pub fn reboot(notice: &RebootNotice, instance: &str) -> Self {
        Notification {
            type_: format!("reboot.{}", notice.transition.as_str()),
            subject: format!("node/{}", notice.node),
            time: notice.time.to_string(),
            message: notice.message.clone(),
            node: Some(notice.node.clone()),
            group: Some(notice.group.clone()),
            workload: None,
            who: None,
            why: None,
            instance: instance.to_string(),
        }
    }

    /// A restart transition.
    pub fn restart(notice: &RestartNotice, instance: &str) -> Self {
        let w = &notice.workload;
        Notification {
            type_: format!("restart.{}", notice.transition.as_str()),
            subject: format!(
                "{}/{}/{}",
                w.kind.as_str().to_ascii_lowercase(),
                w.namespace,
                w.name
            ),
            time: notice.time.to_string(),
            message: notice.message.clone(),
            node: None,
            group: None,
            workload: Some(w.to_string()),
            who: Some(notice.who.clone()),
            why: notice.why.clone(),
            instance: instance.to_string(),
        }
    }
}

/// Sends notifications to the configured sinks.
pub struct Notifier {
    sinks: Vec<Queue>,
    metrics: Arc<Metrics>,
    /// One worker per sink, for a shutdown to wait for.
    workers: TaskTracker,
}

struct Queue {
    name: String,
    events: Vec<String>,
    tx: mpsc::Sender<Arc<Notification>>,
}

struct Sink {
    config: SinkConfig,
    template: Option<minijinja::Environment<'static>>,
    client: reqwest::Client,
    metrics: Arc<Metrics>,
}

impl Notifier {
    /// Starts one worker per sink (call inside the runtime); `None` without sinks. A template
    /// that does not compile is an error naming the sink.
    ///
    /// Once `shutdown` is cancelled each worker delivers what its queue still holds (with its
    /// retries) and stops; [`stopped`](Self::stopped) waits for that.
    pub fn start(
        config: &NotificationsConfig,
        metrics: Arc<Metrics>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Option<Self>> {
        if config.sinks.is_empty() {
            return Ok(None);
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut sinks = Vec::new();
        let workers = TaskTracker::new();
        for sink in &config.sinks {
            let template = match &sink.template {
                Some(text) => {
                    let mut env = minijinja::Environment::new();
                    env.add_template_owned("text", text.clone()).map_err(|e| {
                        anyhow::anyhow!("notifications: sink {:?}: template: {e}", sink.name)
                    })?;
                    Some(env)
                }
                None => None,
            };
            let client = reqwest::Client::builder()
                .timeout(sink.timeout)
                .user_agent(concat!("restart-manager/", env!("CARGO_PKG_VERSION")))
                .build()?;
            let (tx, rx) = mpsc::channel(QUEUE);
            let worker = Sink {
                config: sink.clone(),
                template,
                client,
                metrics: metrics.clone(),
            };
            workers.spawn(worker.run(rx, shutdown.clone()));
            sinks.push(Queue {
                name: sink.name.clone(),
                events: sink.events.clone(),
                tx,
            });
        }
        workers.close();
        Ok(Some(Notifier {
            sinks,
            metrics,
            workers,
        }))
    }

    /// Waits until every worker has stopped: after the shutdown, once what was queued has
    /// been delivered (or given up on).
    pub async fn stopped(&self) {
        self.workers.wait().await;
    }

    /// Queues a notification for every sink that wants it; never waits.
    pub fn send(&self, notification: Notification) {
        let notification = Arc::new(notification);
        for sink in &self.sinks {
            if !wants(&sink.events, &notification.type_) {
                continue;
            }
            if sink.tx.try_send(notification.clone()).is_err() {
                tracing::warn!(sink = %sink.name, event = %notification.type_, "notification queue full; dropped");
                self.metrics.notification(&sink.name, "dropped");
            }
        }
    }
}

impl Sink {
    async fn run(self, mut rx: mpsc::Receiver<Arc<Notification>>, shutdown: CancellationToken) {
        loop {
            let notification = tokio::select! {
                biased;
                notification = rx.recv() => match notification {
                    Some(notification) => notification,
                    None => return,
                },
                () = shutdown.cancelled() => break,
            };
            self.send(&notification).await;
        }
        // Shutting down: nothing new is queued, what is queued still goes out.
        rx.close();
        while let Some(notification) = rx.recv().await {
            self.send(&notification).await;
        }
    }

    /// Delivers one notification and counts how it went.
    async fn send(&self, notification: &Notification) {
        let outcome = match self.deliver(notification).await {
            Ok(()) => "sent",
            Err(e) => {
                tracing::warn!(sink = %self.config.name, event = %notification.type_, error = %e, "notification not delivered");
                "failed"
            }
        };
        self.metrics.notification(&self.config.name, outcome);
    }

    /// The body and its content type.
    fn body(&self, n: &Notification) -> Result<(serde_json::Value, &'static str), String> {
        body(&self.config, self.template.as_ref(), n)
    }
}

/// Escapes what Slack's markup reads as control in text it is given: `&`, `<` and `>`
/// (`<!channel>`, `<https://evil.example|sign in>`), as Slack's own formatting guide asks.
/// Everything else (`*bold*`, emoji) is shown as written.
fn slack_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Every string in `value`, escaped for Slack.
fn slack_escaped(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(slack_escape(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(slack_escaped).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, slack_escaped(v)))
                .collect(),
        ),
        other => other,
    }
}

/// A sink's body for one notification, and its content type. For a Slack-compatible sink
/// every value the text is made of (reasons, names: what users wrote) is escaped first, so
/// it is shown, never read as markup; a template's own markup is kept.
fn body(
    config: &SinkConfig,
    template: Option<&minijinja::Environment<'static>>,
    n: &Notification,
) -> Result<(serde_json::Value, &'static str), String> {
    let slack = config.format == SinkFormat::Slack;
    {
        let text = match template {
            Some(env) => {
                let values = serde_json::to_value(n).map_err(|e| e.to_string())?;
                let values = if slack { slack_escaped(values) } else { values };
                Some(
                    env.get_template("text")
                        .and_then(|t| t.render(values))
                        .map_err(|e| format!("template: {e}"))?,
                )
            }
            None => None,
        };
        let mut plain = serde_json::to_value(n).map_err(|e| e.to_string())?;
        if let (Some(text), Some(object)) = (&text, plain.as_object_mut()) {
            object.insert("text".into(), text.clone().into());
        }
        Ok(match config.format {
            SinkFormat::Json => (plain, "application/json"),
            SinkFormat::CloudEvents => (
                serde_json::json!({
                    "specversion": "1.0",
                    // The same transition always has the same id, so a receiver can drop a
                    // retry that arrives twice.
                    "id": format!("{}:{}:{}", n.type_, n.subject, n.time),
                    "source": SOURCE,
                    "type": format!("io.restart-manager.{}", n.type_),
                    "subject": n.subject,
                    "time": n.time,
                    "datacontenttype": "application/json",
                    "data": plain,
                }),
                "application/cloudevents+json; charset=utf-8",
            ),
            SinkFormat::Slack => (
                serde_json::json!({
                    "text": text.unwrap_or_else(|| format!(
                        "*{}* {}: {}",
                        slack_escape(&n.type_),
                        slack_escape(&n.subject),
                        slack_escape(&n.message)
                    )),
                }),
                "application/json",
            ),
        })
    }
}

impl Sink {
    /// Sends one notification, retrying transient failures with doubling waits.
    async fn deliver(&self, n: &Notification) -> Result<(), String> {
        let (body, content_type) = self.body(n)?;
        let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        let mut wait = self.config.retry_initial;
        let mut attempt = 0;
        loop {
            let retry_after = match self.attempt(&body, content_type).await {
                Ok(()) => return Ok(()),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Transient(e, _)) if attempt >= self.config.retries => {
                    return Err(format!("{e} (gave up after {} attempts)", attempt + 1));
                }
                Err(Failure::Transient(e, retry_after)) => {
                    tracing::debug!(sink = %self.config.name, error = %e, "notification failed; retrying");
                    retry_after
                }
            };
            tokio::time::sleep(retry_after.unwrap_or(wait).max(wait).min(RETRY_MAX)).await;
            wait = (wait * 2).min(RETRY_MAX);
            attempt += 1;
        }
    }

    async fn attempt(&self, body: &[u8], content_type: &'static str) -> Result<(), Failure> {
        let url = match (&self.config.url, &self.config.url_file) {
            (Some(url), _) => url.clone(),
            (None, Some(file)) => read_secret(file).map_err(|e| Failure::Transient(e, None))?,
            (None, None) => return Err(Failure::Final("no url".into())),
        };
        let mut request = self
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body.to_vec());
        if let Some(file) = &self.config.bearer_token_file {
            request =
                request.bearer_auth(read_secret(file).map_err(|e| Failure::Transient(e, None))?);
        }
        // The URL may hold a secret (Slack's do): errors name the sink, never the URL.
        let answer = request
            .send()
            .await
            .map_err(|e| Failure::Transient(describe(e), None))?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = answer
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.trim().parse().ok())
            .map(Duration::from_secs);
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Err(Failure::Transient(
                format!("answered {status}"),
                retry_after,
            ))
        } else {
            Err(Failure::Final(format!("answered {status}")))
        }
    }
}

/// Why an attempt failed.
enum Failure {
    /// Worth another try (after the wait the receiver asked for, if it did).
    Transient(String, Option<Duration>),
    /// Another try would get the same answer.
    Final(String),
}

/// A secret from a file, trimmed (a mounted Secret often ends in a newline).
fn read_secret(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// A send error without its URL.
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        e.without_url().to_string()
    }
}

#[cfg(test)]
mod tests {
    use cluster_api::{WorkloadKind, WorkloadRef};
    use restart_core::RestartTransition;

    use super::*;

    #[test]
    fn a_restart_names_its_workload_who_and_why() {
        let notice = RestartNotice {
            transition: RestartTransition::Unlocked,
            workload: WorkloadRef::new(WorkloadKind::StatefulSet, "data", "postgres"),
            who: "root".into(),
            why: Some("stuck rollout".into()),
            message: "root broke the restart lock held by alice".into(),
            time: "2026-01-05T09:00:00Z".parse().unwrap(),
        };
        let n = Notification::restart(&notice, "replica-a");
        assert_eq!(n.type_, "restart.unlocked");
        assert_eq!(n.subject, "statefulset/data/postgres");
        assert_eq!(n.workload.as_deref(), Some("StatefulSet/data/postgres"));
        assert_eq!(n.who.as_deref(), Some("root"));
        assert_eq!(n.why.as_deref(), Some("stuck rollout"));
        let json = serde_json::to_value(&n).unwrap();
        assert_eq!(json["type"], "restart.unlocked");
        assert!(json.get("node").is_none());
    }

    /// A restart reason is a user's words: in a Slack-compatible sink it is shown, never read
    /// as markup (a channel-wide ping, a link dressed as something else).
    #[test]
    fn a_reason_reaches_slack_as_text_not_markup() {
        let notice = RestartNotice {
            transition: RestartTransition::Started,
            workload: WorkloadRef::new(WorkloadKind::Deployment, "shop", "web"),
            who: "mallory".into(),
            why: Some("<!channel> urgent: <https://evil.example|sign in again> & co".into()),
            message: "mallory restarted Deployment shop/web: <!channel>".into(),
            time: "2026-01-05T09:00:00Z".parse().unwrap(),
        };
        let n = Notification::restart(&notice, "replica-a");
        let sink = |template: Option<&str>, format: &str| -> String {
            let yaml = format!("name: chat\nformat: {format}\nurl: http://127.0.0.1:1/hook\n");
            let config: SinkConfig = serde_saphyr::from_str(&yaml).unwrap();
            let env = template.map(|text| {
                let mut env = minijinja::Environment::new();
                env.add_template_owned("text", text.to_string()).unwrap();
                env
            });
            let (value, _) = body(&config, env.as_ref(), &n).unwrap();
            value["text"].as_str().unwrap_or_default().to_string()
        };
        for text in [
            sink(None, "slack"),
            sink(
                Some("<{{ workload }}|restart> by {{ who }}: {{ why }}"),
                "slack",
            ),
        ] {
            assert!(!text.contains("<!channel>"), "{text}");
            assert!(!text.contains("<https://evil"), "{text}");
            assert!(text.contains("&lt;!channel&gt;"), "{text}");
        }
        // The template's own markup stays; the user's is escaped.
        let templated = sink(Some("<{{ workload }}|restart> {{ why }}"), "slack");
        assert!(
            templated.starts_with("<Deployment/shop/web|restart> &lt;!channel&gt;"),
            "{templated}"
        );
        assert!(templated.ends_with("&amp; co"), "{templated}");
        // JSON sinks get the words as they are (JSON escaping is the receiver's).
        assert!(sink(Some("{{ why }}"), "json").starts_with("<!channel>"));
    }
}
