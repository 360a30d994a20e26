//! Users, registration modes, login, tokens, passwords and administrators.

use super::{Controller, RegistrationMode, ServiceError, ServiceResult};
use crate::secrets;
use crate::wire::{AdminPerm, CancelRequest, PasswdRequest, RegisterRequest, TokensRequest};
use deis_core::model::{NewUser, Page, PageRequest, User};
use deis_core::validation;
use std::sync::OnceLock;

/// A hash to verify against when the user does not exist, so a failed login takes as long
/// whether or not the username is taken.
fn dummy_hash(cost: secrets::PasswordCost) -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| secrets::hash_password("not a real password", cost).unwrap_or_default())
}

fn bad_credentials() -> ServiceError {
    ServiceError::field(
        "non_field_errors",
        "invalid_credentials",
        "Unable to log in with provided credentials.",
    )
}

impl Controller {
    /// `POST /v1/auth/register/`. The first user becomes an administrator (the store
    /// guarantees it); a token is created at once and kept only as its hash.
    pub async fn register(
        &self,
        caller: Option<&User>,
        request: &RegisterRequest,
    ) -> ServiceResult<User> {
        match self.settings.registration_mode {
            RegistrationMode::Enabled => {}
            RegistrationMode::Disabled => {
                return Err(ServiceError::Forbidden("Registration is disabled.".into()))
            }
            RegistrationMode::AdminOnly => match caller {
                None => {
                    return Err(ServiceError::Unauthenticated(
                        "Authentication credentials were not provided.".into(),
                    ))
                }
                Some(user) => self.require_admin(user)?,
            },
        }
        validation::username(&request.username)?;
        validation::password(&request.password)?;
        validation::email(&request.email)?;
        for (field, value) in [
            ("first_name", &request.first_name),
            ("last_name", &request.last_name),
        ] {
            if value.chars().count() > 150 || value.chars().any(char::is_control) {
                return Err(ServiceError::field(
                    field,
                    "invalid",
                    "Names may be at most 150 characters, without control characters.",
                ));
            }
        }
        let password_hash = secrets::hash_password(&request.password, self.settings.password_cost)?;
        let user = self
            .store
            .create_user(NewUser {
                username: request.username.clone(),
                email: request.email.clone(),
                first_name: request.first_name.clone(),
                last_name: request.last_name.clone(),
                password_hash,
                superuser: false,
            })
            .await
            .map_err(|e| match e {
                deis_core::Error::AlreadyExists { .. } => ServiceError::field(
                    "username",
                    "unique",
                    "A user with that username already exists.",
                ),
                other => other.into(),
            })?;
        let token = secrets::generate_token()?;
        self.store
            .set_token(&user.username, &secrets::hash_token(&token))
            .await?;
        Ok(user)
    }

    /// `POST /v1/auth/login/`: checks the password and returns a fresh token.
    ///
    /// Tokens are stored only as hashes, so the old one cannot be handed out again: every
    /// login issues a new token and the previous one stops working.
    pub async fn login(&self, username: &str, password: &str) -> ServiceResult<String> {
        let user = match self.store.get_user(username).await {
            Ok(user) => user,
            Err(e) if e.is_not_found() => {
                secrets::verify_password(password, dummy_hash(self.settings.password_cost));
                return Err(bad_credentials());
            }
            Err(e) => return Err(e.into()),
        };
        if !secrets::verify_password(password, &user.password_hash) || !user.is_active {
            return Err(bad_credentials());
        }
        let token = secrets::generate_token()?;
        self.store
            .set_token(&user.username, &secrets::hash_token(&token))
            .await?;
        self.store.touch_last_login(&user.username).await?;
        Ok(token)
    }

    /// The user a request about `username` targets: yourself, or anyone for an admin.
    async fn target_user(&self, caller: &User, username: Option<&str>) -> ServiceResult<User> {
        match username {
            None => Ok(caller.clone()),
            Some(name) if name == caller.username => Ok(caller.clone()),
            Some(name) => {
                self.require_admin(caller)?;
                Ok(self.store.get_user(name).await?)
            }
        }
    }

