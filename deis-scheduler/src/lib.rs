//! Scheduler backends and the publisher.
//!
//! - [`LocalScheduler`] (module [`local`]), the embedded default: every instance is a
//!   supervised OS process on this host.
//! - [`Publisher`] (module [`publisher`]): the reconcile loop that turns healthy, routable
//!   instances into discovery entries under a lease and withdraws them when they go.
//! - [`LogSink`]: where instance output goes, tagged `<app>[<type>.<num>]`.

pub mod local;
pub mod log_sink;
pub mod publisher;

pub use local::{LimitEnforcement, LocalConfig, LocalScheduler};
pub use log_sink::{LogLine, LogSink, MemoryLogSink, TracingLogSink};
pub use publisher::{Publisher, PublisherConfig};
