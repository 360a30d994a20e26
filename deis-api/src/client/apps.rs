//! App endpoints of the client: apps, processes, config, builds, releases, domains and
//! permissions.

use super::{segment, Client, ClientError, ClientResult, Released};
use crate::wire::*;
use deis_core::model::{App, Build, Config, Domain, Release};
use reqwest::{Method, StatusCode};
use serde_json::Value;

impl Client {
    // Apps.

    /// `GET /v1/apps/`.
    pub async fn list_apps(
        &self,
        page: Option<u64>,
        page_size: Option<u64>,
    ) -> ClientResult<Paginated<App>> {
        self.call(
            Method::GET,
            &Self::page_path("/v1/apps/", page, page_size),
            None,
        )
        .await
    }

    /// `POST /v1/apps/`.
    pub async fn create_app(&self, id: Option<&str>) -> ClientResult<App> {
        let request = CreateAppRequest {
            id: id.map(str::to_string),
        };
        self.call(Method::POST, "/v1/apps/", Some(&request)).await
    }

    /// `GET /v1/apps/<id>/`.
    pub async fn get_app(&self, app: &str) -> ClientResult<App> {
        self.call(Method::GET, &format!("/v1/apps/{}/", segment(app)), None)
            .await
    }

    /// `POST /v1/apps/<id>/`: transfer.
    pub async fn transfer_app(&self, app: &str, owner: &str) -> ClientResult<App> {
        let request = TransferRequest {
            owner: owner.into(),
        };
        self.call(
            Method::POST,
            &format!("/v1/apps/{}/", segment(app)),
            Some(&request),
        )
        .await
    }

    /// `DELETE /v1/apps/<id>/`.
    pub async fn destroy_app(&self, app: &str) -> ClientResult<()> {
        self.empty(Method::DELETE, &format!("/v1/apps/{}/", segment(app)), None)
            .await
    }

    /// `POST /v1/apps/<id>/scale/`.
    pub async fn scale(
        &self,
        app: &str,
        counts: &std::collections::BTreeMap<String, u32>,
    ) -> ClientResult<()> {
        self.empty(
            Method::POST,
            &format!("/v1/apps/{}/scale/", segment(app)),
            Some(counts),
        )
        .await
    }

    /// `GET /v1/apps/<id>/logs/`: `None` when there are no logs (204).
    pub async fn logs(&self, app: &str, lines: Option<usize>) -> ClientResult<Option<String>> {
        let mut path = format!("/v1/apps/{}/logs/", segment(app));
        if let Some(lines) = lines {
            path.push_str(&format!("?log_lines={lines}"));
        }
        let response = self.send(Method::GET, &path, None).await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        Ok(Some(response.text().await?))
    }

