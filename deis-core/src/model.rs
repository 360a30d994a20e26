//! The platform's records, with JSON shapes that follow the Deis v1 API (v1.7).

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use uuid::Uuid;

/// Process counts per process type, e.g. `{"web": 3, "worker": 1}` (Deis's `structure`).
pub type Formation = BTreeMap<String, u32>;

/// A platform user. The password hash never leaves the process in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Numeric id, assigned by the store.
    pub id: u64,
    /// Unique login name.
    pub username: String,
    /// E-mail address.
    pub email: String,
    /// Given name (may be empty).
    #[serde(default)]
    pub first_name: String,
    /// Family name (may be empty).
    #[serde(default)]
    pub last_name: String,
    /// Platform administrator: may do everything.
    pub is_superuser: bool,
    /// Mirrors `is_superuser`, as Deis kept both.
    pub is_staff: bool,
    /// Inactive users cannot log in.
    pub is_active: bool,
    /// The last successful login, if any.
    pub last_login: Option<Timestamp>,
    /// When the user registered.
    pub date_joined: Timestamp,
    /// The argon2 PHC string of the password; never serialized.
    #[serde(skip)]
    pub password_hash: String,
}

/// What a store needs to create a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Unique login name.
    pub username: String,
    /// E-mail address.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// The argon2 PHC string of the password (hashing happens above the store).
    pub password_hash: String,
    /// Make this user an administrator regardless of whether others exist.
    pub superuser: bool,
}

/// The hash of an API token: the only form in which a store keeps tokens.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(pub String);

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Even the hash stays out of logs.
        f.write_str("TokenHash(..)")
    }
}

/// An SSH public key registered by a user for `git push` over SSH.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    /// Record id.
    pub uuid: Uuid,
    /// The key's name, e.g. `alice@laptop`, unique per owner.
    pub id: String,
    /// The owning user's name.
    pub owner: String,
    /// The public key line, unique across all users.
    pub public: String,
    /// MD5 fingerprint in colon hex, as `ssh-keygen -l -E md5` prints it.
    pub fingerprint: String,
    /// Creation time.
    pub created: Timestamp,
    /// Last update time.
    pub updated: Timestamp,
}

/// An application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    /// Record id.
    pub uuid: Uuid,
    /// The app's name, unique, used in host names.
    pub id: String,
    /// The owning user's name.
    pub owner: String,
    /// `<id>.<platform domain>`; filled in by the API, empty in the store.
    #[serde(default)]
    pub url: String,
    /// The desired process counts (the formation).
    pub structure: Formation,
    /// Creation time.
    pub created: Timestamp,
    /// Last update time.
    pub updated: Timestamp,
}

impl App {
    /// A new app record owned by `owner`, with no processes.
    pub fn new(id: impl Into<String>, owner: impl Into<String>) -> Self {
        let now = Timestamp::now();
        App {
            uuid: Uuid::new_v4(),
            id: id.into(),
            owner: owner.into(),
            url: String::new(),
            structure: Formation::new(),
            created: now,
            updated: now,
        }
    }
}

/// The result of a build: an image or slug plus the process types it declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// Record id.
    pub uuid: Uuid,
    /// The app's name.
    pub app: String,
    /// Who pushed or imported it.
    pub owner: String,
    /// The image name (Docker backends) or the slug's blob key (local scheduler).
    pub image: String,
    /// The git commit it was built from (empty for image imports).
    #[serde(default)]
    pub sha: String,
    /// Process types and their commands.
    #[serde(default)]
    pub procfile: BTreeMap<String, String>,
    /// `"true"` when the build came from a Dockerfile, as the Deis builder sends it.
    #[serde(default)]
    pub dockerfile: String,
    /// Creation time.
    pub created: Timestamp,
    /// Last update time.
    pub updated: Timestamp,
}

impl Build {
    /// A new build record.
    pub fn new(app: &str, owner: &str, image: &str) -> Self {
        let now = Timestamp::now();
        Build {
            uuid: Uuid::new_v4(),
            app: app.into(),
            owner: owner.into(),
            image: image.into(),
            sha: String::new(),
            procfile: BTreeMap::new(),
            dockerfile: String::new(),
            created: now,
            updated: now,
        }
    }

    /// Whether the build came from a Dockerfile.
    pub fn is_dockerfile(&self) -> bool {
        !self.dockerfile.is_empty()
    }
}

/// An app's configuration: environment values, limits and tags. Every change is a new
/// revision and a new release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Record id.
    pub uuid: Uuid,
    /// The app's name.
    pub app: String,
    /// Who made this revision.
    pub owner: String,
    /// Per-app revision number, starting at 1, used for optimistic concurrency.
    #[serde(default)]
    pub revision: u64,
    /// Environment values.
    pub values: BTreeMap<String, String>,
    /// Memory limit per process type, e.g. `{"web": "512M"}`.
    pub memory: BTreeMap<String, String>,
    /// CPU shares (0–1024) per process type.
    pub cpu: BTreeMap<String, u32>,
    /// Placement tags, e.g. `{"env": "prod"}`.
    pub tags: BTreeMap<String, String>,
    /// Creation time.
    pub created: Timestamp,
    /// Last update time.
    pub updated: Timestamp,
}

