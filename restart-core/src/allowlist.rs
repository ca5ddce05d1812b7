//! Which workloads may be restarted, and by whom.
//!
//! The file format is k8s-restart-app's, unchanged, with optional extra fields:
//!
//! ```yaml
//! services:
//!   - kind: Deployment          # Deployment, StatefulSet or DaemonSet
//!     name: web
//!     namespace: shop
//!     description: The shop's storefront   # optional: shown on the page
//!     allowed: [alice, group:shop-team]    # optional: who may restart it (default: anyone
//!                                          # who may use the service)
//! ```

use std::collections::BTreeSet;
use std::fmt;

use cluster_api::window::Window;

use crate::schedule::Schedule;
use crate::trigger::ConfigTrigger;
use cluster_api::{WorkloadKind, WorkloadRef};
use serde::{Deserialize, Deserializer, Serialize};

/// One allowlist entry, as written in the file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceEntry {
    /// `Deployment`, `StatefulSet` or `DaemonSet` (kubectl's short names work too).
    #[serde(deserialize_with = "kind")]
    pub kind: WorkloadKind,
    /// The workload's name.
    pub name: String,
    /// The workload's namespace; like `name`, [`Allowlist::new`] refuses one Kubernetes would.
    pub namespace: String,
    /// A sentence for the page.
    #[serde(default)]
    pub description: Option<String>,
    /// Who may restart it: user names, or `group:<name>`. Empty means anyone who may use the
    /// service at all.
    #[serde(default)]
    pub allowed: Vec<String>,
    /// When it may be restarted (`{days: [mon-fri], start: "09:00", end: "17:00", timeZone:
    /// Europe/Berlin}`); any time when empty. Outside them only a caller with the `unlock`
    /// right who gives a reason may restart it.
    #[serde(default)]
    pub windows: Vec<Window>,
    /// When it is restarted by itself (`{cron: "0 3 * * *", timeZone: Europe/Berlin}`).
    #[serde(default)]
    pub schedule: Option<Schedule>,
    /// Restart it when a ConfigMap or Secret its pods use changes (`true`, or `{debounce:
    /// 2m}`); see [`crate::trigger`].
    #[serde(
        default,
        rename = "restartOnConfigChange",
        deserialize_with = "crate::trigger::opt_in"
    )]
    pub restart_on_config_change: Option<ConfigTrigger>,
}

impl ServiceEntry {
    /// An entry for `workload`: no description, anyone who may use the service may restart
    /// it.
    pub fn new(workload: WorkloadRef) -> Self {
        ServiceEntry {
            kind: workload.kind,
            name: workload.name,
            namespace: workload.namespace,
            description: None,
            allowed: Vec::new(),
            windows: Vec::new(),
            schedule: None,
            restart_on_config_change: None,
        }
    }
}

fn kind<'de, D: Deserializer<'de>>(d: D) -> Result<WorkloadKind, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

/// Who is asking: what authentication established.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Identity {
    /// The user name recorded on locks and in the audit trail.
    pub user: String,
    /// The user's groups.
    pub groups: Vec<String>,
    /// A unique id from the authenticator (a Kubernetes user's uid); empty when none. Not
    /// recorded: it only makes later access reviews name the same person.
    #[serde(skip)]
    pub uid: String,
    /// What else the authenticator said about the user (Kubernetes `extra`), passed on to
    /// access reviews; not recorded.
    #[serde(skip)]
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

impl Identity {
    /// A user with no groups.
    pub fn user(name: impl Into<String>) -> Self {
        Identity {
            user: name.into(),
            groups: Vec::new(),
            uid: String::new(),
            extra: Default::default(),
        }
    }

    /// Whether the identity matches `user` or `group:<name>`.
    pub fn matches(&self, subject: &str) -> bool {
        match subject.strip_prefix("group:") {
            Some(group) => self.groups.iter().any(|g| g == group),
            None => self.user == subject,
        }
    }

    /// Whether the identity matches any of `subjects`.
    pub fn is_any_of(&self, subjects: &[String]) -> bool {
        subjects.iter().any(|s| self.matches(s))
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.user)
    }
}

