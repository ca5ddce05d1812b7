//! Connections that send nothing, or not enough, against the real binary over real sockets:
//! each is closed (or answered) within the header timeout, so a few clients cannot hold the
//! listeners' connections for ever; one address cannot take FleetLock's listener from every
//! other node; FleetLock's listener speaks HTTP/1.1 only.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use common::free_port;
use common::process::zincati_request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::process::{Child, Command};

/// How long any one wait may take before the test fails: far past the 1 s header timeout the
/// binary runs with here.
const DEADLINE: Duration = Duration::from_secs(30);

/// The HTTP/2 connection preface (RFC 9113, 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct Server {
    _child: Child,
    api: SocketAddr,
    fleetlock: SocketAddr,
}

/// The binary with `--header-timeout 1s`.
async fn start() -> Server {
    start_with("1s").await
}

async fn start_with(header_timeout: &str) -> Server {
    let (port, fleetlock_port) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_restart-manager"))
        .args([
            "--simulate",
            "--sim-no-agents",
            "--header-timeout",
            header_timeout,
        ])
        .args(["--fleetlock-max-connections-per-client", "4"])
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--fleetlock-listen")
        .arg(format!("127.0.0.1:{fleetlock_port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let server = Server {
        _child: child,
        api: format!("127.0.0.1:{port}").parse().unwrap(),
        fleetlock: format!("127.0.0.1:{fleetlock_port}").parse().unwrap(),
    };
    tokio::time::timeout(DEADLINE, async {
        for addr in [server.api, server.fleetlock] {
            while TcpStream::connect(addr).await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    })
    .await
    .expect("the binary listens");
    server
}

/// Reads until the server closes the connection; what it sent before.
async fn until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return seen,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

async fn closed_within_deadline(what: &str, s: &mut TcpStream) -> Vec<u8> {
    tokio::time::timeout(DEADLINE, until_closed(s))
        .await
        .unwrap_or_else(|_| panic!("{what}: still open after {DEADLINE:?}"))
}

/// A connection from a given loopback address.
async fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{from}:0").parse().unwrap())?;
    socket.connect(to).await
}

/// The status of `GET /healthz` from a given loopback address.
async fn healthz(from: &str, to: SocketAddr) -> Option<u16> {
    let mut s = connect_from(from, to).await.ok()?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .ok()?;
    let answer = until_closed_or_answered(&mut s).await;
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
}

/// Reads the status line of one answer (or nothing, if the server closes first).
async fn until_closed_or_answered(s: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_half_open_connections_are_closed_on_both_listeners() {
    let server = start().await;
    for (name, addr) in [("API", server.api), ("FleetLock", server.fleetlock)] {
        // Connected, and not a byte sent.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        closed_within_deadline(&format!("{name}: a silent connection"), &mut silent).await;
        // Half an HTTP/2 preface.
        let mut partial = TcpStream::connect(addr).await.unwrap();
        partial.write_all(&H2_PREFACE[..10]).await.unwrap();
        closed_within_deadline(&format!("{name}: a partial preface"), &mut partial).await;
    }
    // A whole HTTP/2 preface (prior knowledge), then nothing: the API listener speaks HTTP/2,
    // and closes the connection once it has carried no request for the header timeout.
    let mut idle_h2 = TcpStream::connect(server.api).await.unwrap();
    idle_h2.write_all(H2_PREFACE).await.unwrap();
    // An empty SETTINGS frame, as a client sends right after the preface.
    idle_h2
        .write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
        .await
        .unwrap();
    let seen = closed_within_deadline("API: an idle HTTP/2 connection", &mut idle_h2).await;
    assert!(!seen.is_empty(), "the API listener answered HTTP/2 first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleetlock_body_that_never_arrives_is_answered_not_waited_on() {
    let server = start().await;
    let mut s = TcpStream::connect(server.fleetlock).await.unwrap();
    s.write_all(
        b"POST /v1/pre-reboot HTTP/1.1\r\nhost: x\r\nfleet-lock-protocol: true\r\n\
          content-length: 100\r\n\r\n{\"client_",
    )
    .await
    .unwrap();
    let answer = tokio::time::timeout(DEADLINE, until_closed_or_answered(&mut s))
        .await
        .expect("answered within the deadline");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleetlock_speaks_only_http1() {
    let server = start().await;
    let mut s = TcpStream::connect(server.fleetlock).await.unwrap();
    s.write_all(H2_PREFACE).await.unwrap();
    s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let seen = closed_within_deadline("FleetLock: HTTP/2 prior knowledge", &mut s).await;
    // No HTTP/2 SETTINGS frame back: at most an HTTP/1.1 error.
    assert!(
        seen.is_empty() || seen.starts_with(b"HTTP/1.1 4"),
        "{:?}",
        String::from_utf8_lossy(&seen)
    );
    // Zincati's own bytes are still answered, over HTTP/1.1.
    let mut zincati = TcpStream::connect(server.fleetlock).await.unwrap();
    zincati
        .write_all(&zincati_request("/v1/steady-state", "n1"))
        .await
        .unwrap();
    let answer = until_closed_or_answered(&mut zincati).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 "),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_every_fleetlock_connection() {
    // A long header timeout: the held connections stay while the test looks.
    let server = start_with("120s").await;
    // Four silent connections from one address: its whole allowance.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from("127.0.0.3", server.fleetlock).await.unwrap());
    }
    // Its fifth is closed at once, without an answer.
    let mut fifth = connect_from("127.0.0.3", server.fleetlock).await.unwrap();
    fifth
        .write_all(&zincati_request("/v1/steady-state", "n1"))
        .await
        .ok();
    let seen = closed_within_deadline("the fifth connection", &mut fifth).await;
    assert!(seen.is_empty(), "{:?}", String::from_utf8_lossy(&seen));
    // Every other address is still served meanwhile.
    assert_eq!(healthz("127.0.0.1", server.fleetlock).await, Some(200));
    drop(held);
}
