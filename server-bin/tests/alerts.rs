//! The alert gates against a real Prometheus (Debian's `prometheus`), started by the test with
//! rules that fire at once: a firing alert that matches a group's gate holds new reboots in
//! it, a pending one does not, and an unreachable Prometheus blocks unless told otherwise; and
//! against a real Alertmanager (`prometheus-alertmanager`), where a silenced alert does not.
//!
//! Without the binaries the tests say so and pass on a developer machine; under CI (`CI` set)
//! they fail, since `.ci/run` installs them.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use cluster_api::Node;
use cluster_sim::{SimCluster, machine_id_for};
use common::free_port;
use fleetlock_core::alerts::AlertSource;
use fleetlock_core::{
    AlertsApi, AlertsConfig, ClientParams, Coordinator, FleetLockConfig, Kind, OnUnreachable,
    zincati_id,
};
use restart_manager::alerts::HttpAlerts;
use tokio::process::{Child, Command};

const DEADLINE: Duration = Duration::from_secs(60);

const CONFIG: &str =
    "global:\n  evaluation_interval: 1s\n  scrape_interval: 1m\nrule_files: [rules.yml]\n";

const RULES: &str = "groups:
  - name: restart-manager-test
    interval: 1s
    rules:
      - alert: EtcdDown
        expr: vector(1)
        labels: {severity: critical}
      - alert: DiskAlmostFull
        expr: vector(1)
        for: 1h
        labels: {severity: page}
";

struct Prometheus {
    url: String,
    child: Child,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// Starts Prometheus with [`RULES`]; `None` (said on stderr) where it is not installed.
fn prometheus() -> Option<Prometheus> {
    let binary = std::env::var_os("PROMETHEUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"));
    if !binary.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install prometheus"
        );
        eprintln!("skipped: no prometheus (apt-get install prometheus)");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("rm-prometheus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("prometheus.yml"), CONFIG).unwrap();
    std::fs::write(dir.join("rules.yml"), RULES).unwrap();
    let port = free_port();
    let child = Command::new(binary)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start prometheus");
    Some(Prometheus {
        url: format!("http://127.0.0.1:{port}"),
        child,
        _dir: TempDir(dir),
    })
}

fn alerts_config(url: &str, on_unreachable: OnUnreachable) -> AlertsConfig {
    AlertsConfig {
        url: url.into(),
        api: AlertsApi::Prometheus,
        interval: Duration::from_millis(200),
        timeout: Duration::from_secs(2),
        on_unreachable,
        bearer_token_file: None,
        basic_auth: None,
    }
}

/// A coordinator over a two-node cluster whose `default` group's alert gate matches `gate`.
/// Its nodes never reboot here: a steady-state gives the slot back at once
/// (`unchangedBootId: release`).
async fn coordinator(sim: &SimCluster, alerts: AlertsConfig, gate: &str) -> Coordinator {
    let mut config = FleetLockConfig::default();
    let group = config.groups.get_mut("default").unwrap();
    group.health_gates.alerts = vec![gate.parse().unwrap()];
    group.recovery.unchanged_boot_id = fleetlock_core::UnchangedBootId::Release;
    let source = Arc::new(HttpAlerts::new(&alerts).unwrap());
    config.alerts = Some(alerts);
    let c = Coordinator::builder(Arc::new(sim.clone()), config)
        .alerts(source)
        .build();
    tokio::spawn({
        let c = c.clone();
        async move { c.run().await }
    });
    c.wait_ready().await;
    c
}

fn zincati(node: &str) -> ClientParams {
    ClientParams {
        id: zincati_id(&machine_id_for(node)).unwrap(),
        group: "default".into(),
    }
}

