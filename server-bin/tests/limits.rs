//! The listener's limits against hostile clients: slow headers are cut off while everyone else
//! is served, and connections beyond the cap are closed at once.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use restart_manager::listener::{Limits, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long any one wait may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(30);

async fn start(limits: Limits) -> (std::net::SocketAddr, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = watch::channel(false);
    let router = Router::new().route("/ok", get(|| async { "ok" }));
    tokio::spawn(serve(listener, router, limits, None, stopped));
    (addr, stop)
}

/// One whole request on a fresh connection: its status line, or why there was none.
async fn try_get_ok(addr: std::net::SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(b"GET /ok HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).await?;
    Ok(answer.lines().next().unwrap_or("").to_string())
}

async fn get_ok(addr: std::net::SocketAddr) -> String {
    try_get_ok(addr).await.unwrap()
}

/// Waits until the server closes `s` (its answer, if any, is read and dropped).
async fn closed(mut s: TcpStream) {
    let mut buf = [0u8; 512];
    while s.read(&mut buf).await.is_ok_and(|n| n > 0) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_and_everyone_else_is_served() {
    let (addr, _stop) = start(Limits {
        header_timeout: Duration::from_secs(1),
        max_connections: 1_000,
        max_per_client: 0,
        ..Limits::default()
    })
    .await;
    // 500 clients that start a request and never finish its headers.
    let mut slow = Vec::new();
    for _ in 0..500 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /ok HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    // Meanwhile the server answers others.
    assert_eq!(
        tokio::time::timeout(DEADLINE, get_ok(addr)).await.unwrap(),
        "HTTP/1.1 200 OK"
    );
    // And it closes every slow one.
    let all = futures::future::join_all(slow.into_iter().map(closed));
    tokio::time::timeout(DEADLINE, all)
        .await
        .expect("the header timeout closed every slow connection");
    assert_eq!(get_ok(addr).await, "HTTP/1.1 200 OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_closed_at_once() {
    let (addr, _stop) = start(Limits {
        header_timeout: Duration::from_secs(300),
        max_connections: 5,
        ..Limits::default()
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // The sixth is accepted and closed without an answer.
    let sixth = TcpStream::connect(addr).await.unwrap();
    tokio::time::timeout(DEADLINE, closed(sixth))
        .await
        .expect("the connection over the cap was closed");
    // One leaves; a request gets through again.
    drop(idle.pop());
    let served = async {
        loop {
            // Until the server has seen the close, a new connection is still over the cap.
            if try_get_ok(addr)
                .await
                .is_ok_and(|line| line == "HTTP/1.1 200 OK")
            {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(DEADLINE, served)
        .await
        .expect("a slot freed by a closed connection is used again");
}
