//! The `notifications` section: where reboot and restart transitions are sent.
//!
//! ```yaml
//! notifications:
//!   sinks:
//!     - name: chat
//!       format: slack                       # json (default), cloudEvents, slack
//!       urlFile: /etc/restart-manager/slack-webhook
//!       events: [reboot.drain_blocked, reboot.stuck, restart.failed]
//!       template: "{{ subject }}: {{ message }}"
//! ```

use std::path::PathBuf;
use std::time::Duration;

use fleetlock_core::config::duration;
use serde::Deserialize;

/// Every event a sink can ask for.
pub const EVENTS: [&str; 11] = [
    "reboot.granted",
    "reboot.drain_blocked",
    "reboot.overdue",
    "reboot.approved",
    "reboot.back",
    "reboot.healed",
    "reboot.stuck",
    "restart.started",
    "restart.completed",
    "restart.failed",
    "restart.unlocked",
];

/// Where transitions are sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct NotificationsConfig {
    /// The receivers; none: nothing is sent.
    pub sinks: Vec<SinkConfig>,
}

/// One receiver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SinkConfig {
    /// Its name, in logs and metrics.
    pub name: String,
    /// What the body looks like.
    #[serde(default)]
    pub format: SinkFormat,
    /// Where to POST. Slack's incoming webhook URLs are secrets: prefer `urlFile`.
    #[serde(default)]
    pub url: Option<String>,
    /// A file holding the URL (a mounted Secret), read at every send so a rotation applies.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// A file holding a bearer token to send (`Authorization: Bearer ...`), read at every send.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// Which events it gets: names from [`EVENTS`], `reboot.*`, `restart.*`; empty: all.
    #[serde(default)]
    pub events: Vec<String>,
    /// A minijinja template for the text: Slack's `text`, and a `text` field added to the
    /// other formats. Sees `type`, `subject`, `message`, `node`, `group`, `workload`, `who`,
    /// `why`, `time`, `instance`.
    #[serde(default)]
    pub template: Option<String>,
    /// Attempts after the first, with doubling waits, on connection errors, timeouts, 429
    /// and 5xx answers.
    #[serde(default = "five")]
    pub retries: u32,
    /// The first wait before a retry.
    #[serde(default = "one_second", deserialize_with = "duration")]
    pub retry_initial: Duration,
    /// How long one attempt may take.
    #[serde(default = "ten_seconds", deserialize_with = "duration")]
    pub timeout: Duration,
}

/// The body a sink is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SinkFormat {
    /// The notification as plain JSON.
    #[default]
    Json,
    /// A CloudEvents 1.0 event in structured mode (`application/cloudevents+json`), the
    /// notification as its `data`.
    CloudEvents,
    /// A Slack-compatible incoming webhook: `{"text": ...}`.
    Slack,
}

fn five() -> u32 {
    5
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

impl NotificationsConfig {
    /// What is wrong, naming the sink.
    pub fn problem(&self) -> Option<String> {
        let mut names = std::collections::HashSet::new();
        for sink in &self.sinks {
            let name = &sink.name;
            if name.trim().is_empty() {
                return Some("notifications: every sink needs a name".into());
            }
            if !names.insert(name.as_str()) {
                return Some(format!("notifications: two sinks are named {name:?}"));
            }
            match (&sink.url, &sink.url_file) {
                (Some(_), Some(_)) => {
                    return Some(format!(
                        "notifications: sink {name:?} has both url and urlFile; give one"
                    ));
                }
                (None, None) => {
                    return Some(format!("notifications: sink {name:?} needs url or urlFile"));
                }
                (Some(url), None)
                    if !(url.starts_with("http://") || url.starts_with("https://")) =>
                {
                    return Some(format!(
                        "notifications: sink {name:?}: url must be an http:// or https:// URL"
                    ));
                }
                _ => {}
            }
            for event in &sink.events {
                let known = EVENTS.contains(&event.as_str())
                    || matches!(event.as_str(), "reboot.*" | "restart.*" | "*");
                if !known {
                    return Some(format!(
                        "notifications: sink {name:?}: unknown event {event:?} (one of {}, \
                         reboot.*, restart.*)",
                        EVENTS.join(", ")
                    ));
                }
            }
        }
        None
    }
}

/// Whether a sink asking for `events` gets `event`.
pub fn wants(events: &[String], event: &str) -> bool {
    events.is_empty()
        || events.iter().any(|e| {
            e == event
                || e == "*"
                || e.strip_suffix(".*").is_some_and(|prefix| {
                    event
                        .strip_prefix(prefix)
                        .is_some_and(|r| r.starts_with('.'))
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinks_are_checked_and_filter_events() {
        let config: NotificationsConfig = serde_saphyr::from_str(
            "sinks:\n  - {name: a, url: 'http://x', events: [reboot.*, restart.failed]}\n",
        )
        .unwrap();
        assert_eq!(config.problem(), None);
        let events = &config.sinks[0].events;
        assert!(wants(events, "reboot.stuck"));
        assert!(wants(events, "restart.failed"));
        assert!(!wants(events, "restart.started"));
        assert!(wants(&[], "restart.started"));
        for (yaml, want) in [
            ("sinks: [{name: a}]", "needs url or urlFile"),
            ("sinks: [{name: a, url: 'ftp://x'}]", "http://"),
            ("sinks: [{name: a, url: 'http://x', urlFile: /f}]", "both"),
            (
                "sinks: [{name: a, url: 'http://x', events: [reboot.done]}]",
                "unknown event",
            ),
            (
                "sinks: [{name: a, url: 'http://x'}, {name: a, url: 'http://y'}]",
                "two sinks",
            ),
        ] {
            let config: NotificationsConfig = serde_saphyr::from_str(yaml).unwrap();
            let problem = config.problem().unwrap();
            assert!(problem.contains(want), "{yaml}: {problem}");
        }
    }
}
