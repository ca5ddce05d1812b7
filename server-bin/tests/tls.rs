//! TLS on the listeners: the real binary serves HTTPS from certificate files and serves a
//! renewed certificate once the files change, without a restart; a broken renewal keeps the
//! old one.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::free_port;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

const DEADLINE: Duration = Duration::from_secs(60);

/// A CA, and leaf certificates for 127.0.0.1 it signs.
struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Authority {
    fn new() -> Self {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Authority {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// Writes a new leaf's chain and key; returns the leaf's DER.
    fn issue(&self, cert: &Path, key: &Path) -> Vec<u8> {
        let key_pair = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        let leaf = params.signed_by(&key_pair, &self.issuer).unwrap();
        std::fs::write(cert, leaf.pem()).unwrap();
        std::fs::write(key, key_pair.serialize_pem()).unwrap();
        leaf.der().to_vec()
    }

    fn client(&self) -> tokio_rustls::TlsConnector {
        self.client_as(None)
    }

    /// A client that trusts this authority, presenting `identity`'s certificate if given.
    fn client_as(&self, identity: Option<&Authority>) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let mut config = match identity {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let key = KeyPair::generate().unwrap();
                let mut params = CertificateParams::new(vec!["auth-proxy".to_string()]).unwrap();
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
                let cert = params.signed_by(&key, &ca.issuer).unwrap();
                builder
                    .with_client_auth_cert(
                        vec![cert.der().clone()],
                        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
                    )
                    .unwrap()
            }
        };
        // Every connection a full handshake: a resumed session shows the certificate of the
        // session it resumes.
        config.resumption = rustls::client::Resumption::disabled();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

/// `GET /healthz` over TLS: the status line's code and the certificate the server showed.
async fn get(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
) -> std::io::Result<(u16, Vec<u8>)> {
    let (code, shown, _) = request(connector, addr, "/healthz", "").await?;
    Ok((code, shown))
}

/// `GET path` over TLS with extra header lines: the code, the server's certificate, the body.
async fn request(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    path: &str,
    headers: &str,
) -> std::io::Result<(u16, Vec<u8>, String)> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::IpAddress(addr.ip().into());
    let mut tls = connector.connect(name, tcp).await?;
    let shown: Vec<u8> = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first().map(|c: &CertificateDer| c.to_vec()))
        .unwrap_or_default();
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n{headers}connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await?;
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await.ok();
    let text = String::from_utf8_lossy(&response);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, shown, body))
}

/// Asks until `check` is satisfied, or fails after the deadline.
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    common::until_within(what, DEADLINE, async || check().await.then_some(())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_listeners_serve_tls_and_take_a_renewed_certificate_without_a_restart() {
    let dir = std::env::temp_dir().join(format!("restart-manager-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let (fl_cert, fl_key) = (dir.join("fleetlock.crt"), dir.join("fleetlock.key"));
    let ca = Authority::new();
    let first = ca.issue(&cert, &key);
    let fleetlock_first = ca.issue(&fl_cert, &fl_key);
    let (port, fleetlock_port) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_restart-manager"))
        .args(["--simulate", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--fleetlock-listen")
        .arg(format!("127.0.0.1:{fleetlock_port}"))
        .arg("--tls-cert-file")
        .arg(&cert)
        .arg("--tls-key-file")
        .arg(&key)
        .arg("--fleetlock-tls-cert-file")
        .arg(&fl_cert)
        .arg("--fleetlock-tls-key-file")
        .arg(&fl_key)
        .args(["--tls-reload-interval", "200ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let connector = ca.client();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let fleetlock: SocketAddr = format!("127.0.0.1:{fleetlock_port}").parse().unwrap();
    until("the server answers over TLS", async || {
        matches!(get(&connector, addr).await, Ok((200, _)))
    })
    .await;
    assert_eq!(get(&connector, addr).await.unwrap(), (200, first.clone()));
    assert_eq!(
        get(&connector, fleetlock).await.unwrap(),
        (200, fleetlock_first)
    );
    // Plain HTTP to a TLS port gets no answer.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, plain.read_to_end(&mut answer)).await;
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"));

    // The certificate is renewed in place: new handshakes get the new one.
    let renewed = ca.issue(&cert, &key);
    assert_ne!(renewed, first);
    until(
        "the renewed certificate is served",
        async || matches!(get(&connector, addr).await, Ok((200, shown)) if shown == renewed),
    )
    .await;

    // A broken renewal (a key that does not fit) is refused; the last good pair stays.
    std::fs::write(&key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(get(&connector, addr).await.unwrap(), (200, renewed.clone()));
    }
    let _ = child.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--auth proxy` with `--auth-proxy-client-ca-file`: identity headers count only over a
/// connection that showed a client certificate from the proxy's authority; no shared secret is
/// needed. Other clients still connect (probes), but cannot claim an identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticating_proxy_proves_itself_with_a_client_certificate() {
    let dir = std::env::temp_dir().join(format!("restart-manager-mtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key, client_ca) = (dir.join("tls.crt"), dir.join("tls.key"), dir.join("ca.crt"));
    let server_ca = Authority::new();
    server_ca.issue(&cert, &key);
    let proxy_ca = Authority::new();
    std::fs::write(&client_ca, proxy_ca.issuer.pem()).unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_restart-manager"))
        .args([
            "--simulate",
            "--sim-no-agents",
            "--fleetlock-listen",
            "same",
        ])
        .args(["--auth", "proxy", "--auth-proxy-trusted", "127.0.0.1/32"])
        .arg("--auth-proxy-client-ca-file")
        .arg(&client_ca)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--tls-cert-file")
        .arg(&cert)
        .arg("--tls-key-file")
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let anyone = server_ca.client();
    until("the server answers over TLS", async || {
        matches!(get(&anyone, addr).await, Ok((200, _)))
    })
    .await;
    let claim = "x-forwarded-user: carol\r\n";
    let proxy = server_ca.client_as(Some(&proxy_ca));
    let (code, _, body) = request(&proxy, addr, "/api/v1/whoami", claim)
        .await
        .unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"user\":\"carol\""), "{body}");
    // The same claim without the proxy's certificate, or with one from another authority.
    let (code, _, body) = request(&anyone, addr, "/api/v1/whoami", claim)
        .await
        .unwrap();
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("client certificate"), "{body}");
    let stranger = server_ca.client_as(Some(&Authority::new()));
    let refused = request(&stranger, addr, "/api/v1/whoami", claim).await;
    assert!(
        matches!(refused, Err(_) | Ok((0, _, _))),
        "a certificate from another authority ends the handshake: {refused:?}"
    );
    let _ = child.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
}
