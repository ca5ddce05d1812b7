//! A real server on a socket, over a simulated cluster, for the HTTP tests.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;

use cluster_sim::SimCluster;
use restart_manager::{App, Settings, build};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct Server {
    pub addr: SocketAddr,
    pub sim: SimCluster,
    pub app: Arc<App>,
}

/// Builds the app as the binary does, runs its loops, waits for its caches, and serves it on
/// 127.0.0.1 with connection info (as the binary does).
pub async fn serve(sim: &SimCluster, settings: Settings) -> Server {
    let app = Arc::new(build(Arc::new(sim.clone()), Arc::new(sim.clone()), settings).unwrap());
    tokio::spawn({
        let app = app.clone();
        async move { app.run().await }
    });
    app.fleetlock.wait_ready().await;
    app.restarter.wait_ready().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = app
        .router
        .clone()
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
    Server {
        addr,
        sim: sim.clone(),
        app,
    }
}

/// Sends raw bytes and reads one response: (status, head, body).
pub async fn send(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = &text[..end];
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length || n == 0 {
                let status = head[9..12].parse().unwrap();
                return (
                    status,
                    head.to_string(),
                    text[end + 4..end + 4 + length].to_string(),
                );
            }
        }
        assert!(n > 0, "connection closed early: {text}");
    }
}

/// A request with a JSON body (or none) and extra header lines; its Host is `localhost`
/// unless a `host:` line is given.
pub fn request(method: &str, path: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("host:"))
    {
        r.push_str("host: localhost\r\n");
    }
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.push_str(body);
    r.into_bytes()
}

/// A port nobody listens on right now, for a server process to bind.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
