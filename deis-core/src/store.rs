//! The `Store` trait: the platform database, the source of truth.

use crate::error::Result;
use crate::model::{
    App, Build, Certificate, Config, Domain, Formation, Key, NewUser, Page, PageRequest, Push,
    Release, TokenHash, User,
};
use async_trait::async_trait;
use std::fmt::Debug;
use std::sync::Arc;
use uuid::Uuid;

/// Which apps a listing returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppFilter {
    /// Every app (what an administrator sees).
    All,
    /// Apps the user owns or collaborates on.
    VisibleTo(String),
}

/// The build a new release runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildChoice {
    /// Keep the build of the app's latest release (config changes).
    Current,
    /// Use an existing build of the app (rollbacks).
    Existing(Uuid),
    /// Record this new build and use it (pushes, image deploys).
    New(Box<Build>),
}

/// The config a new release runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChoice {
    /// Keep the config of the app's latest release (new builds).
    Current,
    /// Use an existing config revision of the app (rollbacks).
    Existing(Uuid),
    /// Record this new config revision and use it. The write fails with
    /// `Error::Precondition` unless the latest release's config has revision
    /// `expected_revision`: optimistic concurrency, nothing is lost.
    New {
        /// The new revision (its `revision` field is set by the store to
        /// `expected_revision + 1`).
        config: Box<Config>,
        /// The revision the writer read and changed.
        expected_revision: u64,
    },
}

/// A request to append the next release of an app, atomically with the build and config
/// records it introduces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRelease {
    /// The app's name.
    pub app: String,
    /// Who causes the release.
    pub owner: String,
    /// What changed (see [`crate::release`]).
    pub summary: String,
    /// The release's build.
    pub build: BuildChoice,
    /// The release's config.
    pub config: ConfigChoice,
}

