//! Custom domains, mirrored into discovery for the routers.

use super::{Access, Controller, ServiceError, ServiceResult};
use deis_core::model::{Domain, Page, PageRequest, User};
use deis_core::{validation, DiscoveryExt, Timestamp};
use uuid::Uuid;

impl Controller {
    /// `GET /v1/apps/<id>/domains/`.
    pub async fn list_domains(
        &self,
        caller: &User,
        app: &str,
        page: PageRequest,
    ) -> ServiceResult<Page<Domain>> {
        let app = self.authorize_app(caller, app, Access::Use).await?;
        Ok(self.store.list_domains(&app.id, page).await?)
    }

    /// `POST /v1/apps/<id>/domains/`: validated, unique across apps, written to discovery.
    pub async fn add_domain(
        &self,
        caller: &User,
        app: &str,
        domain: &str,
    ) -> ServiceResult<Domain> {
        let app = self.authorize_app(caller, app, Access::Use).await?;
        let fqdn = validation::domain(domain)?;
        let now = Timestamp::now();
        let record = self
            .store
            .add_domain(Domain {
                uuid: Uuid::new_v4(),
                app: app.id.clone(),
                owner: caller.username.clone(),
                domain: fqdn.clone(),
                created: now,
                updated: now,
            })
            .await
            .map_err(|e| match e {
                deis_core::Error::AlreadyExists { .. } => ServiceError::field(
                    "domain",
                    "unique",
                    "Domain is already in use by another application.",
                ),
                other => other.into(),
            })?;
        self.discovery.set_domain(&fqdn, &app.id).await?;
        Ok(record)
    }

    /// `DELETE /v1/apps/<id>/domains/<domain>`: owner or admin.
    pub async fn remove_domain(&self, caller: &User, app: &str, domain: &str) -> ServiceResult<()> {
        let app = self.authorize_app(caller, app, Access::Destroy).await?;
        let fqdn = domain.trim_end_matches('.').to_ascii_lowercase();
        self.store.delete_domain(&app.id, &fqdn).await?;
        self.discovery.remove_domain(&fqdn).await?;
        Ok(())
    }
}
