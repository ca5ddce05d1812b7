//! A certificate authority made at start, a serving certificate it signs, and the kubeconfig
//! that trusts it: the TLS path of every client runs as it does against a real cluster.

use std::sync::Arc;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};

/// The CA and the server's certificate and key.
pub(crate) struct Certificates {
    pub(crate) ca_pem: String,
    pub(crate) server_config: Arc<rustls::ServerConfig>,
}

/// Makes a CA and a serving certificate for `localhost`, `127.0.0.1` and `::1`.
pub(crate) fn make() -> Result<Certificates, String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
    let ca_key = KeyPair::generate().map_err(|e| fail("generating the CA key", &e))?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "cluster-sim-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let issuer =
        rcgen::CertifiedIssuer::self_signed(ca, ca_key).map_err(|e| fail("signing the CA", &e))?;

    let key = KeyPair::generate().map_err(|e| fail("generating the server key", &e))?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()])
        .map_err(|e| fail("naming the server", &e))?;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::V4(
            std::net::Ipv4Addr::LOCALHOST,
        )));
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::V6(
            std::net::Ipv6Addr::LOCALHOST,
        )));
    params.subject_alt_names.push(SanType::DnsName(
        "kubernetes.default.svc"
            .try_into()
            .map_err(|e: rcgen::Error| fail("naming the server", &e))?,
    ));
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| fail("signing the server certificate", &e))?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail("configuring TLS", &e))?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone(), issuer.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .map_err(|e| fail("configuring TLS", &e))?;
    let mut server_config = server_config;
    server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Certificates {
        ca_pem: issuer.pem(),
        server_config: Arc::new(server_config),
    })
}

/// A kubeconfig for `server`, trusting `ca_pem` (when serving HTTPS), with a bearer token.
pub(crate) fn kubeconfig(server: &str, ca_pem: Option<&str>, token: &str) -> String {
    let trust = match ca_pem {
        Some(pem) => format!(
            "    certificate-authority-data: {}\n",
            base64::engine::general_purpose::STANDARD.encode(pem)
        ),
        None => String::new(),
    };
    format!(
        "apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: cluster-sim\n\
         \x20 cluster:\n\
         \x20   server: {server}\n\
         {trust}\
         users:\n\
         - name: cluster-sim-admin\n\
         \x20 user:\n\
         \x20   token: {token}\n\
         contexts:\n\
         - name: cluster-sim\n\
         \x20 context:\n\
         \x20   cluster: cluster-sim\n\
         \x20   user: cluster-sim-admin\n\
         \x20   namespace: default\n\
         current-context: cluster-sim\n"
    )
}
