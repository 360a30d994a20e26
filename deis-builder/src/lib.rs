//! The builder: turns pushed source into something a scheduler can run.
//!
//! This crate owns the build pipeline: the Procfile format ([`procfile`]), the buildpack
//! API (`bin/detect`, `bin/compile BUILD_DIR CACHE_DIR ENV_DIR`, `bin/release`) with a
//! built-in procfile buildpack ([`buildpack`]), `.slugignore` and slug archives
//! ([`slug`]), the slug store in blob storage ([`slug_store`]), and the whole pipeline with
//! its safety limits ([`pipeline`]).
//!
//! Git receive ([`git`]) runs the real `git` on the server side; its `pre-receive` hook
//! sends the pushed tree to the builder's unix socket ([`hook`]), which builds it and asks
//! the controller (a [`hook::PushHandler`]) to deploy it, so a failed build rejects the push.
//!
//! The SSH transport ([`ssh`], russh) serves the same repositories to the keys users
//! registered.
//!
//! A `Dockerfile` at the root builds a container image instead ([`image`]), on the Docker
//! Engine the scheduler runs images from ([`BuilderSettings::image_builder`]); without one
//! (the local scheduler) such an app is refused with a message saying why.

pub mod buildpack;
pub mod git;
pub mod hook;
pub mod image;
pub mod pipeline;
pub mod procfile;
pub mod slug;
pub mod slug_store;
pub mod smart_http;
pub mod ssh;

pub use image::{check_registry, ImageBuilder};
pub use pipeline::{BuildOutput, BuildRequest, Builder, BuilderSettings, NO_IMAGE_BUILDS};

/// Why a build failed, in words fit for the pusher's terminal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The Procfile could not be parsed.
    #[error("Procfile line {line}: {message}")]
    Procfile {
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// No buildpack recognised the app.
    #[error("no buildpack detected this app; add a Procfile or set BUILDPACK_URL")]
    NoBuildpack,
    /// A buildpack step failed.
    #[error("buildpack {buildpack}: {step} failed{}", exit_code.map(|c| format!(" with exit code {c}")).unwrap_or_default())]
    Step {
        /// The buildpack's name.
        buildpack: String,
        /// `detect`, `compile` or `release`.
        step: &'static str,
        /// The exit code, when it exited.
        exit_code: Option<i32>,
    },
    /// A build step ran longer than allowed.
    #[error("{step} timed out after {seconds} s")]
    Timeout {
        /// The step.
        step: &'static str,
        /// The limit.
        seconds: u64,
    },
    /// The source breaks a safety rule (a symlink out of the app, a file too large…).
    #[error("rejected: {0}")]
    Rejected(String),
    /// A `BUILDPACK_URL` that cannot be used.
    #[error("BUILDPACK_URL: {0}")]
    BuildpackUrl(String),
    /// The Docker Engine failed to build a `Dockerfile` app (its message), or could not be
    /// reached.
    #[error("docker build failed: {0}")]
    ImageBuild(String),
    /// The file system failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl BuildError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
        let context = context.into();
        move |source| BuildError::Io { context, source }
    }
}
