//! The controller service: every business rule of the platform, independent of HTTP.
//!
//! [`Controller`] holds the store, scheduler, discovery and log source as trait objects
//! and checks who may do what ([`perms`]). Every change that Deis turned into a release
//! goes through one place (the `deploy` module): it appends the release atomically with
//! `Store::append_release`, then converges the scheduler with a bounded timeout, and
//! discards the release again when that fails, so the app stays on its previous release.

mod apps;
mod certs;
mod config;
mod deploy;
mod domains;
mod error;
mod hooks;
mod keys;
pub mod perms;
mod releases;
mod scale;
mod users;

pub use error::{ServiceError, ServiceResult};
pub use perms::Access;

use crate::logs::{LogSource, MemoryLogs};
use crate::secrets::PasswordCost;
use crate::slugs::BuildStorage;
use deis_core::memory::{MemoryDiscovery, MemoryScheduler, MemoryStore};
use deis_core::{DynDiscovery, DynScheduler, DynStore};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Who may register (`/deis/controller/registrationMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegistrationMode {
    /// Anyone may register.
    #[default]
    Enabled,
    /// Only administrators may register new users.
    AdminOnly,
    /// Nobody may register.
    Disabled,
}

impl FromStr for RegistrationMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "enabled" => Ok(RegistrationMode::Enabled),
            "admin_only" => Ok(RegistrationMode::AdminOnly),
            "disabled" => Ok(RegistrationMode::Disabled),
            other => Err(format!(
                "unknown registration mode {other:?}; expected enabled, admin_only or disabled"
            )),
        }
    }
}

/// The controller's settings.
#[derive(Clone)]
pub struct Settings {
    /// The platform domain: apps answer at `<app>.<domain>`.
    pub platform_domain: String,
    /// Who may register.
    pub registration_mode: RegistrationMode,
    /// The shared secret of the builder hooks (`X-Deis-Builder-Auth`); hooks are refused
    /// while it is `None`.
    pub builder_key: Option<String>,
    /// App ids nobody may take (Deis: the controller's subdomain, `deis`).
    pub reserved_app_ids: Vec<String>,
    /// The default page size of lists.
    pub page_size: u64,
    /// The largest page size a client may ask for.
    pub max_page_size: u64,
    /// How long one scheduler call (apply, run) may take before the request gives up with
    /// 503 and the release is discarded.
    pub apply_timeout: Duration,
    /// The cost of new password hashes.
    pub password_cost: PasswordCost,
    /// The version in `DEIS_PLATFORM_VERSION`.
    pub platform_version: String,
    /// The largest request body in bytes; larger bodies get 413.
    pub body_limit_bytes: usize,
    /// How many builds' slugs garbage collection keeps per app: those of the builds most
    /// recently released (the current release's always among them; at least 1).
    pub slugs_kept: usize,
    /// The Docker registry (`host:port`) images deployed with `deis pull` are published to
    /// (tagged and pushed through the scheduler's engine), so every node can fetch them;
    /// `None` runs the image as named.
    pub registry: Option<String>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("platform_domain", &self.platform_domain)
            .field("registration_mode", &self.registration_mode)
            .field(
                "builder_key",
                &self.builder_key.as_ref().map(|_| "<redacted>"),
            )
            .field("reserved_app_ids", &self.reserved_app_ids)
            .field("page_size", &self.page_size)
            .field("max_page_size", &self.max_page_size)
            .field("apply_timeout", &self.apply_timeout)
            .field("password_cost", &self.password_cost)
            .field("platform_version", &self.platform_version)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("slugs_kept", &self.slugs_kept)
            .field("registry", &self.registry)
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            platform_domain: "local.deis.invalid".into(),
            registration_mode: RegistrationMode::Enabled,
            builder_key: None,
            reserved_app_ids: deis_core::validation::DEFAULT_RESERVED_APP_IDS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            page_size: deis_core::model::PageRequest::DEFAULT_LIMIT,
            max_page_size: 1000,
            apply_timeout: Duration::from_secs(60),
            password_cost: PasswordCost::RECOMMENDED,
            platform_version: "1.13.4".into(),
            body_limit_bytes: 1024 * 1024,
            slugs_kept: 5,
            registry: None,
        }
    }
}

/// Proof that the holder has the deploy lock of an app.
#[derive(Debug)]
pub(crate) struct AppGuard(#[allow(dead_code)] tokio::sync::OwnedMutexGuard<()>);

/// The platform's business rules over a store, a scheduler, discovery and a log source.
#[derive(Debug)]
pub struct Controller {
    pub(crate) store: DynStore,
    pub(crate) scheduler: DynScheduler,
    pub(crate) discovery: DynDiscovery,
    pub(crate) logs: Arc<dyn LogSource>,
    pub(crate) settings: Settings,
    pub(crate) build_storage: OnceLock<Arc<dyn BuildStorage>>,
    app_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Controller {
    /// A controller over the given backends.
    pub fn new(
        store: DynStore,
        scheduler: DynScheduler,
        discovery: DynDiscovery,
        logs: Arc<dyn LogSource>,
        settings: Settings,
    ) -> Self {
        Controller {
            store,
            scheduler,
            discovery,
            logs,
            settings,
            build_storage: OnceLock::new(),
            app_locks: Mutex::new(HashMap::new()),
        }
    }

    /// Connects the builder's storage (slugs, build caches, repositories): from then on
    /// deploys collect old slugs, rollbacks check that their slug still exists, and
    /// destroying an app deletes what the builder kept for it. Only the first call counts;
    /// it returns whether this one did.
    pub fn attach_build_storage(&self, storage: Arc<dyn BuildStorage>) -> bool {
        self.build_storage.set(storage).is_ok()
    }

    /// A controller over fresh in-memory backends (for tests, examples and benchmarks).
    pub fn in_memory(settings: Settings) -> Self {
        Controller::new(
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryScheduler::new()),
            Arc::new(MemoryDiscovery::new()),
            Arc::new(MemoryLogs::default()),
            settings,
        )
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The store.
    pub fn store(&self) -> &DynStore {
        &self.store
    }

    /// The scheduler.
    pub fn scheduler(&self) -> &DynScheduler {
        &self.scheduler
    }

    /// The discovery backend.
    pub fn discovery(&self) -> &DynDiscovery {
        &self.discovery
    }

    /// The lock that serializes release-and-rollout of one app in this process, so two
    /// deploys of an app never race each other to the scheduler.
    pub(crate) fn app_lock(&self, app: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.app_locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(app.to_string()).or_default().clone()
    }

    /// Waits (at most `apply_timeout`, then 409) for the app's deploy lock.
    pub(crate) async fn lock_app(&self, app: &str) -> ServiceResult<AppGuard> {
        let lock = self.app_lock(app);
        tokio::time::timeout(self.settings.apply_timeout, lock.lock_owned())
            .await
            .map(AppGuard)
            .map_err(|_| {
                ServiceError::Conflict(format!(
                    "Another deploy of {app} is in progress; try again."
                ))
            })
    }

    pub(crate) fn forget_app_lock(&self, app: &str) {
        self.app_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(app);
    }

    /// `<app>.<platform domain>`.
    pub fn app_url(&self, app: &str) -> String {
        format!("{app}.{}", self.settings.platform_domain)
    }
}
