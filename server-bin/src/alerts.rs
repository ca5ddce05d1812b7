//! The alert gates' source: firing alerts read over HTTP from Prometheus (`/api/v1/alerts`)
//! or Alertmanager (`/api/v2/alerts`).

use std::path::PathBuf;

use async_trait::async_trait;
use fleetlock_core::alerts::{AlertSource, AlertsError, Labels, shown_url};
use fleetlock_core::{AlertsApi, AlertsConfig};
use serde::Deserialize;

/// Reads firing alerts from the configured server.
pub struct HttpAlerts {
    client: reqwest::Client,
    /// The base URL without credentials.
    url: String,
    /// The base URL without credentials, as shown in errors.
    shown: String,
    api: AlertsApi,
    credentials: Credentials,
}

/// How the alerts server is told who is asking.
enum Credentials {
    None,
    /// From the URL's own `user:password@`.
    Basic(String, Option<String>),
    /// Basic, the password read from a file at every request.
    BasicFile(String, PathBuf),
    /// A bearer token read from a file at every request.
    BearerFile(PathBuf),
}

/// Prometheus' answer: `{"status": "success", "data": {"alerts": [...]}}`.
#[derive(Deserialize)]
struct PrometheusAnswer {
    data: PrometheusData,
}

#[derive(Deserialize)]
struct PrometheusData {
    alerts: Vec<PrometheusAlert>,
}

#[derive(Deserialize)]
struct PrometheusAlert {
    labels: Labels,
    /// `pending` or `firing`.
    state: String,
}

/// One of Alertmanager's alerts (asked for active ones only).
#[derive(Deserialize)]
struct AlertmanagerAlert {
    labels: Labels,
}

impl HttpAlerts {
    /// A source for `config` (its timeout bounds each read).
    pub fn new(config: &AlertsConfig) -> anyhow::Result<Self> {
        // reqwest is built without a crypto provider of its own: use ring, as the rest does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("restart-manager/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let mut url = reqwest::Url::parse(config.url.trim_end_matches('/'))
            .map_err(|e| anyhow::anyhow!("alerts.url {}: {e}", shown_url(&config.url)))?;
        let from_url = (!url.username().is_empty()).then(|| {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(url.username()), url.password().map(decode))
        });
        // Credentials never travel with the URL, so no error or log can show them.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let credentials = match (from_url, &config.basic_auth, &config.bearer_token_file) {
            (None, None, None) => Credentials::None,
            (Some((user, password)), None, None) => Credentials::Basic(user, password),
            (None, Some(basic), None) => {
                Credentials::BasicFile(basic.username.clone(), basic.password_file.clone())
            }
            (None, None, Some(file)) => Credentials::BearerFile(file.clone()),
            _ => anyhow::bail!(
                "alerts: give one of credentials in the URL, basicAuth and bearerTokenFile"
            ),
        };
        let url = url.as_str().trim_end_matches('/').to_string();
        Ok(HttpAlerts {
            client,
            shown: url.clone(),
            url,
            api: config.api,
            credentials,
        })
    }

    /// The request to `url` (shown as `shown`), with its credentials.
    fn get(&self, url: &str, shown: &str) -> Result<reqwest::RequestBuilder, AlertsError> {
        let read = |file: &PathBuf| {
            std::fs::read_to_string(file)
                .map(|s| s.trim().to_string())
                .map_err(|e| AlertsError::Credentials {
                    url: shown.to_string(),
                    file: file.display().to_string(),
                    reason: e.to_string(),
                })
        };
        let request = self.client.get(url);
        Ok(match &self.credentials {
            Credentials::None => request,
            Credentials::Basic(user, password) => request.basic_auth(user, password.as_ref()),
            Credentials::BasicFile(user, file) => request.basic_auth(user, Some(read(file)?)),
            Credentials::BearerFile(file) => request.bearer_auth(read(file)?),
        })
    }
}

#[async_trait]
impl AlertSource for HttpAlerts {
    async fn firing(&self) -> Result<Vec<Labels>, AlertsError> {
        let path = match self.api {
            AlertsApi::Prometheus => "/api/v1/alerts",
            AlertsApi::Alertmanager => "/api/v2/alerts?active=true&silenced=false&inhibited=false",
        };
        let (url, shown) = (
            format!("{}{path}", self.url),
            format!("{}{path}", self.shown),
        );
        // reqwest's errors name the URL; ours names the one without credentials.
        let unreachable = |e: reqwest::Error| AlertsError::Unreachable {
            url: shown.clone(),
            reason: e.without_url().to_string(),
        };
        let response = self.get(&url, &shown)?.send().await.map_err(unreachable)?;
        let status = response.status();
        if !status.is_success() {
            return Err(AlertsError::Status {
                url: shown,
                status: status.to_string(),
            });
        }
        let body = response.bytes().await.map_err(unreachable)?;
        let bad = |e: serde_json::Error| AlertsError::NotAnAlertList {
            url: shown.clone(),
            reason: e.to_string(),
        };
        Ok(match self.api {
            AlertsApi::Prometheus => serde_json::from_slice::<PrometheusAnswer>(&body)
                .map_err(bad)?
                .data
                .alerts
                .into_iter()
                .filter(|a| a.state == "firing")
                .map(|a| a.labels)
                .collect(),
            AlertsApi::Alertmanager => serde_json::from_slice::<Vec<AlertmanagerAlert>>(&body)
                .map_err(bad)?
                .into_iter()
                .map(|a| a.labels)
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fleetlock_core::{AlertsApi, AlertsConfig, OnUnreachable};

    use super::*;

    fn config(url: &str) -> AlertsConfig {
        AlertsConfig {
            url: url.into(),
            api: AlertsApi::Prometheus,
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(5),
            on_unreachable: OnUnreachable::Block,
            bearer_token_file: None,
            basic_auth: None,
        }
    }

    /// A gate that cannot read its alerts says why to Zincati, the fleet view and the log:
    /// the URL it names must not carry the password written into the configuration.
    #[tokio::test]
    async fn a_failed_read_never_shows_the_urls_credentials() {
        // Nothing listens on port 1.
        let source = HttpAlerts::new(&config("http://ops:s3cr%40t@127.0.0.1:1/prom")).unwrap();
        let why = source.firing().await.unwrap_err().to_string();
        assert!(!why.contains("s3cr"), "{why}");
        assert!(!why.contains("ops:"), "{why}");
        assert!(
            why.contains("http://127.0.0.1:1/prom/api/v1/alerts"),
            "{why}"
        );
        assert!(matches!(
            &source.credentials,
            Credentials::Basic(user, Some(password)) if user == "ops" && password == "s3cr@t"
        ));
    }

    #[test]
    fn one_kind_of_credentials_at_a_time() {
        let mut both = config("http://ops:pw@prometheus:9090");
        both.bearer_token_file = Some("/var/run/secrets/token".into());
        let Err(e) = HttpAlerts::new(&both) else {
            panic!("two kinds of credentials accepted")
        };
        assert!(!e.to_string().contains("pw"), "{e}");
    }
}
