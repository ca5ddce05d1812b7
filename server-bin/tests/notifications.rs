//! Notifications against a local receiver: the three formats, secrets from files, retries
//! against a receiver that fails and one that is down, and a request that never waits for
//! any of it.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use cluster_api::Node;
use cluster_sim::{SimCluster, machine_id_for};
use fleetlock_core::{FleetLockConfig, zincati_id};
use manager_config::NotificationsConfig;
use restart_core::Allowlist;
use restart_manager::Settings;
use serde_json::Value;
use tokio::sync::mpsc;

/// What the receiver got: (path, headers, body).
type Got = (String, HeaderMap, Value);

/// A webhook receiver on 127.0.0.1: `/ok/...` answers 200, `/flaky` answers 503 to its first
/// request and 200 after, `/gone` answers 404.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Got>, Arc<AtomicUsize>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let flaky = Arc::new(AtomicUsize::new(0));
    let record = |path: &'static str| {
        let tx = tx.clone();
        move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                tx.send((path.to_string(), headers, json)).ok();
                StatusCode::OK
            }
        }
    };
    let app = Router::new()
        .route("/ok/json", post(record("/ok/json")))
        .route("/ok/ce", post(record("/ok/ce")))
        .route("/ok/slack", post(record("/ok/slack")))
        .route(
            "/flaky",
            post({
                let tx = tx.clone();
                move |State(count): State<Arc<AtomicUsize>>, headers: HeaderMap, body: Bytes| {
                    let tx = tx.clone();
                    async move {
                        if count.fetch_add(1, Ordering::SeqCst) == 0 {
                            return StatusCode::SERVICE_UNAVAILABLE;
                        }
                        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        tx.send(("/flaky".to_string(), headers, json)).ok();
                        StatusCode::OK
                    }
                }
            }),
        )
        .route("/gone", post(|| async { StatusCode::NOT_FOUND }))
        .with_state(flaky.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx, flaky)
}

fn fleet() -> SimCluster {
    let sim = SimCluster::new();
    for n in ["n1", "n2"] {
        sim.add_node(Node::new(n).machine_id(machine_id_for(n)));
    }
    sim
}

