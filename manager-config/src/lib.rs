//! restart-manager's configuration file: the one model that the server and `restartctl`
//! read, with the same checks, and the one rule that settles the namespace of the locks.
//!
//! ```yaml
//! # The workloads that may be restarted (the k8s-restart-app format, unchanged).
//! services:
//!   - kind: Deployment
//!     name: web
//!     namespace: shop
//! # Allowlisted workloads restarted in order.
//! restartSets:
//!   - name: shop
//!     members: [Deployment/shop/web]
//! # Node reboots.
//! fleetlock:
//!   groups:
//!     default: {slots: 1}
//!     workers:
//!       slots: 2
//!       windows: [{days: [mon-fri], start: "22:00", end: "04:00", timeZone: Europe/Berlin}]
//!   drain:
//!     timeout: 1h
//! ```

mod notifications;

use std::path::{Path, PathBuf};

use fleetlock_core::{FleetLockConfig, InvalidConfig};
use restart_core::sets::{InvalidSet, SetEntry, check_sets};
use restart_core::{Allowlist, AllowlistError, RestartSet, ServiceEntry};
use serde::Deserialize;

pub use notifications::{EVENTS, NotificationsConfig, SinkConfig, SinkFormat, wants};

/// The namespace of the locks (and the leader election) when nothing else names one.
pub const DEFAULT_NAMESPACE: &str = "restart-manager";

/// Everything the configuration file can say.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The restart allowlist, in the k8s-restart-app format.
    #[serde(default)]
    pub services: Vec<ServiceEntry>,
    /// Named, ordered lists of allowlisted workloads restarted together.
    #[serde(default, rename = "restartSets")]
    pub restart_sets: Vec<SetEntry>,
    /// Node reboots; `fleetlock.namespace` is also where the restart locks live.
    #[serde(default)]
    pub fleetlock: FleetLockConfig,
    /// Where reboot and restart transitions are sent.
    #[serde(default)]
    pub notifications: NotificationsConfig,
}

/// A configuration that cannot be used; every variant names where it came from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not YAML of this shape (the message names the line and the field).
    #[error("{origin}: {message}")]
    Syntax {
        /// The file, or what the text came from.
        origin: String,
        /// What the parser said.
        message: String,
    },
    /// The `fleetlock` section does not make sense.
    #[error("{origin}: fleetlock: {source}")]
    FleetLock {
        /// The file, or what the text came from.
        origin: String,
        /// Which setting and why.
        source: InvalidConfig,
    },
    /// The `notifications` section does not make sense.
    #[error("{origin}: {message}")]
    Notifications {
        /// The file, or what the text came from.
        origin: String,
        /// Which sink and why.
        message: String,
    },
    /// The allowlist does not make sense.
    #[error("{origin}: {source}")]
    Allowlist {
        /// The file, or what the text came from.
        origin: String,
        /// Which entry and why.
        source: AllowlistError,
    },
    /// A restart set does not make sense.
    #[error("{origin}: {source}")]
    Sets {
        /// The file, or what the text came from.
        origin: String,
        /// Which set and why.
        source: InvalidSet,
    },
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

// === impl FileConfig ===