    /// `DELETE /v1/auth/cancel/`: 409 while the user still owns apps.
    pub async fn cancel(&self, caller: &User, request: &CancelRequest) -> ServiceResult<()> {
        let target = self
            .target_user(caller, request.username.as_deref())
            .await?;
        self.store.delete_user(&target.username).await?;
        if let Err(e) = self
            .discovery
            .delete_prefix(&builder_user_prefix(&target.username))
            .await
        {
            tracing::warn!(user = %target.username, error = %e, "could not remove the user's keys from discovery");
        }
        Ok(())
    }

    /// `POST /v1/auth/passwd/`.
    pub async fn passwd(&self, caller: &User, request: &PasswdRequest) -> ServiceResult<()> {
        let target = self
            .target_user(caller, request.username.as_deref())
            .await?;
        let admin_for_other = caller.is_superuser && target.username != caller.username;
        if !admin_for_other {
            let current = request.password.as_deref().ok_or_else(|| {
                ServiceError::field("password", "required", "This field is required.")
            })?;
            if !secrets::verify_password(current, &target.password_hash) {
                return Err(ServiceError::BadRequest(
                    "Current password does not match".into(),
                ));
            }
        }
        validation::password(&request.new_password).map_err(|mut e| {
            e.field = "new_password".into();
            e
        })?;
        let hash = secrets::hash_password(&request.new_password, self.settings.password_cost)?;
        self.store
            .set_password_hash(&target.username, &hash)
            .await?;
        Ok(())
    }

    /// `POST /v1/auth/tokens/`: a new token for yourself, another user (admin) or every
    /// user (admin; nothing returned).
    pub async fn regenerate_token(
        &self,
        caller: &User,
        request: &TokensRequest,
    ) -> ServiceResult<Option<String>> {
        if request.all {
            self.require_admin(caller)?;
            let users = self.store.list_users(PageRequest::ALL).await?;
            for user in users.items {
                let token = secrets::generate_token()?;
                self.store
                    .set_token(&user.username, &secrets::hash_token(&token))
                    .await?;
            }
            return Ok(None);
        }
        let target = self
            .target_user(caller, request.username.as_deref())
            .await?;
        let token = secrets::generate_token()?;
        self.store
            .set_token(&target.username, &secrets::hash_token(&token))
            .await?;
        Ok(Some(token))
    }

    /// `GET /v1/users/`: admins only.
    pub async fn list_users(&self, caller: &User, page: PageRequest) -> ServiceResult<Page<User>> {
        self.require_admin(caller)?;
        Ok(self.store.list_users(page).await?)
    }

    /// `GET /v1/admin/perms/`: the administrators.
    pub async fn list_admins(
        &self,
        caller: &User,
        page: PageRequest,
    ) -> ServiceResult<Page<AdminPerm>> {
        self.require_admin(caller)?;
        let admins: Vec<AdminPerm> = self
            .store
            .list_users(PageRequest::ALL)
            .await?
            .items
            .into_iter()
            .filter(|u| u.is_superuser)
            .map(|u| AdminPerm {
                username: u.username,
                is_superuser: true,
            })
            .collect();
        Ok(page.slice(&admins))
    }

    /// `POST /v1/admin/perms/` (`admin = true`) and `DELETE /v1/admin/perms/<username>`.
    pub async fn set_admin(&self, caller: &User, username: &str, admin: bool) -> ServiceResult<()> {
        self.require_admin(caller)?;
        self.store.get_user(username).await?;
        self.store.set_superuser(username, admin).await?;
        Ok(())
    }
}

/// `/deis/builder/users/<username>/`: where Deis published a user's SSH keys for the builder.
pub(crate) fn builder_user_prefix(username: &str) -> String {
    format!("/deis/builder/users/{username}/")
}
