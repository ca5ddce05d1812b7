//! Optional TLS on a listener, from PEM files read again whenever they change.
//!
//! A certificate mounted from a Kubernetes Secret (cert-manager renews it in place) changes on
//! disk while the server runs; [`Reloading`] looks at the files' modification times and sizes
//! every [`--tls-reload-interval`](crate::args::TlsArgs) and swaps in the new pair for every
//! handshake after. A pair that does not load (half-written, a key that does not match) is
//! reported and the old one kept: a bad renewal never takes the server down.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use parking_lot::{Mutex, RwLock};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

/// Marks a request whose connection presented a client certificate the listener verified
/// against `--auth-proxy-client-ca-file`.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedClient;

/// The certificate authorities in a PEM file, for verifying client certificates.
pub fn client_roots(path: &Path) -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read the client CA {}", path.display()))?
    {
        let cert = cert.with_context(|| format!("{} is not a PEM certificate", path.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("{} holds a certificate that is no CA", path.display()))?;
    }
    if roots.is_empty() {
        bail!("{} holds no certificate", path.display());
    }
    Ok(roots)
}

/// A certificate and key from files, reloaded when they change.
#[derive(Debug)]
pub struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// What the files looked like when last loaded (modification time and size of each).
    seen: Mutex<Stamp>,
}

type Stamp = [(Option<SystemTime>, u64); 2];

impl Reloading {
    /// Loads the pair now; an error names the file and what is wrong with it.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let seen = stamp(cert, key);
        let pair = certified_key(&provider, cert, key)?;
        Ok(Arc::new(Reloading {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            current: RwLock::new(Arc::new(pair)),
            seen: Mutex::new(seen),
        }))
    }

    /// A server configuration that serves the current pair (HTTP/2 and HTTP/1.1). With
    /// `clients`, a client may present a certificate signed by one of these authorities; one
    /// that does is marked [`VerifiedClient`], others connect as before.
    pub fn server_config(
        self: &Arc<Self>,
        clients: Option<rustls::RootCertStore>,
    ) -> Result<Arc<rustls::ServerConfig>> {
        let builder = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .context("configuring TLS")?;
        let builder = match clients {
            None => builder.with_no_client_auth(),
            Some(roots) => builder.with_client_cert_verifier(
                rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    self.provider.clone(),
                )
                .allow_unauthenticated()
                .build()
                .context("configuring client certificates")?,
            ),
        };
        let mut config = builder.with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Loads the files again if they changed since the last look; whether a new pair is
    /// now served.
    pub fn reload_if_changed(&self) -> bool {
        let now = stamp(&self.cert, &self.key);
        let mut seen = self.seen.lock();
        if *seen == now {
            return false;
        }
        match certified_key(&self.provider, &self.cert, &self.key) {
            Ok(pair) => {
                *self.current.write() = Arc::new(pair);
                *seen = now;
                tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(e) => {
                // Keep serving the old pair; look again next time (the files may be
                // half-written).
                tracing::warn!(
                    error = format!("{e:#}"),
                    "TLS certificate not reloaded; keeping the one served"
                );
                false
            }
        }
    }

    /// Looks at the files every `every` until `stop` turns true.
    pub async fn watch(self: Arc<Self>, every: Duration, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.reload_if_changed();
                }
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }
}

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let look = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| (m.modified().ok(), m.len()))
            .unwrap_or((None, 0))
    };
    [look(cert), look(key)]
}

fn certified_key(provider: &CryptoProvider, cert: &Path, key: &Path) -> Result<CertifiedKey> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read the TLS certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
    if chain.is_empty() {
        bail!("{} holds no certificate", cert.display());
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read a PEM private key from {}", key.display()))?;
    let pair = CertifiedKey::from_der(chain, key_der, provider).with_context(|| {
        format!(
            "the key {} does not fit the certificate {}",
            key.display(),
            cert.display()
        )
    })?;
    Ok(pair)
}
