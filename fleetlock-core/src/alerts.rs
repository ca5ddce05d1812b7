//! Firing alerts for the groups' alert gates: a source the embedding program provides (the
//! server reads Prometheus or Alertmanager over HTTP), read in the background, and the
//! verdict over what it last said.

use std::collections::BTreeMap;

use async_trait::async_trait;
use cluster_api::LabelSelector;

use crate::config::OnUnreachable;

/// An alert's labels.
pub type Labels = BTreeMap<String, String>;

/// Where firing alerts come from.
#[async_trait]
pub trait AlertSource: Send + Sync + 'static {
    /// The alerts firing now, by their labels, or why they could not be read.
    async fn firing(&self) -> Result<Vec<Labels>, AlertsError>;
}

/// Why the firing alerts could not be read. `url` is the address as it may be shown (see
/// [`shown_url`]): its message goes to Zincati, the fleet view and the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AlertsError {
    /// The credentials to send could not be read.
    #[error("GET {url}: reading {file}: {reason}")]
    Credentials {
        /// The address asked.
        url: String,
        /// The file the credentials are in.
        file: String,
        /// Why it could not be read.
        reason: String,
    },
    /// No answer: the connection failed or broke off.
    #[error("GET {url}: {reason}")]
    Unreachable {
        /// The address asked.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// An answer other than success.
    #[error("GET {url}: {status}")]
    Status {
        /// The address asked.
        url: String,
        /// The HTTP status, with its reason phrase.
        status: String,
    },
    /// A success whose body is no list of alerts.
    #[error("GET {url}: not an alert list: {reason}")]
    NotAnAlertList {
        /// The address asked.
        url: String,
        /// Why the body does not parse.
        reason: String,
    },
}

/// `url` as it may be shown: in logs, refusals and the fleet view. Credentials written into
/// it (`http://user:password@host`) are left out; the rest is as written.
pub fn shown_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://{host}{path}"),
        None => url.to_string(),
    }
}

/// What the last read of the alerts said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AlertState {
    /// No read has finished since start: a gate over alerts stays closed unless it is set to
    /// open when they cannot be read.
    #[default]
    NotReadYet,
    /// These were firing.
    Firing(Vec<Labels>),
    /// The read failed.
    Unreachable(String),
}

/// The reasons an alert gate over `selectors` is closed in `state`, in words: each firing
/// alert matching one of them, or that the alerts cannot be read (unless `on_unreachable`
/// says to grant anyway).
pub fn closed_by_alerts(
    state: &AlertState,
    selectors: &[LabelSelector],
    on_unreachable: OnUnreachable,
) -> Vec<String> {
    if selectors.is_empty() {
        return Vec::new();
    }
    match state {
        AlertState::Firing(alerts) => alerts
            .iter()
            .filter_map(|labels| {
                let selector = selectors.iter().find(|s| s.matches(labels))?;
                let name = labels.get("alertname").map_or("an alert", String::as_str);
                Some(format!("alert {name} is firing (it matches {selector})"))
            })
            .collect(),
        _ if on_unreachable == OnUnreachable::Allow => Vec::new(),
        AlertState::NotReadYet => vec!["the alerts have not been read yet".to_string()],
        AlertState::Unreachable(why) => vec![format!("the alerts cannot be read ({why})")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_matching_firing_alert_closes_the_gate_by_name() {
        let selectors = ["severity=critical".parse().unwrap()];
        let state = AlertState::Firing(vec![
            alert(&[("alertname", "DiskFull"), ("severity", "warning")]),
            alert(&[("alertname", "EtcdDown"), ("severity", "critical")]),
        ]);
        assert_eq!(
            closed_by_alerts(&state, &selectors, OnUnreachable::Block),
            ["alert EtcdDown is firing (it matches severity=critical)"]
        );
        assert!(closed_by_alerts(&state, &[], OnUnreachable::Block).is_empty());
        let quiet = AlertState::Firing(vec![alert(&[("alertname", "DiskFull")])]);
        assert!(closed_by_alerts(&quiet, &selectors, OnUnreachable::Block).is_empty());
    }

    #[test]
    fn unreadable_alerts_block_unless_allowed() {
        let selectors = ["severity=critical".parse().unwrap()];
        let down = AlertState::Unreachable("connection refused".into());
        assert_eq!(
            closed_by_alerts(&down, &selectors, OnUnreachable::Block),
            ["the alerts cannot be read (connection refused)"]
        );
        assert!(closed_by_alerts(&down, &selectors, OnUnreachable::Allow).is_empty());
        assert_eq!(
            closed_by_alerts(&AlertState::NotReadYet, &selectors, OnUnreachable::Block).len(),
            1
        );
    }
}

#[cfg(test)]
mod url_tests {
    use super::shown_url;

    #[test]
    fn credentials_are_left_out_of_shown_urls() {
        assert_eq!(
            shown_url("http://user:s3cret@prometheus:9090/prom?x=1"),
            "http://prometheus:9090/prom?x=1"
        );
        assert_eq!(shown_url("https://token@am.example"), "https://am.example");
        // An @ past the authority is not a credential.
        assert_eq!(
            shown_url("http://prometheus:9090/a@b"),
            "http://prometheus:9090/a@b"
        );
        assert_eq!(shown_url("prometheus:9090"), "prometheus:9090");
    }
}