impl FileConfig {
    /// Parses and checks a configuration file's text (`origin` names it in errors): the
    /// syntax, the `fleetlock` section and the allowlist, as the server checks at start-up.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: FileConfig = if text.trim().is_empty() {
            FileConfig::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| ConfigError::Syntax {
                origin: origin.to_string(),
                message: e.to_string(),
            })?
        };
        config
            .fleetlock
            .validate()
            .map_err(|source| ConfigError::FleetLock {
                origin: origin.to_string(),
                source,
            })?;
        if let Some(message) = config.notifications.problem() {
            return Err(ConfigError::Notifications {
                origin: origin.to_string(),
                message,
            });
        }
        let allowlist = config
            .allowlist()
            .map_err(|source| ConfigError::Allowlist {
                origin: origin.to_string(),
                source,
            })?;
        check_sets(config.restart_sets.clone(), &allowlist).map_err(|source| {
            ConfigError::Sets {
                origin: origin.to_string(),
                source,
            }
        })?;
        Ok(config)
    }

    /// Reads and checks the file. A missing file is fine (the defaults) only when it is not
    /// `explicit`ly named.
    pub fn load(path: &Path, explicit: bool) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                tracing::info!(path = %path.display(), "no configuration file; using defaults");
                Ok(FileConfig::default())
            }
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The restart allowlist.
    pub fn allowlist(&self) -> Result<Allowlist, AllowlistError> {
        Allowlist::new(self.services.clone())
    }

    /// The restart sets, checked against the allowlist.
    pub fn sets(&self, allowlist: &Allowlist) -> Result<Vec<RestartSet>, InvalidSet> {
        check_sets(self.restart_sets.clone(), allowlist)
    }

    /// The namespace of the locks, settled by one rule everywhere: `explicit` (a command-line
    /// flag) if given, else the file's own `fleetlock.namespace` if it names one, else the
    /// namespace the server runs in (`POD_NAMESPACE`), else [`DEFAULT_NAMESPACE`].
    pub fn lock_namespace(&self, explicit: Option<&str>, running_in: Option<&str>) -> String {
        let configured = self.fleetlock.namespace.as_str();
        explicit
            .or((configured != DEFAULT_NAMESPACE).then_some(configured))
            .or(running_in)
            .unwrap_or(configured)
            .to_string()
    }

    /// Settles the namespace of the locks by [`lock_namespace`](Self::lock_namespace) and
    /// writes it into the configuration, where both services read it.
    pub fn settle_namespace(&mut self, explicit: Option<&str>, running_in: Option<&str>) {
        self.fleetlock.namespace = self.lock_namespace(explicit, running_in);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_config_loads_unchanged() {
        let config = FileConfig::parse(
            "services:\n  - kind: Deployment # a comment\n    name: my-deployment\n    namespace: my-namespace\n",
            "config.yaml",
        )
        .unwrap();
        assert_eq!(config.services.len(), 1);
        assert_eq!(config.allowlist().unwrap().len(), 1);
        assert_eq!(config.fleetlock, FleetLockConfig::default());
    }

    #[test]
    fn restart_sets_load_and_a_bad_one_names_itself() {
        let services = "services:\n  - {kind: Deployment, name: api, namespace: shop}\n  - {kind: Deployment, name: web, namespace: shop}\n";
        let config = FileConfig::parse(
            &format!("{services}restartSets:\n  - name: shop\n    members: [deploy/shop/api, Deployment/shop/web]\n    concurrency: 2\n    onFailure: continue\n"),
            "c.yaml",
        )
        .unwrap();
        let sets = config.sets(&config.allowlist().unwrap()).unwrap();
        assert_eq!(sets[0].members.len(), 2);
        assert_eq!(sets[0].concurrency, 2);
        assert_eq!(sets[0].on_failure, restart_core::sets::OnFailure::Continue);

        let err = FileConfig::parse(
            &format!("{services}restartSets:\n  - name: shop\n    members: [Deployment/shop/db]\n"),
            "c.yaml",
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::Sets { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "c.yaml: restartSets[0]: the set shop: member Deployment/shop/db is not in services (only allowlisted workloads may be in a set)"
        );
        let err = FileConfig::parse(
            &format!("{services}restartSets:\n  - name: shop\n    members: [Deployment/shop/web]\n    onFailure: retry\n"),
            "c.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("retry") && err.contains("line 7"), "{err}");

        // Schedules on a workload and on a set.
        let config = FileConfig::parse(
            "services:\n  - {kind: Deployment, name: web, namespace: shop, schedule: {cron: \"0 3 * * *\", timeZone: Europe/Berlin}}\nrestartSets:\n  - name: shop\n    members: [Deployment/shop/web]\n    schedule: {cron: \"@weekly\", startingDeadline: 15m}\n",
            "c.yaml",
        )
        .unwrap();
        let allowlist = config.allowlist().unwrap();
        let web = allowlist.iter().next().unwrap();
        assert_eq!(
            web.schedule.as_ref().unwrap().cron.to_string(),
            "0 3 * * * Europe/Berlin"
        );
        let sets = config.sets(&allowlist).unwrap();
        let weekly = sets[0].schedule.as_ref().unwrap();
        assert_eq!(
            weekly.starting_deadline,
            std::time::Duration::from_secs(900)
        );
        let err = FileConfig::parse(
            "services:\n  - {kind: Deployment, name: web, namespace: shop, schedule: {cron: \"0 25 * * *\"}}\n",
            "c.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("hour: 25 is outside 0-23") && err.contains("line 2"),
            "{err}"
        );

        // Restarts on configuration changes, with a debounce or without.
        let config = FileConfig::parse(
            "services:\n  - {kind: Deployment, name: web, namespace: shop, restartOnConfigChange: true}\n  - {kind: Deployment, name: api, namespace: shop, restartOnConfigChange: {debounce: 2m}}\n",
            "c.yaml",
        )
        .unwrap();
        let triggers: Vec<_> = config
            .allowlist()
            .unwrap()
            .iter()
            .map(|a| a.config_trigger.map(|t| t.debounce.as_secs()))
            .collect();
        assert_eq!(triggers, [Some(30), Some(120)]);
    }

    #[test]
    fn bad_allowlists_fail_naming_the_line() {
        let err = FileConfig::parse(
            "services:\n  - kind: Job\n    name: a\n    namespace: b\n",
            "c.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("c.yaml") && err.contains("\"Job\"") && err.contains("line 2"),
            "{err}"
        );
        let err = FileConfig::parse("services:\n  - {kind: Deployment, name: a, namespace: b}\n  - {kind: Deployment, name: a, namespace: b}\n", "c.yaml")
            .unwrap_err();
        assert!(matches!(err, ConfigError::Allowlist { .. }), "{err}");
        let err = err.to_string();
        assert!(
            err.contains("services[1]") && err.contains("listed twice"),
            "{err}"
        );
    }

    #[test]
    fn fleetlock_settings_are_read_and_checked() {
        let config = FileConfig::parse(
            "fleetlock:\n  groups:\n    workers:\n      slots: 3\n      minGap: 10m\n  drain:\n    timeout: 45m\n    onTimeout: release\n",
            "c.yaml",
        )
        .unwrap();
        assert_eq!(config.fleetlock.groups["workers"].slots, 3);
        assert_eq!(config.fleetlock.drain.timeout.as_secs(), 45 * 60);

        let err = FileConfig::parse(
            "fleetlock:\n  groups:\n    workers:\n      slot: 3\n",
            "c.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("c.yaml") && err.contains("slot"), "{err}");
        assert!(err.contains("line 4"), "{err}");

        let err = FileConfig::parse("fleetlock:\n  groups:\n    workers: {slots: 0}\n", "c.yaml")
            .unwrap_err();
        assert!(matches!(err, ConfigError::FleetLock { .. }), "{err}");
        assert!(
            err.to_string().contains("slots must be at least 1"),
            "{err}"
        );

        let err = FileConfig::parse(
            "fleetlock:\n  groups:\n    w:\n      windows: [{start: \"25:00\", end: \"04:00\"}]\n",
            "c.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("\"25:00\""), "{err}");
    }

    #[test]
    fn the_lock_namespace_is_settled_by_one_rule() {
        let default = FileConfig::default();
        assert_eq!(default.lock_namespace(None, None), DEFAULT_NAMESPACE);
        assert_eq!(default.lock_namespace(None, Some("ops")), "ops");
        assert_eq!(default.lock_namespace(Some("flag"), Some("ops")), "flag");
        let named = FileConfig::parse("fleetlock:\n  namespace: locks\n", "c.yaml").unwrap();
        assert_eq!(
            named.lock_namespace(None, Some("ops")),
            "locks",
            "the file's own namespace beats where the server runs"
        );
        assert_eq!(named.lock_namespace(Some("flag"), None), "flag");
        let mut settled = default.clone();
        settled.settle_namespace(None, Some("ops"));
        assert_eq!(settled.fleetlock.namespace, "ops");
    }

    #[test]
    fn a_missing_file_is_the_defaults_only_when_not_named() {
        let missing = Path::new("/nonexistent/restart-manager/config.yaml");
        assert!(
            FileConfig::load(missing, false)
                .unwrap()
                .services
                .is_empty()
        );
        let err = FileConfig::load(missing, true).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
        assert!(
            err.to_string().contains("cannot read /nonexistent"),
            "{err}"
        );
    }
}
