//! What the benches share: the simulated cluster behind its API endpoint, the server's
//! adapter connected to it as in production, and the process's memory.

use std::path::PathBuf;

use cluster_sim::SimCluster;
use cluster_sim::apiserver::{ApiServer, Running};
use k8s_adapter::{KubeCluster, KubeOptions};

/// A simulated cluster served over HTTPS, with a kubeconfig for it in a directory removed at
/// the end.
pub(crate) struct Endpoint {
    #[allow(dead_code, reason = "a bench that only keeps it alive never reads it")]
    pub(crate) running: Running,
    pub(crate) kubeconfig: PathBuf,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(dir) = self.kubeconfig.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Serves `sim` on a free port of 127.0.0.1 and writes its kubeconfig.
pub(crate) async fn serve(sim: &SimCluster) -> Endpoint {
    let running = ApiServer::new(sim.clone())
        .serve_on_localhost()
        .await
        .expect("the endpoint starts");
    let dir = std::env::temp_dir().join(format!(
        "restart-manager-bench-{}-{}",
        std::process::id(),
        running.addr().port()
    ));
    let kubeconfig = running.write_kubeconfig(&dir).expect("the kubeconfig");
    Endpoint {
        running,
        kubeconfig,
    }
}

/// The adapter on a kubeconfig, with the options `restart-manager` runs with.
pub(crate) async fn connect(kubeconfig: &std::path::Path) -> KubeCluster {
    let options = KubeOptions {
        node_metadata_prefixes: Some(vec![restart_manager::server::NODE_METADATA_PREFIX.into()]),
        ..KubeOptions::default()
    };
    KubeCluster::connect(Some(kubeconfig), None, options)
        .await
        .expect("the adapter connects")
}

/// A field of /proc/self/status in KiB (`VmRSS:`, `VmHWM:`); 0 where there is none.
#[allow(dead_code, reason = "only some benches report memory")]
pub(crate) fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
