//! `restart-manager rbac`.

use clap::Args as ClapArgs;

/// What the binary can do besides serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Print the RBAC objects (YAML) the configuration's allowlist needs.
    ///
    /// The allowlist's kinds are read in their namespaces and each workload is patched by
    /// name; nothing else on workloads. Run it again whenever the allowlist changes: the
    /// server checks these rights at start-up and names any that are missing.
    Rbac(RbacArgs),
}

/// `restart-manager rbac`.
#[derive(Debug, Clone, ClapArgs)]
pub struct RbacArgs {
    /// Only the Roles and RoleBindings of the allowlisted workloads' namespaces: what
    /// `deploy/kustomize/components/workload-roles` adds to the base, which holds the rest.
    #[arg(long)]
    pub workloads_only: bool,

    /// The namespace the server runs in (its Leases live there). Default: the configuration
    /// file's `fleetlock.namespace`, else `POD_NAMESPACE`, else `restart-manager`.
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,

    /// The ServiceAccount the server runs as.
    #[arg(long, default_value = "restart-manager")]
    pub service_account: String,

    /// The name of the Roles (and `<name>-workloads` in the workloads' namespaces).
    #[arg(long, default_value = "restart-manager")]
    pub name: String,
}
