//! The server over a simulated cluster, for the HTTP tests: requests go to its router in
//! process (`Server::send`), and to its socket only where the socket is the point (`send`:
//! framing, websockets, other processes).
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod agent;
pub mod process;
pub mod real;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cluster_sim::SimCluster;
use restart_manager::{App, Settings, build};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct Server {
    pub addr: SocketAddr,
    pub sim: SimCluster,
    pub app: Arc<App>,
    /// The services' loops (`App::run`), until the settings' shutdown token is cancelled.
    pub run: tokio::task::JoinHandle<()>,
}

/// Builds the app as the binary does, runs its loops, waits for its caches, and serves it on
/// 127.0.0.1 with connection info (as the binary does).
pub async fn serve(sim: &SimCluster, settings: Settings) -> Server {
    let app = Arc::new(build(Arc::new(sim.clone()), Arc::new(sim.clone()), settings).unwrap());
    let run = tokio::spawn({
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
        run,
    }
}

impl Server {
    /// Hands one request, written as it would go on the wire, to the router in process, as
    /// from a client on 127.0.0.1 (the address the real listener passes on): (status, head,
    /// body). The head is the status line and headers as text, for `contains` checks.
    pub async fn send(&self, raw: &[u8]) -> (u16, String, String) {
        use tower::ServiceExt;
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        let httparse::Status::Complete(head_len) = parsed.parse(raw).expect("a valid request")
        else {
            panic!("an incomplete request: {}", String::from_utf8_lossy(raw));
        };
        let mut request = axum::http::Request::builder()
            .method(parsed.method.expect("a method"))
            .uri(parsed.path.expect("a path"));
        for h in parsed.headers.iter() {
            request = request.header(h.name, h.value);
        }
        let mut request = request
            .body(axum::body::Body::from(raw[head_len..].to_vec()))
            .expect("a request");
        // What the real listener attaches to every request.
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let response = self
            .app
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router answers");
        let status = response.status();
        let mut head = format!(
            "HTTP/1.1 {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        for (name, value) in response.headers() {
            head.push_str(&format!("\r\n{name}: {}", value.to_str().unwrap_or("")));
        }
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("the body");
        (
            status.as_u16(),
            head,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }
}

/// Writes one request, as given, to a real socket and reads the response, parsed with
/// httparse: for what only a socket shows (framing, TLS, another process). (status, head,
/// body).
pub async fn send(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    try_send(addr, request)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// [`send`], with a connection that fails or closes early as an error: for servers that may
/// be down (a killed replica, a port not bound yet).
pub async fn try_send(addr: SocketAddr, request: &[u8]) -> Result<(u16, String, String), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    stream
        .write_all(request)
        .await
        .map_err(|e| format!("sending to {addr}: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading from {addr}: {e}"))?;
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(head_len)) = response.parse(&buf) {
            let length: usize = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= head_len + length || n == 0 {
                let status = response.code.ok_or("a response without a status")?;
                let head = String::from_utf8_lossy(&buf[..head_len])
                    .trim_end()
                    .to_string();
                let end = (head_len + length).min(buf.len());
                let body = String::from_utf8_lossy(&buf[head_len..end]).into_owned();
                return Ok((status, head, body));
            }
        }
        if n == 0 {
            return Err(format!(
                "connection closed early: {}",
                String::from_utf8_lossy(&buf)
            ));
        }
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

/// Polls `check` until it gives a value, or fails after `deadline`: tests of real processes
/// and real clusters wait on conditions, never for a fixed time.
pub async fn until_within<T>(
    what: &str,
    deadline: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let started = tokio::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            started.elapsed() < deadline,
            "{what} did not happen within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
