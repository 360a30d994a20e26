//! Log storage: every app's output and platform events, bounded in memory and on disk,
//! with live following, a syslog listener for outside shippers, and drains that forward
//! an app's lines to a syslog URL.
//!
//! Every stored line reads `<timestamp> <app>[<source>]: <text>`, as Deis v1 wrote it.
//! Nothing is dropped silently: when a bound is hit the drop is counted
//! ([`LogStats::dropped`]) and a line saying how many were lost appears in the app's log.

mod drain;
mod store;
mod syslog;

pub use drain::{Drain, DrainUrl};
pub use store::{LogSettings, LogStats, LogStore, CONTROLLER_SOURCE};
pub use syslog::{parse_syslog, SyslogListener, SyslogMessage};