    /// `GET /v1/apps/<id>/logs/?follow=true`: the tail, then new lines as they come, as
    /// chunks of text until the server or the caller ends it.
    pub async fn follow_logs(
        &self,
        app: &str,
        lines: Option<usize>,
    ) -> ClientResult<futures::stream::BoxStream<'static, ClientResult<bytes::Bytes>>> {
        use futures::StreamExt;
        let mut path = format!("/v1/apps/{}/logs/?follow=true", segment(app));
        if let Some(n) = lines {
            path.push_str(&format!("&log_lines={n}"));
        }
        let response = self.send(Method::GET, &path, None).await?;
        Ok(response
            .bytes_stream()
            .map(|chunk| chunk.map_err(ClientError::Transport))
            .boxed())
    }

    /// `POST /v1/apps/<id>/run/`: exit code and output.
    pub async fn run(&self, app: &str, command: &str) -> ClientResult<(i32, String)> {
        let request = RunCommandRequest {
            command: command.into(),
        };
        self.call(
            Method::POST,
            &format!("/v1/apps/{}/run/", segment(app)),
            Some(&request),
        )
        .await
    }

    /// `GET /v1/apps/<id>/containers/[<type>/]`.
    pub async fn containers(
        &self,
        app: &str,
        process_type: Option<&str>,
    ) -> ClientResult<Paginated<Container>> {
        let path = match process_type {
            None => format!("/v1/apps/{}/containers/", segment(app)),
            Some(t) => format!("/v1/apps/{}/containers/{}/", segment(app), segment(t)),
        };
        self.call(Method::GET, &path, None).await
    }

    /// `GET /v1/apps/<id>/containers/<type>/<num>/`.
    pub async fn container(
        &self,
        app: &str,
        process_type: &str,
        num: u32,
    ) -> ClientResult<Container> {
        self.call(
            Method::GET,
            &format!(
                "/v1/apps/{}/containers/{}/{num}/",
                segment(app),
                segment(process_type)
            ),
            None,
        )
        .await
    }

    /// `POST /v1/apps/<id>/containers/[<type>/[<num>/]]restart/`.
    pub async fn restart(
        &self,
        app: &str,
        process_type: Option<&str>,
        num: Option<u32>,
    ) -> ClientResult<Vec<Container>> {
        let mut path = format!("/v1/apps/{}/containers/", segment(app));
        if let Some(t) = process_type {
            path.push_str(&format!("{}/", segment(t)));
            if let Some(n) = num {
                path.push_str(&format!("{n}/"));
            }
        }
        path.push_str("restart/");
        self.call(Method::POST, &path, None).await
    }

    // Config, builds, releases.

    /// `GET /v1/apps/<id>/config/`.
    pub async fn get_config(&self, app: &str) -> ClientResult<Config> {
        self.call(
            Method::GET,
            &format!("/v1/apps/{}/config/", segment(app)),
            None,
        )
        .await
    }

    /// `POST /v1/apps/<id>/config/` with a patch such as
    /// `{"values": {"FOO": "bar", "OLD": null}}`.
    pub async fn set_config(&self, app: &str, patch: &Value) -> ClientResult<Released<Config>> {
        self.released(&format!("/v1/apps/{}/config/", segment(app)), patch)
            .await
    }

    /// `GET /v1/apps/<id>/builds/`.
    pub async fn list_builds(&self, app: &str) -> ClientResult<Paginated<Build>> {
        self.call(
            Method::GET,
            &format!("/v1/apps/{}/builds/", segment(app)),
            None,
        )
        .await
    }

    /// `GET /v1/apps/<id>/builds/<uuid>/`.
    pub async fn get_build(&self, app: &str, uuid: &str) -> ClientResult<Build> {
        self.call(
            Method::GET,
            &format!("/v1/apps/{}/builds/{}/", segment(app), segment(uuid)),
            None,
        )
        .await
    }

    /// `POST /v1/apps/<id>/builds/`: deploys an image.
    pub async fn create_build(
        &self,
        app: &str,
        request: &BuildRequest,
    ) -> ClientResult<Released<Build>> {
        self.released(&format!("/v1/apps/{}/builds/", segment(app)), request)
            .await
    }

    /// `GET /v1/apps/<id>/releases/`.
    pub async fn list_releases(&self, app: &str) -> ClientResult<Paginated<Release>> {
        self.call(
            Method::GET,
            &format!("/v1/apps/{}/releases/", segment(app)),
            None,
        )
        .await
    }

    /// `GET /v1/apps/<id>/releases/v<N>/`.
    pub async fn get_release(&self, app: &str, version: u64) -> ClientResult<Release> {
        self.call(
            Method::GET,
            &format!("/v1/apps/{}/releases/v{version}/", segment(app)),
            None,
        )
        .await
    }

    /// `POST /v1/apps/<id>/releases/rollback/`: the new release's version.
    pub async fn rollback(&self, app: &str, version: Option<u64>) -> ClientResult<u64> {
        let request = RollbackRequest { version };
        let response: Released<VersionResponse> = self
            .released(
                &format!("/v1/apps/{}/releases/rollback/", segment(app)),
                &request,
            )
            .await?;
        Ok(response.body.version)
    }

    // Domains and perms.

    /// `GET /v1/apps/<id>/domains/`.
    pub async fn list_domains(&self, app: &str) -> ClientResult<Paginated<Domain>> {
        self.call(
            Method::GET,
            &format!("/v1/apps/{}/domains/", segment(app)),
            None,
        )
        .await
    }

    /// `POST /v1/apps/<id>/domains/`.
    pub async fn add_domain(&self, app: &str, domain: &str) -> ClientResult<Domain> {
        let request = DomainRequest {
            domain: domain.into(),
        };
        self.call(
            Method::POST,
            &format!("/v1/apps/{}/domains/", segment(app)),
            Some(&request),
        )
        .await
    }

    /// `DELETE /v1/apps/<id>/domains/<domain>/`.
    pub async fn remove_domain(&self, app: &str, domain: &str) -> ClientResult<()> {
        self.empty(
            Method::DELETE,
            &format!("/v1/apps/{}/domains/{}/", segment(app), segment(domain)),
            None,
        )
        .await
    }

    /// `GET /v1/apps/<id>/perms/`.
    pub async fn list_perms(&self, app: &str) -> ClientResult<PermsResponse> {
        self.call(
            Method::GET,
            &format!("/v1/apps/{}/perms/", segment(app)),
            None,
        )
        .await
    }

    /// `POST /v1/apps/<id>/perms/`.
    pub async fn grant_perm(&self, app: &str, username: &str) -> ClientResult<()> {
        let request = UsernameRequest {
            username: username.into(),
        };
        self.empty(
            Method::POST,
            &format!("/v1/apps/{}/perms/", segment(app)),
            Some(&request),
        )
        .await
    }

    /// `DELETE /v1/apps/<id>/perms/<username>/`.
    pub async fn revoke_perm(&self, app: &str, username: &str) -> ClientResult<()> {
        self.empty(
            Method::DELETE,
            &format!("/v1/apps/{}/perms/{}/", segment(app), segment(username)),
            None,
        )
        .await
    }
}
