//! TLS with SNI (platform versus per-domain certificates), HSTS and the https redirect.

use crate::common::*;
use deis_core::route::CertificatePair;
use deis_core::Router;
use deis_router::{BuiltinRouter, Hsts, ListenerKind, ListenerOptions, RouterConfig};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Pki {
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        Self { ca, ca_key }
    }

    /// A leaf certificate for `names`, signed by the CA: (PEM pair, certificate DER).
    pub fn leaf(&self, names: &[&str]) -> (CertificatePair, Vec<u8>) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = CertificateParams::new(names).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        let pair = CertificatePair {
            cert: cert.pem(),
            key: key.serialize_pem(),
        };
        (pair, cert.der().to_vec())
    }

    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

/// Connects with SNI `name` (verifying against the CA), sends a GET, returns the certificate
/// served and the response text.
pub async fn tls_get(pki: &Pki, addr: SocketAddr, name: &str, path: &str) -> (Vec<u8>, String) {
    try_tls_get(pki, addr, name, path)
        .await
        .expect("TLS handshake")
}

/// [`tls_get`] that returns a failed handshake as an error.
pub async fn try_tls_get(
    pki: &Pki,
    addr: SocketAddr,
    name: &str,
    path: &str,
) -> std::io::Result<(Vec<u8>, String)> {
    let connector = tokio_rustls::TlsConnector::from(pki.client_config());
    let stream = TcpStream::connect(addr).await?;
    let server_name = ServerName::try_from(name.to_string()).unwrap();
    let mut tls = connector.connect(server_name, stream).await?;
    let served: CertificateDer<'static> = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    Ok((
        served.to_vec(),
        String::from_utf8_lossy(&response).to_string(),
    ))
}

#[tokio::test]
async fn chooses_certificates_by_sni() {
    let pki = Pki::new();
    let (platform, platform_der) = pki.leaf(&["*.example.test"]);
    let (custom, custom_der) = pki.leaf(&["www.custom.test"]);
    let go = upstream("go").await;
    let config = RouterConfig {
        platform_certificate: Some(platform),
        ..RouterConfig::default()
    };
    let router = BuiltinRouter::new(config).unwrap();
    let mut table = table(1, &[("go", &[go.address()])]);
    table
        .apps
        .get_mut("go")
        .unwrap()
        .domains
        .insert("www.custom.test".into());
    table.certificates.insert("www.custom.test".into(), custom);
    router.apply(&table).await.unwrap();
    let https = router
        .listen(ListenerOptions::new(
            ListenerKind::Https,
            "127.0.0.1:0".parse().unwrap(),
        ))
        .await
        .unwrap();
    let addr = https.local_addr();

    let (served, response) = tls_get(&pki, addr, "www.custom.test", "/").await;
    assert_eq!(served, custom_der, "the per-domain certificate for its SNI");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let reply = echoed(response.split("\r\n\r\n").nth(1).unwrap());
    assert_eq!(seen_header(&reply, "x-forwarded-proto").unwrap(), "https");

    let (served, response) = tls_get(&pki, addr, "go.example.test", "/").await;
    assert_eq!(served, platform_der, "the platform certificate by default");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // curl over TLS negotiates HTTP/2 by ALPN.
    let port = addr.port();
    let output = tokio::process::Command::new("curl")
        .args([
            "-s",
            "-k",
            "--http2",
            "-w",
            "\n%{http_version} %{http_code}",
            "--resolve",
        ])
        .arg(format!("www.custom.test:{port}:127.0.0.1"))
        .arg(format!("https://www.custom.test:{port}/alpn"))
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(text.ends_with("\n2 200"), "{text}");

    // A certificate removed from the table falls back to the platform one at once.
    table.certificates.clear();
    router.apply(&table).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(pki.client_config());
    let stream = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("www.custom.test").unwrap();
    let error = connector.connect(name, stream).await.unwrap_err();
    assert!(error.to_string().contains("*.example.test"), "{error}");
}