impl Config {
    /// The first, empty config of an app.
    pub fn initial(app: &str, owner: &str) -> Self {
        let now = Timestamp::now();
        Config {
            uuid: Uuid::new_v4(),
            app: app.into(),
            owner: owner.into(),
            revision: 1,
            values: BTreeMap::new(),
            memory: BTreeMap::new(),
            cpu: BTreeMap::new(),
            tags: BTreeMap::new(),
            created: now,
            updated: now,
        }
    }

    /// The health check the config asks for, read from the `HEALTHCHECK_*` values.
    pub fn healthcheck(&self) -> Option<Healthcheck> {
        let url = self.values.get("HEALTHCHECK_URL")?.clone();
        let number = |key: &str, default: u64| {
            self.values
                .get(key)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        };
        Some(Healthcheck {
            url,
            initial_delay_secs: number("HEALTHCHECK_INITIAL_DELAY", 0),
            timeout_secs: number("HEALTHCHECK_TIMEOUT", 1),
        })
    }
}

/// An HTTP health check: `GET <url>` must answer 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// The path to request, starting with `/`.
    pub url: String,
    /// Seconds to wait after start before the first check.
    pub initial_delay_secs: u64,
    /// Seconds within which the check must answer 200.
    pub timeout_secs: u64,
}

/// An immutable, numbered pairing of a build and a config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// Record id.
    pub uuid: Uuid,
    /// The app's name.
    pub app: String,
    /// Who caused the release.
    pub owner: String,
    /// Per-app version, 1, 2, 3… with no gaps.
    pub version: u64,
    /// What changed, e.g. `alice deployed abc1234`.
    pub summary: String,
    /// The config revision's uuid.
    pub config: Uuid,
    /// The build's uuid, or `None` before the first build.
    pub build: Option<Uuid>,
    /// Creation time.
    pub created: Timestamp,
    /// Last update time.
    pub updated: Timestamp,
}

/// The state of one instance, with Deis v1's job state names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceState {
    /// Defined but not started.
    Created,
    /// Started, not yet healthy.
    Starting,
    /// Running and healthy; published to the router when routable.
    Up,
    /// Being stopped or drained.
    Down,
    /// Exited unexpectedly; the scheduler is restarting it.
    Crashed,
    /// The scheduler could not start it.
    Error,
    /// Gone.
    Destroyed,
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            InstanceState::Created => "created",
            InstanceState::Starting => "starting",
            InstanceState::Up => "up",
            InstanceState::Down => "down",
            InstanceState::Crashed => "crashed",
            InstanceState::Error => "error",
            InstanceState::Destroyed => "destroyed",
        };
        f.write_str(text)
    }
}

/// One running copy of a process type (Deis's "container").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// The app's name.
    pub app: String,
    /// The process type, e.g. `web`.
    #[serde(rename = "type")]
    pub process_type: String,
    /// The instance number within its type, from 1.
    pub num: u32,
    /// The release version it runs.
    pub release: u64,
    /// The current state.
    pub state: InstanceState,
    /// `host:port` where it listens, once known.
    pub endpoint: Option<String>,
}

impl Instance {
    /// The job name Deis used: `<app>_v<release>.<type>.<num>`.
    pub fn job_name(&self) -> String {
        format!(
            "{}_v{}.{}.{}",
            self.app, self.release, self.process_type, self.num
        )
    }

    /// The short name Deis showed: `<type>.<num>`.
    pub fn short_name(&self) -> String {
        format!("{}.{}", self.process_type, self.num)
    }

    /// Whether the router sends traffic to this process type (only `web` and `cmd`, as Deis).
    pub fn is_routable(&self) -> bool {
        is_routable_type(&self.process_type)
    }
}

/// Whether a process type receives HTTP traffic: only `web` and `cmd`, as in Deis v1.
pub fn is_routable_type(process_type: &str) -> bool {
    process_type == "web" || process_type == "cmd"
}

/// A custom domain routed to an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    /// Record id.
    pub uuid: Uuid,
    /// The app's name.
    pub app: String,
    /// Who added it.
    pub owner: String,
    /// The fully qualified name, lowercased, unique across apps.
    pub domain: String,
    /// Creation time.
    pub created: Timestamp,
    /// Last update time.
    pub updated: Timestamp,
}

