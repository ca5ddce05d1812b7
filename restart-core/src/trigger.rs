//! Restarts on a configuration change: a workload that opts in is restarted when a ConfigMap
//! or Secret its pods use changes, once the changes have settled.
//!
//! ```yaml
//! services:
//!   - {kind: Deployment, namespace: shop, name: web, restartOnConfigChange: true}
//!   - {kind: Deployment, namespace: shop, name: api, restartOnConfigChange: {debounce: 2m}}
//! ```
//!
//! What the pods last started with is recorded on the workload's lock Lease (the
//! [`DIGESTS_ANNOTATION`]: each referenced object's data digest), so every replica, and the
//! next leader after a crash, compares against the same record; the restart carries an id
//! derived from the digests it restarts for, so it happens once however many replicas see
//! the change.

use std::collections::BTreeMap;
use std::time::Duration;

use cluster_api::{ConfigRef, config_digest};
use serde::{Deserialize, Deserializer};

/// The annotation on a workload's lock Lease with the digests its pods last started with.
pub const DIGESTS_ANNOTATION: &str = "restart-manager.io/config-digests";
/// The annotation on a workload's lock Lease with the fingerprint of its pod template's
/// annotations when the digests were recorded ([`template_fingerprint`]): a template changed
/// since (a Helm `checksum/config`, a `restartedAt`) rolled the pods out on the configuration
/// as it was then.
pub const TEMPLATE_ANNOTATION: &str = "restart-manager.io/config-template";

/// How long a workload waits after the last change before it restarts, unless configured.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_secs(30);

/// The digest recorded for a referenced object that does not exist.
const ABSENT: &str = "absent";

/// A workload's opt-in: `restartOnConfigChange: true`, or `{debounce: 2m}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigTrigger {
    /// How long after the last change the restart waits (changes made one after another
    /// restart once).
    pub debounce: Duration,
}

impl Default for ConfigTrigger {
    fn default() -> Self {
        ConfigTrigger {
            debounce: DEFAULT_DEBOUNCE,
        }
    }
}

/// Reads `restartOnConfigChange`: `true`, `false` (absent), or `{debounce: ...}`.
pub fn opt_in<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ConfigTrigger>, D::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        #[serde(deserialize_with = "cluster_api::duration::duration")]
        debounce: Duration,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        On(bool),
        With(Settings),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::On(false) => None,
        Raw::On(true) => Some(ConfigTrigger::default()),
        Raw::With(s) => Some(ConfigTrigger {
            debounce: s.debounce,
        }),
    })
}

/// The digests of what a workload references, by reference (`ConfigMap web-config`), as
/// recorded: a missing object as `absent`.
pub type Digests = BTreeMap<String, String>;

/// The digests of `refs`, `digest_of` giving each existing object's.
pub fn digests<'a>(
    refs: &[ConfigRef],
    digest_of: impl Fn(&ConfigRef) -> Option<&'a str>,
) -> Digests {
    refs.iter()
        .map(|r| {
            let digest = digest_of(r).unwrap_or(ABSENT);
            (r.to_string(), digest.to_string())
        })
        .collect()
}

/// What changed between the recorded digests and the current ones: the references whose
/// digest differs (an object created or deleted included). A reference the template started
/// or stopped making is no change: the template change rolled the pods already.
pub fn changed(recorded: &Digests, now: &Digests) -> Vec<String> {
    now.iter()
        .filter(|(r, d)| recorded.get(*r).is_some_and(|was| was != *d))
        .map(|(r, _)| r.clone())
        .collect()
}

/// The restart id for restarting to these digests: the same on every replica.
pub fn restart_id(now: &Digests) -> String {
    let fingerprint = config_digest(now.iter().map(|(r, d)| (r.as_str(), d.as_bytes())));
    format!("config-{}", &fingerprint[..16])
}

/// A fingerprint of a pod template's annotations: the same on every replica.
pub fn template_fingerprint(annotations: &BTreeMap<String, String>) -> String {
    let fingerprint = config_digest(annotations.iter().map(|(k, v)| (k.as_str(), v.as_bytes())));
    fingerprint.chars().take(16).collect()
}

/// The recorded digests as the annotation holds them, if they can be read.
pub fn parse(annotation: &str) -> Option<Digests> {
    serde_json::from_str(annotation).ok()
}

/// The digests as the annotation holds them.
pub fn render(digests: &Digests) -> String {
    serde_json::to_string(digests).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_what_differs_from_the_record() {
        let refs = [ConfigRef::config_map("web"), ConfigRef::secret("db")];
        let before = digests(&refs, |r| Some(if r.name == "web" { "a" } else { "b" }));
        assert_eq!(before["ConfigMap web"], "a");
        assert!(changed(&before, &before).is_empty());
        let now = digests(&refs, |r| (r.name == "web").then_some("c"));
        assert_eq!(changed(&before, &now), ["ConfigMap web", "Secret db"]);
        assert_eq!(now["Secret db"], "absent");
        // A reference the template drops or adds is no change (the template rolled the pods).
        let fewer = digests(&refs[..1], |_| Some("a"));
        assert!(changed(&before, &fewer).is_empty());
        let more = digests(&[ConfigRef::config_map("extra")], |_| Some("x"));
        assert!(changed(&before, &more).is_empty());
        // An object that was missing and now exists is.
        let created = digests(&refs, |_| Some("c"));
        assert_eq!(changed(&now, &created), ["Secret db"]);
        // The same digests, the same id, on any replica; the record reads back.
        assert_eq!(restart_id(&now), restart_id(&now.clone()));
        assert_ne!(restart_id(&now), restart_id(&before));
        assert!(restart_id(&now).starts_with("config-"));
        assert_eq!(parse(&render(&now)), Some(now));
        assert_eq!(parse("not json"), None);
    }

    #[test]
    fn the_opt_in_reads_as_a_flag_or_with_a_debounce() {
        #[derive(Deserialize)]
        struct Entry {
            #[serde(default, deserialize_with = "opt_in")]
            trigger: Option<ConfigTrigger>,
        }
        let read = |yaml: &str| serde_saphyr::from_str::<Entry>(yaml).map(|e| e.trigger);
        assert_eq!(
            read("trigger: true\n").unwrap(),
            Some(ConfigTrigger::default())
        );
        assert_eq!(read("trigger: false\n").unwrap(), None);
        assert_eq!(read("{}\n").unwrap(), None);
        assert_eq!(
            read("trigger: {debounce: 2m}\n").unwrap(),
            Some(ConfigTrigger {
                debounce: Duration::from_secs(120)
            })
        );
        assert!(read("trigger: {debounce: soon}\n").is_err());
        assert!(read("trigger: yes please\n").is_err());
    }
}
