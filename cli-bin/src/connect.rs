//! The backend the flags choose: a server's API (`--server`), or the cluster directly with
//! restart-manager's configuration.

use std::sync::Arc;

use cluster_api::SystemClock;
use restart_core::Identity;

use crate::backend::{Backend, CliError, Exit};
use crate::cli::{Cli, Command, parse_workload};
use crate::output::Io;
use crate::{direct, output, remote};

/// The bearer token for `--server`: from `--token-file` first, then `RESTARTCTL_TOKEN` or
/// `--token`; a token typed on the command line is warned about (other users see it in `ps`).
fn server_token(cli: &Cli, io: &mut Io<'_>) -> Result<Option<String>, CliError> {
    if let Some(path) = &cli.token_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::new(
                Exit::Usage,
                format!("cannot read the token file {}: {e}", path.display()),
            )
        })?;
        return Ok(Some(text.trim().to_string()));
    }
    let Some(token) = &cli.token else {
        return Ok(None);
    };
    if std::env::var("RESTARTCTL_TOKEN").ok().as_ref() != Some(token) {
        let _ = writeln!(
            io.err,
            "warning: a token given with --token can be read by other users of this machine \
             (ps, shell history); prefer --token-file or RESTARTCTL_TOKEN"
        );
    }
    Ok(Some(token.clone()))
}

/// The backend `cli` asks for, connected.
pub(crate) async fn connect(cli: &Cli, io: &mut Io<'_>) -> Result<Box<dyn Backend>, CliError> {
    if let Some(server) = &cli.server {
        let token = server_token(cli, io)?;
        let remote = remote::Remote::new(server, token)?;
        if let Some(warning) = remote.exposure_warning() {
            let _ = writeln!(io.err, "warning: {}", output::clean(&warning));
        }
        return Ok(Box::new(remote));
    }
    let kube = k8s_adapter::KubeCluster::connect(
        cli.kubeconfig.as_deref(),
        cli.context.as_deref(),
        k8s_adapter::KubeOptions::default(),
    )
    .await
    .map_err(|e| {
        CliError::new(Exit::Failure, e.to_string())
            .hint("pass --kubeconfig, or --server to go through a running restart-manager")
    })?;
    let text = match &cli.config {
        Some(path) => std::fs::read_to_string(path).map_err(|e| {
            CliError::new(Exit::Usage, format!("cannot read {}: {e}", path.display()))
        })?,
        None => read_configmap(&kube, &cli.manager_namespace).await?,
    };
    let mut config = manager_config::FileConfig::parse(&text, "restart-manager's configuration")
        .map_err(|e| CliError::new(Exit::Usage, e.to_string()))?;
    // The locks are where the server keeps them: the file's namespace if it names one, else
    // the namespace the server runs in.
    config.settle_namespace(None, Some(&cli.manager_namespace));
    let user = cli
        .identity
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "restartctl".into());
    let follow = match &cli.command {
        Command::Restart {
            wait: true,
            workload,
            set,
            ..
        } => match set {
            Some(name) => direct::Follow::Set(name.clone()),
            None => direct::Follow::Workload(parse_workload(workload, &cli.namespace)?),
        },
        _ => direct::Follow::Nothing,
    };
    Ok(Box::new(direct::Direct::start(
        Arc::new(kube),
        Arc::new(SystemClock),
        config,
        Identity::user(user),
        follow,
    )?))
}

/// restart-manager's configuration, from its ConfigMap in `namespace`.
async fn read_configmap(
    kube: &k8s_adapter::KubeCluster,
    namespace: &str,
) -> Result<String, CliError> {
    use k8s_openapi::api::core::v1::ConfigMap;
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(kube.client(), namespace);
    let cm = api.get("restart-manager").await.map_err(|e| {
        CliError::new(
            Exit::Failure,
            format!("cannot read the ConfigMap restart-manager in namespace {namespace}: {e}"),
        )
        .hint("pass --config with restart-manager's configuration file, or --manager-namespace")
    })?;
    cm.data
        .and_then(|d| d.get("config.yaml").cloned())
        .ok_or_else(|| {
            CliError::new(
                Exit::Failure,
                format!("the ConfigMap restart-manager in {namespace} has no config.yaml"),
            )
        })
}
