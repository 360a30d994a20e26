//! TLS: PEM pairs to rustls keys, and the SNI resolver that reads the table in force.

use crate::table::Compiled;
use arc_swap::ArcSwap;
use deis_core::route::CertificatePair;
use deis_core::ValidationError;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// The crypto provider of every TLS listener (ring; no process-wide default is assumed).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses a PEM certificate chain and private key into a signing key, checking that they
/// belong together. `field` names the pair in the error; the key never appears in it.
pub(crate) fn certified_key(
    field: &str,
    pair: &CertificatePair,
) -> Result<Arc<CertifiedKey>, ValidationError> {
    let invalid = |rule: &'static str, message: String| ValidationError::new(field, rule, message);
    let chain = CertificateDer::pem_slice_iter(pair.cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            invalid(
                "bad_certificate",
                format!("the certificate is not valid PEM: {e}"),
            )
        })?;
    if chain.is_empty() {
        return Err(invalid(
            "bad_certificate",
            "the certificate holds no PEM CERTIFICATE block".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(pair.key.as_bytes()).map_err(|_| {
        invalid(
            "bad_key",
            "the private key is not a valid PEM private key".into(),
        )
    })?;
    let certified = CertifiedKey::from_der(chain, key, &provider())
        .map_err(|e| invalid("bad_key", format!("the key pair is unusable: {e}")))?;
    Ok(Arc::new(certified))
}

/// Chooses the certificate by SNI: the table's exact common name, then a wildcard
/// `*.<parent>` entry, then the platform certificate.
#[derive(Debug)]
pub(crate) struct SniResolver {
    pub(crate) table: Arc<ArcSwap<Compiled>>,
    pub(crate) platform: Option<Arc<CertifiedKey>>,
}

impl SniResolver {
    pub(crate) fn lookup(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = server_name {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            let table = self.table.load();
            if let Some(key) = table.certificates.get(&name) {
                return Some(key.clone());
            }
            if let Some((_, parent)) = name.split_once('.') {
                if let Some(key) = table.certificates.get(&format!("*.{parent}")) {
                    return Some(key.clone());
                }
            }
        }
        self.platform.clone()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.lookup(hello.server_name())
    }
}

/// The rustls configuration of https listeners: SNI resolution, ALPN `h2` then `http/1.1`.
pub(crate) fn server_config(resolver: SniResolver) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
