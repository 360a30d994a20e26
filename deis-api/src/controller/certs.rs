//! TLS certificates: parsed as PEM X.509 (common name and expiry read from the
//! certificate, no wildcards, as Deis), written to discovery for the routers.

use super::{Controller, ServiceError, ServiceResult};
use crate::wire::CertificateRequest;
use deis_core::discovery::keys;
use deis_core::model::{Certificate, Page, PageRequest, User};
use deis_core::{validation, Timestamp};
use uuid::Uuid;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

/// The largest PEM text accepted for a certificate chain or key.
const PEM_MAX_BYTES: usize = 64 * 1024;

/// What the controller reads from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The subject common name.
    pub common_name: String,
    /// The DNS subject alternative names.
    pub alt_names: Vec<String>,
    /// When it expires.
    pub expires: Timestamp,
}

fn invalid_certificate(message: impl Into<String>) -> ServiceError {
    ServiceError::field("certificate", "invalid", message)
}

/// Parses the first certificate of a PEM chain; every block must be a valid certificate.
pub fn parse_certificate(pem: &str) -> ServiceResult<CertificateInfo> {
    if pem.len() > PEM_MAX_BYTES {
        return Err(invalid_certificate("The certificate chain is too long."));
    }
    validation::pem_block_present(pem, "CERTIFICATE", "certificate")?;
    let mut first = None;
    for block in Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|e| invalid_certificate(format!("Invalid PEM: {e}.")))?;
        if block.label != "CERTIFICATE" {
            continue;
        }
        let cert = block
            .parse_x509()
            .map_err(|e| invalid_certificate(format!("Invalid X.509 certificate: {e}.")))?;
        if first.is_some() {
            continue;
        }
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string)
            .ok_or_else(|| invalid_certificate("The certificate has no subject common name."))?;
        let alt_names = match cert.subject_alternative_name() {
            Ok(Some(san)) => san
                .value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(name) => Some(name.to_string()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let expires = Timestamp::from_micros(
            cert.validity()
                .not_after
                .timestamp()
                .saturating_mul(1_000_000),
        );
        first = Some(CertificateInfo {
            common_name,
            alt_names,
            expires,
        });
    }
    first.ok_or_else(|| invalid_certificate("Expected a PEM certificate."))
}

impl Controller {
    /// `GET /v1/certs/`: your certificates (every certificate for admins).
    pub async fn list_certificates(
        &self,
        caller: &User,
        page: PageRequest,
    ) -> ServiceResult<Page<Certificate>> {
        let owner = (!caller.is_superuser).then_some(caller.username.as_str());
        Ok(self.store.list_certificates(owner, page).await?)
    }

    async fn own_certificate(
        &self,
        caller: &User,
        common_name: &str,
    ) -> ServiceResult<Certificate> {
        let cert = self.store.get_certificate(common_name).await?;
        if !caller.is_superuser && cert.owner != caller.username {
            return Err(ServiceError::Forbidden(
                "You do not have permission to perform this action.".into(),
            ));
        }
        Ok(cert)
    }

    /// `GET /v1/certs/<common_name>/`: the owner or an admin.
    pub async fn get_certificate(
        &self,
        caller: &User,
        common_name: &str,
    ) -> ServiceResult<Certificate> {
        self.own_certificate(caller, common_name).await
    }

    /// `POST /v1/certs/`: `{certificate, key, common_name?}`. The common name defaults to
    /// the certificate's subject CN; a given one must be the CN or a DNS alternative name.
    pub async fn add_certificate(
        &self,
        caller: &User,
        request: &CertificateRequest,
    ) -> ServiceResult<Certificate> {
        let info = parse_certificate(&request.certificate)?;
        if request.key.len() > PEM_MAX_BYTES {
            return Err(ServiceError::field(
                "key",
                "too_long",
                "The key is too long.",
            ));
        }
        validation::pem_private_key(&request.key)?;
        let common_name = match &request.common_name {
            None => info.common_name.clone(),
            Some(name) => {
                let name = name.to_ascii_lowercase();
                let covered = name == info.common_name.to_ascii_lowercase()
                    || info
                        .alt_names
                        .iter()
                        .any(|n| n.to_ascii_lowercase() == name);
                if !covered {
                    return Err(ServiceError::field(
                        "common_name",
                        "mismatch",
                        format!("The certificate is not for {name}."),
                    ));
                }
                name
            }
        };
        validation::certificate_common_name(&common_name)?;
        let now = Timestamp::now();
        let cert = self
            .store
            .add_certificate(Certificate {
                uuid: Uuid::new_v4(),
                owner: caller.username.clone(),
                common_name: common_name.clone(),
                expires: info.expires,
                certificate: request.certificate.clone(),
                key: request.key.clone(),
                created: now,
                updated: now,
            })
            .await
            .map_err(|e| match e {
                deis_core::Error::AlreadyExists { .. } => ServiceError::field(
                    "common_name",
                    "unique",
                    "Certificate with this common name already exists.",
                ),
                other => other.into(),
            })?;
        self.discovery
            .put(&keys::certificate(&common_name), &cert.certificate, None)
            .await?;
        self.discovery
            .put(&keys::certificate_key(&common_name), &cert.key, None)
            .await?;
        Ok(cert)
    }

    /// `DELETE /v1/certs/<common_name>/`: the owner or an admin.
    pub async fn remove_certificate(&self, caller: &User, common_name: &str) -> ServiceResult<()> {
        let cert = self.own_certificate(caller, common_name).await?;
        self.store.delete_certificate(&cert.common_name).await?;
        self.discovery
            .delete_prefix(&format!("{}{}/", keys::CERTS, cert.common_name))
            .await?;
        Ok(())
    }
}