/// An allowlisted workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Allowed {
    /// The workload, serialized as its `kind`, `namespace` and `name` side by side.
    #[serde(flatten)]
    pub workload: WorkloadRef,
    /// The entry's `description`, for the page; `None` when the file gives none.
    pub description: Option<String>,
    /// Who may restart it (empty: anyone who may use the service).
    pub allowed: Vec<String>,
    /// When it may be restarted (empty: any time).
    #[serde(skip)]
    pub windows: Vec<Window>,
    /// When it is restarted by itself.
    #[serde(skip)]
    pub schedule: Option<Schedule>,
    /// Whether (and after how long a quiet time) a configuration change restarts it.
    #[serde(skip)]
    pub config_trigger: Option<ConfigTrigger>,
}

/// The allowlist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    entries: Vec<Allowed>,
}

/// An allowlist that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("services[{index}]: {message}")]
pub struct AllowlistError {
    /// The entry's position in the list.
    pub index: usize,
    /// What is wrong.
    pub message: String,
}

impl Allowlist {
    /// Builds the allowlist, refusing duplicates and names Kubernetes would refuse.
    pub fn new(entries: Vec<ServiceEntry>) -> Result<Self, AllowlistError> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::with_capacity(entries.len());
        for (index, e) in entries.into_iter().enumerate() {
            let err = |message: String| AllowlistError { index, message };
            for (what, value) in [("name", &e.name), ("namespace", &e.namespace)] {
                if !cluster_api::is_object_name(value) {
                    return Err(err(format!(
                        "{what} {value:?} is not a valid Kubernetes name"
                    )));
                }
            }
            let workload = WorkloadRef::new(e.kind, e.namespace, e.name);
            if !seen.insert(workload.clone()) {
                return Err(err(format!("{workload} is listed twice")));
            }
            out.push(Allowed {
                workload,
                description: e.description,
                allowed: e.allowed,
                windows: e.windows,
                schedule: e.schedule,
                config_trigger: e.restart_on_config_change,
            });
        }
        Ok(Allowlist { entries: out })
    }

    /// The entry for a workload, if it is allowlisted.
    pub fn get(&self, workload: &WorkloadRef) -> Option<&Allowed> {
        self.entries.iter().find(|a| &a.workload == workload)
    }

    /// Every entry, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &Allowed> {
        self.entries.iter()
    }

    /// How many workloads are allowlisted.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is allowlisted.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        services: Vec<ServiceEntry>,
    }

    fn parse(yaml: &str) -> Result<Allowlist, String> {
        let file: File = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
        Allowlist::new(file.services).map_err(|e| e.to_string())
    }

    #[test]
    fn the_seed_format_loads_and_daemonsets_too() {
        let list = parse(
            "services:\n  - kind: Deployment # The kind\n    name: my-deployment\n    namespace: my-namespace\n  - kind: DaemonSet\n    name: agent\n    namespace: kube-system\n    description: Node agent\n    allowed: [alice, group:sre]\n",
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        let agent = list.iter().nth(1).unwrap();
        assert_eq!(agent.workload.kind, WorkloadKind::DaemonSet);
        assert_eq!(agent.description.as_deref(), Some("Node agent"));
    }

    #[test]
    fn bad_entries_name_the_line_or_the_entry() {
        let err =
            parse("services:\n  - kind: CronJob\n    name: a\n    namespace: b\n").unwrap_err();
        assert!(err.contains("CronJob") && err.contains("line 2"), "{err}");
        let err =
            parse("services:\n  - kind: Deployment\n    name: a\n    namespace: b\n    nmae: x\n")
                .unwrap_err();
        assert!(err.contains("nmae") && err.contains("line 5"), "{err}");
        let err = parse("services:\n  - {kind: Deployment, name: a, namespace: b}\n  - {kind: deploy, name: a, namespace: b}\n").unwrap_err();
        assert_eq!(err, "services[1]: Deployment/b/a is listed twice");
        let err =
            parse("services:\n  - {kind: Deployment, name: Web, namespace: b}\n").unwrap_err();
        assert!(
            err.contains("\"Web\" is not a valid Kubernetes name"),
            "{err}"
        );
    }

    #[test]
    fn identities_match_users_and_groups() {
        let alice = Identity {
            groups: vec!["sre".into()],
            ..Identity::user("alice")
        };
        assert!(alice.matches("alice"));
        assert!(alice.matches("group:sre"));
        assert!(!alice.matches("group:alice"));
        assert!(!alice.matches("sre"));
    }
}
