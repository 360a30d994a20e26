//! The controller: the platform's business rules as a library ([`Controller`]), the Deis
//! v1 REST API on axum ([`http::router`]), its typed client ([`client::Client`]) and its
//! OpenAPI 3 document ([`openapi::document`]).
//!
//! # Bounded requests
//!
//! No request is held open for longer than a bounded time. Every scheduler call a request
//! makes (a rollout after a build, config change or rollback, a scale, a restart, a
//! one-off run) runs under `Settings::apply_timeout` (60 s by default, the same order as
//! the gunicorn timeout Deis ran its controller with). A rollout that does not finish in
//! time is abandoned: the release is discarded so the app stays on its previous release,
//! and the client gets 503, as Deis answered scheduler failures. The scheduler's own
//! convergence is idempotent and level-triggered, so a later deploy heals whatever the
//! abandoned call had started. Deploys of one app are serialized in this process; waiting
//! for the one in progress is bounded by the same timeout (then 409), so a request waits
//! at most twice `apply_timeout` for the scheduler.
//!
//! # Tokens
//!
//! Tokens are 160 random bits (40 hex characters, as Deis) and stored only as SHA-256
//! hashes. Because the plain token cannot be read back, every login issues a fresh token
//! and the previous one stops working (Deis returned the same token on every login).

//! # Where this differs from Deis v1
//!
//! - A config write that changes nothing answers 200 with the current config and makes no
//!   release (Deis made one anyway).
//! - Certificates can be read and deleted by their owner and by admins (Deis's object check
//!   in practice let only admins through).
//! - Unique-key collisions (app id, username, domain, key, common name) are DRF-style field
//!   errors, `400 {"<field>": ["…"]}`; a stale config revision is `409 {"detail"}`.
//! - A one-off run on a scheduler that cannot run commands answers 501.
//! - SSH keys are also published to discovery at `/deis/builder/users/<user>/<fingerprint>`
//!   as Deis did for its builder.

pub mod client;
pub mod controller;
pub mod git;
pub mod http;
pub mod logger;
pub mod logs;
pub mod names;
pub mod openapi;
pub mod platform;
pub mod repo_gc;
pub mod roles;
pub mod secrets;
pub mod slugs;
pub mod wire;

pub use controller::{Controller, RegistrationMode, ServiceError, Settings};
pub use logs::{LogSource, MemoryLogs};