#[tokio::test]
async fn refuses_a_bad_platform_certificate() {
    let config = RouterConfig {
        platform_certificate: Some(CertificatePair {
            cert: "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n".into(),
            key: "SECRET".into(),
        }),
        ..RouterConfig::default()
    };
    let error = BuiltinRouter::new(config).unwrap_err();
    assert!(
        error.to_string().contains("platform_certificate"),
        "{error}"
    );
    assert!(!error.to_string().contains("SECRET"));
    // A key that does not match the certificate is refused too.
    let pki = Pki::new();
    let (mut one, _) = pki.leaf(&["one.test"]);
    let (two, _) = pki.leaf(&["two.test"]);
    one.key = two.key;
    let config = RouterConfig {
        platform_certificate: Some(one),
        ..RouterConfig::default()
    };
    assert!(BuiltinRouter::new(config).is_err());
}

#[tokio::test]
async fn sends_hsts_on_https_and_redirects_plain_http() {
    let pki = Pki::new();
    let (platform, _) = pki.leaf(&["*.example.test"]);
    let go = upstream("go").await;
    let config = RouterConfig {
        platform_certificate: Some(platform),
        hsts: Some(Hsts {
            max_age: 600,
            include_subdomains: true,
            preload: false,
        }),
        redirect_to_https: true,
        https_port: 8443,
        ..RouterConfig::default()
    };
    let (router, http) = router(config).await;
    router
        .apply(&table(1, &[("go", &[go.address()])]))
        .await
        .unwrap();
    let https = router
        .listen(ListenerOptions::new(
            ListenerKind::Https,
            "127.0.0.1:0".parse().unwrap(),
        ))
        .await
        .unwrap();

    let output = tokio::process::Command::new("curl")
        .args([
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-H",
            "Host: go.example.test:80",
        ])
        .arg(format!(
            "http://127.0.0.1:{}/path?q=1",
            http.local_addr().port()
        ))
        .output()
        .await
        .unwrap();
    let head = String::from_utf8_lossy(&output.stdout).to_lowercase();
    assert!(head.starts_with("http/1.1 301"), "{head}");
    assert!(
        head.contains("location: https://go.example.test:8443/path?q=1\r\n"),
        "{head}"
    );
    assert!(!head.contains("strict-transport-security"), "{head}");
    // The default server's health check is not redirected.
    let (status, _) = curl(&[&format!(
        "http://127.0.0.1:{}/health-check",
        http.local_addr().port()
    )])
    .await;
    assert_eq!(status, 200);

    let (_, response) = tls_get(&pki, https.local_addr(), "go.example.test", "/").await;
    let lower = response.to_lowercase();
    assert!(lower.starts_with("http/1.1 200"), "{response}");
    assert!(
        lower.contains("strict-transport-security: max-age=600; includesubdomains\r\n"),
        "{response}"
    );
}

#[tokio::test]
async fn trusts_forwarded_proto_only_when_told_to() {
    let go = upstream("go").await;
    for trust in [false, true] {
        let config = RouterConfig {
            hsts: Some(Hsts::default()),
            redirect_to_https: true,
            trust_forwarded_proto: trust,
            ..RouterConfig::default()
        };
        let (router, http) = router(config).await;
        router
            .apply(&table(1, &[("go", &[go.address()])]))
            .await
            .unwrap();
        let output = tokio::process::Command::new("curl")
            .args(["-s", "-D", "-", "-H", "Host: go.example.test"])
            .args(["-H", "X-Forwarded-Proto: https"])
            .arg(format!("http://127.0.0.1:{}/", http.local_addr().port()))
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).to_lowercase();
        if trust {
            // Behind an SSL-offloading balancer: served, with HSTS, and https upstream.
            assert!(text.starts_with("http/1.1 200"), "{text}");
            assert!(
                text.contains("strict-transport-security: max-age=10886400"),
                "{text}"
            );
            let reply = echoed(text.split("\r\n\r\n").nth(1).unwrap());
            assert_eq!(seen_header(&reply, "x-forwarded-proto").unwrap(), "https");
        } else {
            assert!(text.starts_with("http/1.1 301"), "{text}");
        }
    }
}
