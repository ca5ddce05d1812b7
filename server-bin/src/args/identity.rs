//! Who this replica is.

use clap::Args as ClapArgs;

/// Who this replica is (from the downward API).
#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "Identity")]
pub struct IdentityArgs {
    /// This pod's name: recorded on slots and Events, and never evicted before the others on
    /// its node.
    #[arg(long = "pod-name", env = "POD_NAME")]
    pub pod_name: Option<String>,

    /// This pod's namespace; also where the lock Leases live unless the config file says
    /// otherwise.
    #[arg(long = "pod-namespace", env = "POD_NAMESPACE")]
    pub pod_namespace: Option<String>,
}

/// This replica's name in leader elections, slots, restart ids and Events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `POD_NAME` (`--pod-name`), trimmed; or, when that is unset or blank,
    /// `restart-manager-` and 8 random hex digits (see `random`).
    pub name: String,
    /// Made up at start (`restart-manager-` and a random suffix) because no `POD_NAME` was
    /// given: unique, but not the pod's name, so Events and Leases do not lead to the pod.
    pub random: bool,
}

impl IdentityArgs {
    /// The pod's name from the downward API, or else a random one. (The process id is no
    /// name: in a container every replica is PID 1.)
    pub fn instance(&self) -> Instance {
        use std::hash::BuildHasher;
        match self.pod_name.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => Instance {
                name: name.to_string(),
                random: false,
            },
            _ => {
                // Seeded from the operating system's randomness, and different on every call.
                let suffix = std::collections::hash_map::RandomState::new().hash_one(0u8);
                Instance {
                    name: format!("restart-manager-{:08x}", suffix as u32),
                    random: true,
                }
            }
        }
    }
}
