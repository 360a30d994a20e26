//! The core of Deis in Rust: the domain model, the validation rules, the four pluggable
//! traits (`Store`, `Scheduler`, `Discovery`, `Router`), their in-memory reference
//! backends and, behind the `conformance` feature, the suites every backend must pass.
//!
//! **Invariant:** this crate does no I/O and needs no async runtime; it compiles with
//! nothing but cargo.

pub mod discovery;
pub mod error;
pub mod memory;
pub mod model;
pub mod release;
pub mod route;
pub mod router;
pub mod scheduler;
pub mod store;
pub mod time;
pub mod validation;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use discovery::{Discovery, DiscoveryExt, DynDiscovery};
pub use error::{Error, Kind, Result, ValidationError};
pub use route::RouteTable;
pub use router::{DynRouter, Router};
pub use scheduler::{DynScheduler, Scheduler};
pub use store::{DynStore, Store};
pub use time::Timestamp;
