//! The configuration file.
//!
//! ```yaml
//! # The workloads that may be restarted (the k8s-restart-app format, unchanged).
//! services:
//!   - kind: Deployment
//!     name: web
//!     namespace: shop
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

use std::path::Path;

use anyhow::{Context, Result};
use fleetlock_core::FleetLockConfig;
use restart_core::{Allowlist, ServiceEntry};
use serde::Deserialize;

/// Everything the configuration file can say.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The restart allowlist, in the k8s-restart-app format.
    #[serde(default)]
    pub services: Vec<ServiceEntry>,
    /// Node reboots.
    #[serde(default)]
    pub fleetlock: FleetLockConfig,
}

impl FileConfig {
    /// Parses and checks a configuration file's text. Errors name the line and the field.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let config: FileConfig = if text.trim().is_empty() {
            FileConfig::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?
        };
        config
            .fleetlock
            .validate()
            .map_err(|e| anyhow::anyhow!("{origin}: fleetlock: {e}"))?;
        config
            .allowlist()
            .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        Ok(config)
    }

    /// The restart allowlist.
    pub fn allowlist(&self) -> Result<Allowlist, restart_core::AllowlistError> {
        Allowlist::new(self.services.clone())
    }

    /// Reads the file. A missing file is fine only when it is the default one.
    pub fn load(path: &Path, explicit: bool) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                tracing::info!(path = %path.display(), "no configuration file; using defaults");
                Ok(FileConfig::default())
            }
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
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
    fn bad_allowlists_fail_at_start_up_naming_the_line() {
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
            .unwrap_err()
            .to_string();
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
            .unwrap_err()
            .to_string();
        assert!(err.contains("slots must be at least 1"), "{err}");

        let err = FileConfig::parse(
            "fleetlock:\n  groups:\n    w:\n      windows: [{start: \"25:00\", end: \"04:00\"}]\n",
            "c.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("\"25:00\""), "{err}");
    }
}
