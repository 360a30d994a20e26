//! Who may do what, exactly as Deis v1: administrators everything, the owner everything
//! on their app, collaborators every non-DELETE call on the app and its sub-resources.

use super::{Controller, ServiceError, ServiceResult};
use crate::secrets;
use crate::wire::PermsResponse;
use deis_core::model::{App, User};

/// What a caller wants to do with an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read it or change it (deploy, config, scale, run, add domains, restart, rollback):
    /// owner, collaborators and admins.
    Use,
    /// Delete the app or one of its sub-resources: owner and admins.
    Destroy,
    /// Transfer it or grant and revoke permissions: owner and admins.
    Manage,
}

impl Controller {
    /// The user whose token this is; 401 for an unknown token or an inactive user.
    pub async fn authenticate(&self, token: &str) -> ServiceResult<User> {
        let user = match self.store.user_by_token(&secrets::hash_token(token)).await {
            Ok(user) => user,
            Err(e) if e.is_not_found() => {
                return Err(ServiceError::Unauthenticated("Invalid token.".into()))
            }
            Err(e) => return Err(e.into()),
        };
        if !user.is_active {
            return Err(ServiceError::Unauthenticated(
                "User inactive or deleted.".into(),
            ));
        }
        Ok(user)
    }

    /// Fails with 403 unless the caller is an administrator.
    pub fn require_admin(&self, caller: &User) -> ServiceResult<()> {
        if caller.is_superuser {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(
                "You do not have permission to perform this action.".into(),
            ))
        }
    }

    /// Whether `username` may use the app (owner, collaborator or admin).
    pub(crate) async fn may_use(&self, user: &User, app: &App) -> ServiceResult<bool> {
        if user.is_superuser || app.owner == user.username {
            return Ok(true);
        }
        Ok(self
            .store
            .collaborators(&app.id)
            .await?
            .contains(&user.username))
    }

    /// Reads an app and checks the caller's access: 404 for a missing app, 403 when the
    /// caller may not do this. The app's `url` is filled in.
    pub async fn authorize_app(
        &self,
        caller: &User,
        id: &str,
        access: Access,
    ) -> ServiceResult<App> {
        let app = self.store.get_app(id).await?;
        let allowed = match access {
            Access::Use => self.may_use(caller, &app).await?,
            Access::Destroy | Access::Manage => caller.is_superuser || app.owner == caller.username,
        };
        if !allowed {
            return Err(ServiceError::Forbidden(
                "You do not have permission to perform this action.".into(),
            ));
        }
        Ok(self.present(app))
    }

    /// Fills in the app's computed `url`.
    pub(crate) fn present(&self, mut app: App) -> App {
        app.url = self.app_url(&app.id);
        app
    }

    /// `GET /v1/apps/<id>/perms/`: the collaborators.
    pub async fn list_perms(&self, caller: &User, app: &str) -> ServiceResult<PermsResponse> {
        let app = self.authorize_app(caller, app, Access::Use).await?;
        Ok(PermsResponse {
            users: self.store.collaborators(&app.id).await?,
        })
    }

    /// `POST /v1/apps/<id>/perms/`: the owner or an admin lets a user collaborate.
    pub async fn grant_perm(&self, caller: &User, app: &str, username: &str) -> ServiceResult<()> {
        let app = self.authorize_app(caller, app, Access::Manage).await?;
        self.store.get_user(username).await?;
        if username == app.owner {
            return Err(ServiceError::field(
                "username",
                "owner",
                format!("{username} owns {} already.", app.id),
            ));
        }
        self.store.grant(&app.id, username).await?;
        Ok(())
    }

    /// `DELETE /v1/apps/<id>/perms/<username>`: the owner or an admin, or a collaborator
    /// removing themselves.
    pub async fn revoke_perm(&self, caller: &User, app: &str, username: &str) -> ServiceResult<()> {
        let access = if caller.username == username {
            Access::Use
        } else {
            Access::Manage
        };
        let app = self.authorize_app(caller, app, access).await?;
        self.store.revoke(&app.id, username).await?;
        Ok(())
    }
}