fn pre_reboot(node: &str) -> Vec<u8> {
    let id = zincati_id(&machine_id_for(node)).unwrap();
    let body = format!(r#"{{"client_params": {{"id": "{id}", "group": "default"}}}}"#);
    common::request(
        "POST",
        "/v1/pre-reboot",
        &["fleet-lock-protocol: true"],
        &body,
    )
}

/// The next thing the receiver got, within a bounded time.
async fn next(rx: &mut mpsc::UnboundedReceiver<Got>) -> Got {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("a notification within 30 s")
        .expect("the receiver runs")
}

async fn serve(sim: &SimCluster, yaml: &str) -> common::Server {
    let notifications: NotificationsConfig = serde_saphyr::from_str(yaml).unwrap();
    assert_eq!(notifications.problem(), None);
    let mut settings = Settings::new(FleetLockConfig::default(), Allowlist::default());
    settings.notifications = notifications;
    common::serve(sim, settings).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reboot_is_announced_in_every_format() {
    let (url, mut got, _) = receiver().await;
    let dir = std::env::temp_dir().join(format!("rm-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("slack-url"), format!("{url}/ok/slack\n")).unwrap();
    std::fs::write(dir.join("token"), "s3cret\n").unwrap();
    let yaml = format!(
        "sinks:\n\
         - {{name: plain, url: '{url}/ok/json', events: [reboot.granted]}}\n\
         - {{name: ce, format: cloudEvents, url: '{url}/ok/ce', events: [reboot.granted], \
              bearerTokenFile: '{dir}/token'}}\n\
         - {{name: chat, format: slack, urlFile: '{dir}/slack-url', events: [reboot.*], \
              template: 'Reboot {{{{ type }}}} of {{{{ node }}}} ({{{{ group }}}}): {{{{ message }}}}'}}\n",
        dir = dir.display()
    );
    let sim = fleet();
    let server = serve(&sim, &yaml).await;
    let (status, _, body) = server.send(&pre_reboot("n1")).await;
    assert_eq!(status, 200, "{body}");

    let mut by_path = std::collections::HashMap::new();
    // granted to all three; approved only to the Slack sink (reboot.*).
    for _ in 0..4 {
        let (path, headers, body) = next(&mut got).await;
        by_path
            .entry(path)
            .or_insert_with(Vec::new)
            .push((headers, body));
    }
    let (headers, plain) = &by_path["/ok/json"][0];
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(plain["type"], "reboot.granted");
    assert_eq!(plain["subject"], "node/n1");
    assert_eq!(plain["node"], "n1");
    assert_eq!(plain["group"], "default");
    assert!(
        plain["message"].as_str().unwrap().contains("granted"),
        "{plain}"
    );

    let (headers, ce) = &by_path["/ok/ce"][0];
    assert_eq!(
        headers["content-type"],
        "application/cloudevents+json; charset=utf-8"
    );
    assert_eq!(headers["authorization"], "Bearer s3cret");
    assert_eq!(ce["specversion"], "1.0");
    assert_eq!(ce["type"], "io.restart-manager.reboot.granted");
    assert_eq!(ce["source"], "restart-manager");
    assert_eq!(ce["subject"], "node/n1");
    assert!(!ce["id"].as_str().unwrap().is_empty());
    assert_eq!(ce["data"]["node"], "n1");

    let texts: Vec<&str> = by_path["/ok/slack"]
        .iter()
        .map(|(_, b)| b["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts[0].starts_with("Reboot reboot.granted of n1 (default): reboot slot"),
        "{texts:?}"
    );
    assert!(
        texts[1].starts_with("Reboot reboot.approved of n1"),
        "{texts:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_and_a_dead_receiver_blocks_nothing() {
    let (url, mut got, flaky) = receiver().await;
    // Nobody listens on this port: every attempt fails to connect.
    let dead = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap()
    };
    let yaml = format!(
        "sinks:\n\
         - {{name: dead, url: 'http://{dead}/hook', retries: 3, retryInitial: 50ms, timeout: 1s}}\n\
         - {{name: gone, url: '{url}/gone', retries: 3, retryInitial: 50ms}}\n\
         - {{name: flaky, url: '{url}/flaky', retries: 3, retryInitial: 50ms, events: [reboot.granted]}}\n"
    );
    let sim = fleet();
    let server = serve(&sim, &yaml).await;
    // Answered at once, whatever the receivers do.
    let (status, _, body) =
        tokio::time::timeout(Duration::from_secs(10), server.send(&pre_reboot("n1")))
            .await
            .expect("the request does not wait for notifications");
    assert_eq!(status, 200, "{body}");

    // The flaky receiver gets it once, on the second attempt.
    let (path, _, body) = next(&mut got).await;
    assert_eq!(path, "/flaky");
    assert_eq!(body["type"], "reboot.granted");
    assert_eq!(flaky.load(Ordering::SeqCst), 2);

    // The dead receiver's notifications are given up after their retries, counted as
    // failed; the 404 is not retried.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, _, text) = server
            .send(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\n\r\n")
            .await;
        let failed = |sink: &str| {
            text.lines()
                .find(|l| {
                    l.starts_with("restart_manager_notifications_total")
                        && l.contains(&format!("sink=\"{sink}\""))
                        && l.contains("outcome=\"failed\"")
                })
                .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // granted and approved, to each.
        if failed("dead") == 2 && failed("gone") == 2 {
            assert!(
                text.contains(
                    "restart_manager_notifications_total{outcome=\"sent\",sink=\"flaky\"} 1"
                ),
                "{text}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not given up in time: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(got.try_recv().is_err(), "nothing else arrived");
}

/// On shutdown the services stop first, then every notification already queued is still
/// delivered (with its retries) before `App::run` returns: a SIGTERM does not swallow the
/// announcement of what just happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_delivers_what_is_queued_before_the_services_return() {
    let (url, mut got, flaky) = receiver().await;
    // The first attempt is refused (503): the delivery needs a retry after 200 ms.
    let yaml = format!(
        "sinks:\n\
         - {{name: flaky, url: '{url}/flaky', retries: 3, retryInitial: 200ms, events: [reboot.granted]}}\n"
    );
    let notifications: NotificationsConfig = serde_saphyr::from_str(&yaml).unwrap();
    let sim = fleet();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut settings = Settings::new(FleetLockConfig::default(), Allowlist::default());
    settings.notifications = notifications;
    settings.shutdown = shutdown.clone();
    let server = common::serve(&sim, settings).await;
    let (status, _, body) = server.send(&pre_reboot("n1")).await;
    assert_eq!(status, 200, "{body}");

    // Asked to stop before the retry: the services stop, the queued notification goes out.
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), server.run)
        .await
        .expect("run returns within the bound")
        .expect("run does not panic");
    let (path, _, body) = got
        .try_recv()
        .expect("delivered before the services returned");
    assert_eq!(path, "/flaky");
    assert_eq!(body["type"], "reboot.granted");
    assert_eq!(flaky.load(Ordering::SeqCst), 2, "one refusal, one retry");
}
