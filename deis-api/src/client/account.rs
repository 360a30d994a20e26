//! Account endpoints of the client: SSH keys, certificates and the builder hooks.

use super::{segment, Client, ClientResult};
use crate::wire::*;
use deis_core::model::{Certificate, Config, Key, Push};
use reqwest::Method;

impl Client {
    // Keys and certificates.

    /// `GET /v1/keys/`.
    pub async fn list_keys(&self) -> ClientResult<Paginated<Key>> {
        self.call(Method::GET, "/v1/keys/", None).await
    }

    /// `POST /v1/keys/`.
    pub async fn add_key(&self, id: &str, public: &str) -> ClientResult<Key> {
        let request = KeyRequest {
            id: id.into(),
            public: public.into(),
        };
        self.call(Method::POST, "/v1/keys/", Some(&request)).await
    }

    /// `GET /v1/keys/<id>/`.
    pub async fn get_key(&self, id: &str) -> ClientResult<Key> {
        self.call(Method::GET, &format!("/v1/keys/{}/", segment(id)), None)
            .await
    }

    /// `DELETE /v1/keys/<id>/`.
    pub async fn remove_key(&self, id: &str) -> ClientResult<()> {
        self.empty(Method::DELETE, &format!("/v1/keys/{}/", segment(id)), None)
            .await
    }

    /// `GET /v1/certs/`.
    pub async fn list_certs(&self) -> ClientResult<Paginated<Certificate>> {
        self.call(Method::GET, "/v1/certs/", None).await
    }

    /// `POST /v1/certs/`.
    pub async fn add_cert(&self, request: &CertificateRequest) -> ClientResult<Certificate> {
        self.call(Method::POST, "/v1/certs/", Some(request)).await
    }

    /// `GET /v1/certs/<common_name>/`.
    pub async fn get_cert(&self, common_name: &str) -> ClientResult<Certificate> {
        self.call(
            Method::GET,
            &format!("/v1/certs/{}/", segment(common_name)),
            None,
        )
        .await
    }

    /// `DELETE /v1/certs/<common_name>/`.
    pub async fn remove_cert(&self, common_name: &str) -> ClientResult<()> {
        self.empty(
            Method::DELETE,
            &format!("/v1/certs/{}/", segment(common_name)),
            None,
        )
        .await
    }

    // Builder hooks (need `with_builder_key`).

    /// `POST /v1/hooks/push/`.
    pub async fn hook_push(&self, request: &PushHookRequest) -> ClientResult<Push> {
        self.call(Method::POST, "/v1/hooks/push/", Some(request))
            .await
    }

    /// `POST /v1/hooks/build/`.
    pub async fn hook_build(&self, request: &BuildHookRequest) -> ClientResult<BuildHookResponse> {
        self.call(Method::POST, "/v1/hooks/build/", Some(request))
            .await
    }

    /// `POST /v1/hooks/config/`.
    pub async fn hook_config(&self, user: &str, app: &str) -> ClientResult<Config> {
        let request = ConfigHookRequest {
            receive_user: user.into(),
            receive_repo: app.into(),
        };
        self.call(Method::POST, "/v1/hooks/config/", Some(&request))
            .await
    }

    /// `GET /v1/hooks/key/<fingerprint>/`: the owner of an SSH key.
    pub async fn hook_key(&self, fingerprint: &str) -> ClientResult<KeyHookResponse> {
        self.call(
            Method::GET,
            &format!("/v1/hooks/key/{}/", segment(fingerprint)),
            None,
        )
        .await
    }

    /// `POST /v1/hooks/auth/`: checks a git client's user name and API token for an app.
    pub async fn hook_auth(&self, request: &AuthHookRequest) -> ClientResult<AuthHookResponse> {
        self.call(Method::POST, "/v1/hooks/auth/", Some(request))
            .await
    }

    /// `POST /v1/hooks/access/`: whether `user` may use `app` over SSH, and the app's uuid.
    pub async fn hook_access(&self, user: &str, app: &str) -> ClientResult<AuthHookResponse> {
        let request = ConfigHookRequest {
            receive_user: user.into(),
            receive_repo: app.into(),
        };
        self.call(Method::POST, "/v1/hooks/access/", Some(&request))
            .await
    }

    /// `GET /v1/hooks/apps/`: every app id.
    pub async fn hook_apps(&self) -> ClientResult<AppsHookResponse> {
        self.call(Method::GET, "/v1/hooks/apps/", None).await
    }
}
