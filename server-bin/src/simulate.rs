//! `--simulate`: the real server on an embedded simulated cluster, with a demo fleet and
//! simulated Zincati agents.
//!
//! Each agent follows Zincati's own cadence: at start-up it reports `steady-state` until that
//! succeeds; when an update is staged it asks `pre-reboot`, and on a refusal asks again after
//! the poll interval plus up to 10% jitter; on approval it reboots its node and, once the node
//! is back, reports `steady-state`. It sends the bytes Zincati sends (pretty-printed JSON, no
//! Content-Type) through the same router that serves real clients, so logs and metrics show
//! exactly what a real fleet would produce.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Body;
use axum::http::Request;
use cluster_sim::{Scenario, SimCluster, SimConfig};
use fleetlock_core::zincati_id;
use http_body_util::BodyExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::args::{Args, SimulationArgs};

/// The demo fleet.
pub const DEMO_SCENARIO: &str = include_str!("demo/scenario.yaml");
/// The configuration used with the demo fleet when no file is given.
pub const DEMO_CONFIG: &str = include_str!("demo/config.yaml");
/// The node label that tells a simulated agent its Zincati group: the one that binds a node
/// to its reboot group.
pub const GROUP_LABEL: &str = fleetlock_core::DEFAULT_GROUP_LABEL;

/// Builds the simulated cluster: the demo fleet, or the scenario file given.
pub fn cluster(args: &SimulationArgs) -> Result<SimCluster> {
    let (text, origin) = match &args.scenario {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (DEMO_SCENARIO.to_string(), "the demo scenario".to_string()),
    };
    let scenario = Scenario::from_yaml(&text).with_context(|| origin.clone())?;
    let config = SimConfig {
        start_time: jiff::Timestamp::now(),
        reboot_duration: args.reboot_time,
        // As a real kubelet does (`nodeStatusReportFrequency`).
        node_status_report: Some(Duration::from_secs(300)),
        ..SimConfig::default()
    };
    SimCluster::from_scenario_with(&scenario, config).with_context(|| origin)
}

/// Starts one simulated Zincati agent per node.
pub fn spawn_agents(sim: &SimCluster, app: Router, args: &Args, stop: watch::Receiver<bool>) {
    let prefix = crate::fleetlock_http::normalize_prefix(&args.fleetlock.prefix);
    for node in sim.nodes() {
        let Ok(id) = zincati_id(&node.machine_id) else {
            tracing::warn!(node = %node.name, "no machine id; no simulated agent");
            continue;
        };
        let agent = Agent {
            sim: sim.clone(),
            app: app.clone(),
            prefix: prefix.clone(),
            group: node
                .labels
                .get(GROUP_LABEL)
                .cloned()
                .unwrap_or_else(|| "default".into()),
            jitter: Jitter::seeded(&node.name),
            node: node.name,
            id,
            interval: args.simulation.agent_interval,
        };
        let mut stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = agent.run() => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        });
    }
}

struct Agent {
    sim: SimCluster,
    app: Router,
    prefix: String,
    node: String,
    id: String,
    group: String,
    interval: Duration,
    jitter: Jitter,
}

impl Agent {
    async fn run(mut self) {
        self.report_steady_state().await;
        loop {
            // Updates land on nodes at different times.
            let staged_in = self.jitter.between(self.interval, self.interval * 8);
            tokio::time::sleep(staged_in).await;
            tracing::info!(node = %self.node, group = %self.group, "zincati: update staged, asking to reboot");
            loop {
                let (status, body) = self.call("pre-reboot").await;
                if (200..300).contains(&status) {
                    break;
                }
                tracing::info!(node = %self.node, status, answer = %body, "zincati: reboot not allowed yet");
                let wait = self.interval + self.jitter.between(Duration::ZERO, self.interval / 10);
                tokio::time::sleep(wait).await;
            }
            tracing::info!(node = %self.node, "zincati: reboot approved, rebooting");
            if self.sim.reboot_node(&self.node).is_err() {
                return;
            }
            // Zincati starts with the operating system, before the kubelet has reported the
            // new boot, and says steady-state at once.
            loop {
                match self.sim.os_up(&self.node) {
                    None => return,
                    Some(true) => break,
                    Some(false) => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            }
            self.report_steady_state().await;
            tracing::info!(node = %self.node, "zincati: back after the update");
            // The next update is a while away.
            tokio::time::sleep(self.jitter.between(self.interval * 20, self.interval * 40)).await;
        }
    }

    async fn report_steady_state(&mut self) {
        loop {
            let (status, body) = self.call("steady-state").await;
            if (200..300).contains(&status) {
                return;
            }
            tracing::warn!(node = %self.node, status, answer = %body, "zincati: steady-state refused");
            tokio::time::sleep(self.interval).await;
        }
    }

    /// One FleetLock request, with Zincati's bytes.
    async fn call(&self, endpoint: &str) -> (u16, String) {
        let body = format!(
            "{{\n  \"client_params\": {{\n    \"id\": \"{}\",\n    \"group\": \"{}\"\n  }}\n}}",
            self.id, self.group
        );
        let request = Request::post(format!("{}v1/{endpoint}", self.prefix))
            .header("fleet-lock-protocol", "true")
            .body(Body::from(body));
        let Ok(request) = request else {
            return (0, String::new());
        };
        match self.app.clone().oneshot(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                let bytes = response
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                (status, String::from_utf8_lossy(&bytes).into_owned())
            }
            Err(never) => match never {},
        }
    }
}

/// A small deterministic generator for agent jitter (xorshift), seeded by node name.
struct Jitter(u64);

impl Jitter {
    fn seeded(name: &str) -> Self {
        let seed = name.bytes().fold(0x9E37_79B9_7F4A_7C15u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Jitter(seed | 1)
    }

    fn between(&mut self, low: Duration, high: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let span = high.saturating_sub(low).as_millis().max(1) as u64;
        low + Duration::from_millis(self.0 % span)
    }
}

/// Serves the simulated cluster over the Kubernetes API and writes a kubeconfig for it.
pub async fn serve_api(
    sim: &SimCluster,
    addr: SocketAddr,
    kubeconfig: &std::path::Path,
) -> Result<cluster_sim::apiserver::Running> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the simulated API"))?;
    let running = cluster_sim::apiserver::ApiServer::new(sim.clone())
        .serve(listener)
        .map_err(anyhow::Error::msg)?;
    std::fs::write(kubeconfig, running.kubeconfig())
        .with_context(|| format!("cannot write {}", kubeconfig.display()))?;
    tracing::info!(
        url = %running.url(),
        kubeconfig = %kubeconfig.display(),
        "the simulated cluster is served over the Kubernetes API: kubectl --kubeconfig {} get nodes -w",
        kubeconfig.display()
    );
    Ok(running)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_demo_fleet_builds() {
        use clap::Parser;
        let args = crate::Args::try_parse_from(["restart-manager", "--simulate"]).unwrap();
        let sim = cluster(&args.simulation).unwrap();
        let groups: std::collections::BTreeSet<String> = sim
            .nodes()
            .iter()
            .filter_map(|n| n.labels.get(GROUP_LABEL).cloned())
            .collect();
        assert_eq!(groups.len(), 3);
        assert!(sim.pods().len() > 20);
        let config = crate::config::FileConfig::parse(DEMO_CONFIG, "demo").unwrap();
        for group in groups {
            assert!(
                config.fleetlock.groups.contains_key(&group),
                "{group} is configured"
            );
        }
    }
}
