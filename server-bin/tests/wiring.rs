//! The binary's own wiring, in process: `server::run_with` is what `main` runs, here on
//! listeners the test bound and with a shutdown the test triggers.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use restart_manager::args::Args;
use restart_manager::server::{Listeners, run_with};
use tokio::net::TcpStream;

const DEADLINE: Duration = Duration::from_secs(60);

/// One request on a fresh connection: (status, body).
async fn call(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("fleet-lock-protocol", "true")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wiring_main_runs_serves_both_listeners_and_stops_on_shutdown() {
    let args = Args::try_parse_from([
        "restart-manager",
        "--simulate",
        "--sim-no-agents",
        "--listen",
        "127.0.0.1:0",
        "--fleetlock-listen",
        "127.0.0.1:0",
        "--shutdown-grace",
        "5s",
    ])
    .expect("arguments");
    let listeners = Listeners::bind(&args).await.expect("listeners");
    let main = listeners.main.local_addr().unwrap();
    let fleetlock = listeners.fleetlock.as_ref().unwrap().local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run_with(args, Some(listeners), async {
        let _ = stopped.await;
    }));

    tokio::time::timeout(DEADLINE, async {
        while call(main, "GET", "/readyz", "").await.0 != 200 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("ready within the deadline");

    // FleetLock lives on its own listener, the API on the main one only.
    let body =
        r#"{"client_params": {"id": "0123456789abcdef0123456789abcdef", "group": "default"}}"#;
    let (status, answer) = call(fleetlock, "POST", "/v1/steady-state", body).await;
    assert!(
        status == 200 || answer.contains("\"kind\""),
        "a FleetLock answer: {status} {answer}"
    );
    assert_eq!(
        call(main, "POST", "/v1/steady-state", body).await.0,
        404,
        "FleetLock is not served beside the API when it has a listener of its own"
    );
    assert_eq!(call(fleetlock, "GET", "/api/v1/service", "").await.0, 404);
    let (status, services) = call(main, "GET", "/api/v1/service", "").await;
    assert_eq!(status, 200, "{services}");

    stop.send(()).unwrap();
    let result = tokio::time::timeout(DEADLINE, server)
        .await
        .expect("stopped within the deadline")
        .expect("the task");
    assert!(result.is_ok(), "{result:?}");
    assert!(
        TcpStream::connect(main).await.is_err(),
        "the main listener is closed once run_with returns"
    );
}
