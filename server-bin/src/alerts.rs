//! The alert gates' source: firing alerts read over HTTP from Prometheus (`/api/v1/alerts`)
//! or Alertmanager (`/api/v2/alerts`).

use async_trait::async_trait;
use fleetlock_core::alerts::{AlertSource, Labels};
use fleetlock_core::{AlertsApi, AlertsConfig};
use serde::Deserialize;

/// Reads firing alerts from the configured server.
pub struct HttpAlerts {
    client: reqwest::Client,
    url: String,
    api: AlertsApi,
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
        Ok(HttpAlerts {
            client,
            url: config.url.trim_end_matches('/').to_string(),
            api: config.api,
        })
    }
}

#[async_trait]
impl AlertSource for HttpAlerts {
    async fn firing(&self) -> Result<Vec<Labels>, String> {
        let url = match self.api {
            AlertsApi::Prometheus => format!("{}/api/v1/alerts", self.url),
            AlertsApi::Alertmanager => format!(
                "{}/api/v2/alerts?active=true&silenced=false&inhibited=false",
                self.url
            ),
        };
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {url}: {status}"));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let bad = |e: serde_json::Error| format!("GET {url}: not an alert list: {e}");
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