/// Polls `check` until it says yes, or fails after [`DEADLINE`].
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    common::until_within(what, DEADLINE, async || check().await.then_some(())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_alert_from_prometheus_holds_reboots_in_its_group() {
    let Some(mut prometheus) = prometheus() else {
        return;
    };
    let sim = SimCluster::new();
    for n in ["n1", "n2"] {
        sim.add_node(Node::new(n).machine_id(machine_id_for(n)));
    }

    // Prometheus itself: EtcdDown fires, DiskAlmostFull stays pending (for: 1h).
    let source = HttpAlerts::new(&alerts_config(&prometheus.url, OnUnreachable::Block)).unwrap();
    until("Prometheus reports EtcdDown firing", async || {
        source
            .firing()
            .await
            .is_ok_and(|alerts| alerts.iter().any(|a| a["alertname"] == "EtcdDown"))
    })
    .await;
    let firing = source.firing().await.unwrap();
    assert!(
        firing.iter().all(|a| a["alertname"] != "DiskAlmostFull"),
        "a pending alert is not firing: {firing:?}"
    );

    // A gate matching the firing alert holds the group; the refusal names the alert.
    let held = coordinator(
        &sim,
        alerts_config(&prometheus.url, OnUnreachable::Block),
        "severity=critical",
    )
    .await;
    until("the gate closes on EtcdDown", async || {
        held.pre_reboot(&zincati("n1")).await.is_err_and(|r| {
            r.kind == Kind::HealthGateClosed && r.value.contains("alert EtcdDown is firing")
        })
    })
    .await;
    assert!(
        !sim.node("n1").unwrap().unschedulable,
        "nothing was cordoned"
    );

    // A gate matching only the pending alert lets reboots through.
    let open = coordinator(
        &sim,
        alerts_config(&prometheus.url, OnUnreachable::Block),
        "severity=page",
    )
    .await;
    until("a reboot past a gate nothing fires for", async || {
        open.pre_reboot(&zincati("n2")).await.is_ok()
    })
    .await;
    open.steady_state(&zincati("n2")).await.unwrap();

    // Prometheus gone: the gate blocks, saying why, unless told to allow.
    prometheus.child.kill().await.unwrap();
    let closed = |c: &Coordinator| {
        c.snapshot()
            .groups
            .into_iter()
            .find(|g| g.name == "default")
            .unwrap()
            .closed_gates
    };
    until("the gate closes on an unreachable Prometheus", async || {
        closed(&open)
            .iter()
            .any(|g| g.contains("the alerts cannot be read"))
    })
    .await;
    let refusal = open.pre_reboot(&zincati("n2")).await.unwrap_err();
    assert_eq!(refusal.kind, Kind::HealthGateClosed, "{refusal}");
    let lenient = coordinator(
        &sim,
        alerts_config(&prometheus.url, OnUnreachable::Allow),
        "severity=page",
    )
    .await;
    until(
        "a reboot past an unreachable Prometheus with onUnreachable: allow",
        async || lenient.pre_reboot(&zincati("n2")).await.is_ok(),
    )
    .await;
}

/// The same gate over a real Alertmanager: active alerts count, silenced ones do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_alertmanager_alert_holds_reboots_and_a_silenced_one_does_not() {
    let binary = std::env::var_os("ALERTMANAGER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus-alertmanager"));
    if !binary.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install prometheus-alertmanager"
        );
        eprintln!("skipped: no alertmanager (apt-get install prometheus-alertmanager)");
        return;
    }
    let dir = TempDir(std::env::temp_dir().join(format!("rm-alertmanager-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(
        dir.0.join("alertmanager.yml"),
        "route: {receiver: nobody}\nreceivers: [{name: nobody}]\n",
    )
    .unwrap();
    let port = free_port();
    let _alertmanager = Command::new(binary)
        .arg(format!(
            "--config.file={}",
            dir.0.join("alertmanager.yml").display()
        ))
        .arg(format!("--storage.path={}", dir.0.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start alertmanager");
    let url = format!("http://127.0.0.1:{port}");

    // Two alerts arrive, as Prometheus would send them; one of them is silenced. (reqwest is
    // built without a crypto provider; the server installs ring, and so does this client.)
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let alerts = serde_json::json!([
        {"labels": {"alertname": "EtcdDown", "severity": "critical"}},
        {"labels": {"alertname": "Planned", "severity": "critical"}},
    ]);
    until("Alertmanager takes the alerts", async || {
        http.post(format!("{url}/api/v2/alerts"))
            .json(&alerts)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    let now = jiff::Timestamp::now();
    let silence = serde_json::json!({
        "matchers": [{"name": "alertname", "value": "Planned", "isRegex": false, "isEqual": true}],
        "startsAt": now.to_string(),
        "endsAt": (now + jiff::SignedDuration::from_hours(1)).to_string(),
        "createdBy": "restart-manager test",
        "comment": "planned maintenance",
    });
    let response = http
        .post(format!("{url}/api/v2/silences"))
        .json(&silence)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");

    let mut config = alerts_config(&url, OnUnreachable::Block);
    config.api = AlertsApi::Alertmanager;
    let source = HttpAlerts::new(&config).unwrap();
    until("only the unsilenced alert is active", async || {
        source.firing().await.is_ok_and(|alerts| {
            let names: Vec<&str> = alerts.iter().map(|a| a["alertname"].as_str()).collect();
            names == ["EtcdDown"]
        })
    })
    .await;

    let sim = SimCluster::new();
    sim.add_node(Node::new("n1").machine_id(machine_id_for("n1")));
    let held = coordinator(&sim, config.clone(), "severity=critical").await;
    until("the gate closes on EtcdDown", async || {
        held.pre_reboot(&zincati("n1")).await.is_err_and(|r| {
            r.kind == Kind::HealthGateClosed && r.value.contains("alert EtcdDown is firing")
        })
    })
    .await;
    let open = coordinator(&sim, config, "alertname=Planned").await;
    until("a reboot past a gate whose alert is silenced", async || {
        open.pre_reboot(&zincati("n1")).await.is_ok()
    })
    .await;
}
