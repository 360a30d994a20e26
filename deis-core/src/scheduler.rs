//! The `Scheduler` trait: declarative placement of an app's processes.

use crate::error::Result;
use crate::model::{Formation, Healthcheck, Instance, InstanceState};
use async_trait::async_trait;
use futures::stream::BoxStream;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

/// What a release runs from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Artifact {
    /// Nothing yet: the app has no build. Applying a non-empty formation fails.
    None,
    /// A slug (tar.gz) at this location, unpacked and run as processes.
    Slug {
        /// Where the slug lives: a blob key or a local path, as the backend understands it.
        location: String,
    },
    /// A container image, e.g. `127.0.0.1:5000/go:v3`.
    Image {
        /// The image reference.
        name: String,
    },
}

/// A Docker Engine a scheduler runs images from (see [`Scheduler::image_engine`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImageEngine {
    /// The engine's unix socket, e.g. `/var/run/docker.sock`.
    pub socket: String,
}

impl ImageEngine {
    /// The engine behind this unix socket.
    pub fn new(socket: impl Into<String>) -> Self {
        ImageEngine {
            socket: socket.into(),
        }
    }
}

/// Resource limits of one process type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessLimits {
    /// Memory limit in bytes.
    pub memory_bytes: Option<u64>,
    /// CPU shares, 0–1024.
    pub cpu_shares: Option<u32>,
}

/// Everything a scheduler needs to converge one app: the desired state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    /// The app's name.
    pub app: String,
    /// The release version to run.
    pub release: u64,
    /// What to run.
    pub artifact: Artifact,
    /// Command per process type (from the Procfile). A type with no entry runs the
    /// artifact's default command.
    pub processes: BTreeMap<String, String>,
    /// How many instances of each type.
    pub formation: Formation,
    /// The environment: the release's config values plus `DEIS_APP` and `DEIS_RELEASE`.
    pub env: BTreeMap<String, String>,
    /// Limits per process type.
    pub limits: BTreeMap<String, ProcessLimits>,
    /// Placement tags.
    pub tags: BTreeMap<String, String>,
    /// The HTTP health check that gates a rollout; without one, an open port is enough.
    pub healthcheck: Option<Healthcheck>,
}

impl AppSpec {
    /// A spec for `release` of `app` with nothing to run.
    pub fn new(app: impl Into<String>, release: u64) -> Self {
        AppSpec {
            app: app.into(),
            release,
            artifact: Artifact::None,
            processes: BTreeMap::new(),
            formation: Formation::new(),
            env: BTreeMap::new(),
            limits: BTreeMap::new(),
            tags: BTreeMap::new(),
            healthcheck: None,
        }
    }
}

/// Which instances a restart targets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstanceSelector {
    /// Only this process type.
    pub process_type: Option<String>,
    /// Only this number (needs a type).
    pub num: Option<u32>,
}

impl InstanceSelector {
    /// Every instance of the app.
    pub fn all() -> Self {
        InstanceSelector::default()
    }

    /// Whether the selector matches an instance.
    pub fn matches(&self, instance: &Instance) -> bool {
        self.process_type
            .as_ref()
            .is_none_or(|t| *t == instance.process_type)
            && self.num.is_none_or(|n| n == instance.num)
    }
}

/// A one-off command to run against a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    /// The spec of the release to run against (its artifact, env and limits).
    pub spec: AppSpec,
    /// The shell command.
    pub command: String,
}

/// The result of a one-off run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The exit code (a signal shows as 128 + its number).
    pub exit_code: i32,
    /// Everything it wrote to stdout and stderr, interleaved in order.
    pub output: String,
}

/// A change in an instance's life, consumed by the publisher and the logger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceEvent {
    /// The instance after the change.
    pub instance: Instance,
    /// The state it left.
    pub previous: Option<InstanceState>,
}

/// Places and runs app processes, converging each app to its spec.
///
/// `apply` is declarative and idempotent: applying the same spec twice changes nothing the
/// second time. A rollout is health-gated: new instances start and become healthy before
/// old ones stop; if they never become healthy, the old instances keep running and `apply`
/// fails. Scale-down removes the newest instances (highest numbers) first.
#[async_trait]
pub trait Scheduler: Debug + Send + Sync + 'static {
    /// The backend's name, e.g. `memory`, `local`, `docker`, `swarm`.
    fn backend(&self) -> &'static str;
    /// Whether this backend runs container images ([`Artifact::Image`]). The controller
    /// refuses an image build up front (400) when it does not, before any release is made.
    /// The default is `true`: `apply` decides.
    fn runs_images(&self) -> bool {
        true
    }
    /// The Docker Engine this backend runs images from, where a builder builds the images of
    /// `Dockerfile` apps so that this backend can run them without a registry. `None` (the
    /// default) when the backend has no such engine; the builder then refuses Dockerfile
    /// apps.
    fn image_engine(&self) -> Option<ImageEngine> {
        None
    }
    /// Converges the app to `spec` and returns its instances afterwards.
    async fn apply(&self, spec: &AppSpec) -> Result<Vec<Instance>>;
    /// The app's live instances, ordered by type then number.
    async fn instances(&self, app: &str) -> Result<Vec<Instance>>;
    /// Restarts the selected instances and returns them.
    async fn restart(&self, app: &str, selector: &InstanceSelector) -> Result<Vec<Instance>>;
    /// Runs a one-off command and waits for its exit.
    async fn run(&self, request: &RunRequest) -> Result<RunOutcome>;
    /// Stops and removes every instance of the app. Removing an unknown app succeeds.
    async fn remove(&self, app: &str) -> Result<()>;
    /// A stream of instance changes from now on.
    fn events(&self) -> BoxStream<'static, InstanceEvent>;
}

/// A shared, dynamically chosen scheduler.
pub type DynScheduler = Arc<dyn Scheduler>;
