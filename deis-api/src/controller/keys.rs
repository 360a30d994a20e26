//! SSH keys for `git push`, mirrored into discovery for the builder as Deis did.

use super::users::builder_user_prefix;
use super::{Controller, ServiceError, ServiceResult};
use crate::wire::KeyRequest;
use deis_core::model::{Key, Page, PageRequest, User};
use deis_core::{validation, Timestamp};
use uuid::Uuid;

impl Controller {
    /// `GET /v1/keys/`: your own keys.
    pub async fn list_keys(&self, caller: &User, page: PageRequest) -> ServiceResult<Page<Key>> {
        Ok(self.store.list_keys(&caller.username, page).await?)
    }

    /// `GET /v1/keys/<id>/`.
    pub async fn get_key(&self, caller: &User, id: &str) -> ServiceResult<Key> {
        Ok(self.store.get_key(&caller.username, id).await?)
    }

    /// `POST /v1/keys/`: a valid OpenSSH public key, unique across all users.
    pub async fn add_key(&self, caller: &User, request: &KeyRequest) -> ServiceResult<Key> {
        validation::key_name(&request.id)?;
        let info = validation::ssh_public_key(&request.public)?;
        let now = Timestamp::now();
        let key = Key {
            uuid: Uuid::new_v4(),
            id: request.id.clone(),
            owner: caller.username.clone(),
            public: request.public.trim().to_string(),
            fingerprint: info.fingerprint.clone(),
            created: now,
            updated: now,
        };
        let key = self.store.add_key(key).await.map_err(|e| match e {
            deis_core::Error::AlreadyExists { id, .. } if id == request.id => ServiceError::field(
                "id",
                "unique",
                format!("You already have a key named {id}."),
            ),
            deis_core::Error::AlreadyExists { .. } => {
                ServiceError::field("public", "unique", "This public key is already registered.")
            }
            other => other.into(),
        })?;
        let path = format!(
            "{}{}",
            builder_user_prefix(&caller.username),
            key.fingerprint
        );
        if let Err(e) = self.discovery.put(&path, &key.public, None).await {
            tracing::error!(user = %caller.username, error = %e, "could not publish the key to discovery");
        }
        Ok(key)
    }

    /// `DELETE /v1/keys/<id>/`.
    pub async fn remove_key(&self, caller: &User, id: &str) -> ServiceResult<()> {
        let key = self.store.get_key(&caller.username, id).await?;
        self.store.delete_key(&caller.username, id).await?;
        let path = format!(
            "{}{}",
            builder_user_prefix(&caller.username),
            key.fingerprint
        );
        if let Err(e) = self.discovery.delete_prefix(&path).await {
            tracing::error!(user = %caller.username, error = %e, "could not remove the key from discovery");
        }
        Ok(())
    }
}
