//! What the benches share: the simulated cluster behind its API endpoint, the server's
//! adapter connected to it as in production, and the process's memory.

use cluster_sim::SimCluster;
use cluster_sim::apiserver::{ApiServer, KubeconfigDir, Running};
use k8s_adapter::{KubeCluster, KubeOptions};

/// A simulated cluster served over HTTPS, with a kubeconfig for it in a directory removed at
/// the end.
pub(crate) struct Endpoint {
    #[allow(dead_code, reason = "a bench that only keeps it alive never reads it")]
    pub(crate) running: Running,
    pub(crate) kubeconfig: KubeconfigDir,
}

/// Serves `sim` on a free port of 127.0.0.1 and writes its kubeconfig.
pub(crate) async fn serve(sim: &SimCluster) -> Endpoint {
    let running = ApiServer::new(sim.clone())
        .serve_on_localhost()
        .await
        .expect("the endpoint starts");
    let kubeconfig = running.temp_kubeconfig().expect("the kubeconfig");
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

/// CPU time (user and system) a process has used so far, from /proc/<pid>/stat (`self` for
/// this one), in seconds; its clock ticks are USER_HZ, which Linux fixes at 100.
#[allow(dead_code, reason = "only some benches report CPU time")]
pub(crate) fn cpu_seconds(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let fields: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}