/// The platform database.
///
/// Every method is atomic. Lists are ordered stably (apps and users by name, releases and
/// builds newest first, keys, domains and certificates by name) so pages never overlap or
/// skip. Implementations: `MemoryStore` here, SQLite and PostgreSQL in `deis-store`.
#[async_trait]
pub trait Store: Debug + Send + Sync + 'static {
    /// The backend's name, e.g. `memory`, `sqlite`, `postgres`.
    fn backend(&self) -> &'static str;

    // Users and tokens.

    /// Creates a user. The first user ever created becomes a superuser, exactly once, even
    /// when registrations race. Fails with `AlreadyExists` for a taken username.
    async fn create_user(&self, user: NewUser) -> Result<User>;
    /// Reads a user by name.
    async fn get_user(&self, username: &str) -> Result<User>;
    /// Lists users by name.
    async fn list_users(&self, page: PageRequest) -> Result<Page<User>>;
    /// Replaces a user's password hash.
    async fn set_password_hash(&self, username: &str, password_hash: &str) -> Result<()>;
    /// Grants or revokes administrator rights.
    async fn set_superuser(&self, username: &str, superuser: bool) -> Result<()>;
    /// Records a successful login.
    async fn touch_last_login(&self, username: &str) -> Result<()>;
    /// Deletes a user with their token, keys and permissions. Fails with `Precondition`
    /// while the user still owns apps.
    async fn delete_user(&self, username: &str) -> Result<()>;
    /// Sets the user's one API token (by its hash), replacing the previous one.
    async fn set_token(&self, username: &str, token: &TokenHash) -> Result<()>;
    /// Finds the user whose token has this hash.
    async fn user_by_token(&self, token: &TokenHash) -> Result<User>;

    // SSH keys.

    /// Adds a key. Fails with `AlreadyExists` when the owner has a key of that name or any
    /// user has the same public key.
    async fn add_key(&self, key: Key) -> Result<Key>;
    /// Reads one of a user's keys by name.
    async fn get_key(&self, owner: &str, id: &str) -> Result<Key>;
    /// Lists a user's keys by name.
    async fn list_keys(&self, owner: &str, page: PageRequest) -> Result<Page<Key>>;
    /// Finds a key by fingerprint, for SSH authentication.
    async fn key_by_fingerprint(&self, fingerprint: &str) -> Result<Key>;
    /// Deletes one of a user's keys.
    async fn delete_key(&self, owner: &str, id: &str) -> Result<()>;

    // Apps, permissions and formation.

    /// Creates an app with its first config (revision 1) and release v1, atomically.
    /// Fails with `AlreadyExists` for a taken id.
    async fn create_app(&self, app: App) -> Result<App>;
    /// Reads an app.
    async fn get_app(&self, id: &str) -> Result<App>;
    /// Lists apps by id.
    async fn list_apps(&self, filter: AppFilter, page: PageRequest) -> Result<Page<App>>;
    /// Transfers an app to another (existing) user.
    async fn set_owner(&self, app: &str, owner: &str) -> Result<App>;
    /// Sets the app's desired formation. Scaling is not a release.
    async fn set_formation(&self, app: &str, formation: &Formation) -> Result<App>;
    /// Deletes an app and everything that belongs to it.
    async fn delete_app(&self, id: &str) -> Result<()>;
    /// Lets a user collaborate on an app. Fails with `AlreadyExists` when they already do.
    async fn grant(&self, app: &str, username: &str) -> Result<()>;
    /// Withdraws a collaborator.
    async fn revoke(&self, app: &str, username: &str) -> Result<()>;
    /// Lists an app's collaborators by name.
    async fn collaborators(&self, app: &str) -> Result<Vec<String>>;

    // Builds, configs and releases.

    /// Reads a build of an app.
    async fn get_build(&self, app: &str, uuid: Uuid) -> Result<Build>;
    /// Lists an app's builds, newest first.
    async fn list_builds(&self, app: &str, page: PageRequest) -> Result<Page<Build>>;
    /// Reads the config of the app's latest release.
    async fn current_config(&self, app: &str) -> Result<Config>;
    /// Reads a config revision by uuid.
    async fn get_config(&self, app: &str, uuid: Uuid) -> Result<Config>;
    /// Appends the app's next release: version = latest + 1, never a gap or a duplicate,
    /// atomically with the build and config it introduces.
    async fn append_release(&self, release: NewRelease) -> Result<Release>;
    /// Removes the app's latest release (and the build and config it alone introduced),
    /// used when its rollout failed so the app stays on the previous release. Fails with
    /// `Precondition` when `version` is not the latest or is v1.
    async fn discard_release(&self, app: &str, version: u64) -> Result<()>;
    /// Reads one release.
    async fn get_release(&self, app: &str, version: u64) -> Result<Release>;
    /// Reads the app's latest release.
    async fn latest_release(&self, app: &str) -> Result<Release>;
    /// Lists an app's releases, newest first.
    async fn list_releases(&self, app: &str, page: PageRequest) -> Result<Page<Release>>;

    // Domains and certificates.

    /// Adds a custom domain. Fails with `AlreadyExists` when any app has it.
    async fn add_domain(&self, domain: Domain) -> Result<Domain>;
    /// Reads a domain record by name.
    async fn get_domain(&self, domain: &str) -> Result<Domain>;
    /// Lists an app's domains by name.
    async fn list_domains(&self, app: &str, page: PageRequest) -> Result<Page<Domain>>;
    /// Removes one of an app's domains.
    async fn delete_domain(&self, app: &str, domain: &str) -> Result<()>;
    /// Adds a certificate. Fails with `AlreadyExists` for a taken common name.
    async fn add_certificate(&self, certificate: Certificate) -> Result<Certificate>;
    /// Reads a certificate (with its PEM texts) by common name.
    async fn get_certificate(&self, common_name: &str) -> Result<Certificate>;
    /// Lists certificates by common name; `owner` limits the list to one user's.
    async fn list_certificates(
        &self,
        owner: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<Certificate>>;
    /// Removes a certificate.
    async fn delete_certificate(&self, common_name: &str) -> Result<()>;

    // Pushes.

    /// Records a push (an audit record).
    async fn record_push(&self, push: Push) -> Result<Push>;
    /// Lists an app's pushes, newest first.
    async fn list_pushes(&self, app: &str, page: PageRequest) -> Result<Page<Push>>;
}

/// A shared, dynamically chosen store.
pub type DynStore = Arc<dyn Store>;