/// A TLS certificate for a domain. The PEM texts are write-only in the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// Record id.
    pub uuid: Uuid,
    /// Who added it.
    pub owner: String,
    /// The domain it serves (its subject common name), unique.
    pub common_name: String,
    /// When it expires, read from the certificate.
    pub expires: Timestamp,
    /// The certificate chain in PEM; never serialized.
    #[serde(skip)]
    pub certificate: String,
    /// The private key in PEM; never serialized.
    #[serde(skip)]
    pub key: String,
    /// Creation time.
    pub created: Timestamp,
    /// Last update time.
    pub updated: Timestamp,
}

/// An audit record of one `git push`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Push {
    /// Record id.
    pub uuid: Uuid,
    /// The app's name.
    pub app: String,
    /// The pushing user.
    pub owner: String,
    /// The pushed commit.
    pub sha: String,
    /// The SSH key fingerprint used, if SSH.
    #[serde(default)]
    pub fingerprint: String,
    /// The user the builder saw.
    pub receive_user: String,
    /// The repository the builder saw.
    pub receive_repo: String,
    /// `SSH_CONNECTION`, if SSH.
    #[serde(default)]
    pub ssh_connection: String,
    /// `SSH_ORIGINAL_COMMAND`, if SSH.
    #[serde(default)]
    pub ssh_original_command: String,
    /// Creation time.
    pub created: Timestamp,
    /// Last update time.
    pub updated: Timestamp,
}

/// A request for one page of a list, in a stable order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// How many records to skip.
    pub offset: u64,
    /// How many records to return at most.
    pub limit: u64,
}

impl PageRequest {
    /// The default page size, as Deis: 100.
    pub const DEFAULT_LIMIT: u64 = 100;

    /// Everything (for internal callers that need the whole list).
    pub const ALL: PageRequest = PageRequest {
        offset: 0,
        limit: u64::MAX,
    };

    /// The first page of `limit` records.
    pub fn first(limit: u64) -> Self {
        PageRequest { offset: 0, limit }
    }

    /// Applies this page to an already ordered list.
    pub fn slice<T: Clone>(&self, items: &[T]) -> Page<T> {
        let start = usize::try_from(self.offset)
            .unwrap_or(usize::MAX)
            .min(items.len());
        let len = usize::try_from(self.limit).unwrap_or(usize::MAX);
        let end = start.saturating_add(len).min(items.len());
        Page {
            total: items.len() as u64,
            items: items[start..end].to_vec(),
        }
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest::first(Self::DEFAULT_LIMIT)
    }
}

/// One page of a list, with the total count across all pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// How many records exist in total.
    pub total: u64,
    /// The records of this page.
    pub items: Vec<T>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_follow_deis() {
        let instance = Instance {
            app: "go".into(),
            process_type: "web".into(),
            num: 1,
            release: 2,
            state: InstanceState::Up,
            endpoint: Some("127.0.0.1:5000".into()),
        };
        assert_eq!(instance.job_name(), "go_v2.web.1");
        assert_eq!(instance.short_name(), "web.1");
        assert!(instance.is_routable());
        assert!(!is_routable_type("worker"));
        let json = serde_json::to_value(&instance).unwrap();
        assert_eq!(json["type"], "web");
        assert_eq!(json["state"], "up");
    }

    #[test]
    fn secrets_are_not_serialized() {
        let mut user_json = serde_json::json!({
            "id": 1, "username": "alice", "email": "a@example.com",
            "is_superuser": true, "is_staff": true, "is_active": true,
            "last_login": null, "date_joined": "2014-01-01T00:00:00UTC"
        });
        let mut user: User = serde_json::from_value(user_json.clone()).unwrap();
        user.password_hash = "$argon2id$secret".into();
        let out = serde_json::to_value(&user).unwrap();
        assert!(out.get("password_hash").is_none());
        user_json["first_name"] = "".into();
        user_json["last_name"] = "".into();
        assert_eq!(out, user_json);
        assert_eq!(format!("{:?}", TokenHash("abc".into())), "TokenHash(..)");
    }

    #[test]
    fn healthcheck_comes_from_config_values() {
        let mut config = Config::initial("go", "alice");
        assert_eq!(config.healthcheck(), None);
        config
            .values
            .insert("HEALTHCHECK_URL".into(), "/health".into());
        config
            .values
            .insert("HEALTHCHECK_INITIAL_DELAY".into(), "3".into());
        assert_eq!(
            config.healthcheck(),
            Some(Healthcheck {
                url: "/health".into(),
                initial_delay_secs: 3,
                timeout_secs: 1
            })
        );
    }

    #[test]
    fn pages_slice_stably() {
        let items: Vec<u32> = (1..=10).collect();
        let page = PageRequest {
            offset: 8,
            limit: 5,
        }
        .slice(&items);
        assert_eq!(page.total, 10);
        assert_eq!(page.items, vec![9, 10]);
        assert!(PageRequest {
            offset: 20,
            limit: 5
        }
        .slice(&items)
        .items
        .is_empty());
        assert_eq!(PageRequest::ALL.slice(&items).items.len(), 10);
    }
}
