//! The options of a route sync and the state it exposes for metrics and health checks.

use deis_core::discovery::keys;
use deis_core::error::{Error, Result, ValidationError};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How a route sync reads discovery and paces router updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSyncOptions {
    /// The discovery prefix to follow; `/deis/` holds everything a route table needs.
    pub prefix: String,
    /// The shortest time between two router updates, so a burst of changes becomes one.
    pub min_apply_interval: Duration,
    /// The longest a change may wait for its router update.
    pub max_apply_delay: Duration,
    /// The first pause after a failure (discovery unavailable, router refusing a table).
    pub first_backoff: Duration,
    /// The longest pause between attempts; backoff doubles up to it.
    pub max_backoff: Duration,
}

impl Default for RouteSyncOptions {
    fn default() -> Self {
        RouteSyncOptions {
            prefix: keys::ROOT.to_string(),
            min_apply_interval: Duration::from_millis(5),
            max_apply_delay: Duration::from_millis(10),
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RouteSyncOptions {
    /// Checks that the options make sense together.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &str, rule: &'static str, message: &str| {
            Err(Error::Invalid(ValidationError::new(field, rule, message)))
        };
        if !self.prefix.starts_with('/') {
            return invalid("prefix", "not_absolute", "the prefix must start with '/'");
        }
        if self.max_apply_delay < self.min_apply_interval {
            return invalid(
                "max_apply_delay",
                "below_min_interval",
                "the longest delay cannot be shorter than the interval between updates",
            );
        }
        if self.first_backoff.is_zero() || self.max_backoff < self.first_backoff {
            return invalid(
                "first_backoff",
                "bad_backoff",
                "backoff must start above zero and not exceed its maximum",
            );
        }
        Ok(())
    }
}

/// What a running route sync has done, readable at any time without locking (atomics), for
/// metrics (`route_table_revision`, `route_table_age_seconds`) and health checks.
#[derive(Debug, Default)]
pub struct RouteSyncStatus {
    revision: AtomicU64,
    updated_at_ms: AtomicU64,
    applies: AtomicU64,
    snapshots: AtomicU64,
    failures: AtomicU64,
    following: AtomicBool,
}

impl RouteSyncStatus {
    /// A status with nothing applied yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The discovery revision the router's routes are current with (0 before the first
    /// table): changes outside the routing layout advance it without a router update.
    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::Acquire)
    }

    /// When the router last accepted a changed table, if ever.
    pub fn last_updated(&self) -> Option<SystemTime> {
        match self.updated_at_ms.load(Ordering::Acquire) {
            0 => None,
            ms => Some(UNIX_EPOCH + Duration::from_millis(ms)),
        }
    }

    /// How many changed tables the router accepted.
    pub fn applies(&self) -> u64 {
        self.applies.load(Ordering::Acquire)
    }

    /// How many full snapshots were read: 1 after a clean start, one more per resync
    /// (after a compaction).
    pub fn snapshots(&self) -> u64 {
        self.snapshots.load(Ordering::Acquire)
    }

    /// How many failures (discovery errors, refused tables) were retried.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Acquire)
    }

    /// Whether the sync is watching discovery right now (false while it backs off).
    ///
    /// Backends whose watches resume by themselves (etcd) keep this true through an outage;
    /// the age of [`RouteSyncStatus::last_updated`] and the backend's own health tell more.
    pub fn is_following(&self) -> bool {
        self.following.load(Ordering::Acquire)
    }

    pub(crate) fn record_apply(&self, revision: u64) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| {
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
        });
        self.revision.store(revision, Ordering::Release);
        self.updated_at_ms.store(now, Ordering::Release);
        self.applies.fetch_add(1, Ordering::AcqRel);
    }

    /// Notes that the router's routes, unchanged, are current with `revision`.
    pub(crate) fn record_current(&self, revision: u64) {
        self.revision.store(revision, Ordering::Release);
    }

    pub(crate) fn record_snapshot(&self) {
        self.snapshots.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn record_failure(&self) {
        self.failures.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn set_following(&self, following: bool) {
        self.following.store(following, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_options_are_valid() {
        RouteSyncOptions::default().validate().unwrap();
    }

    #[test]
    fn bad_options_are_rejected() {
        let bad = [
            RouteSyncOptions {
                prefix: "deis/".into(),
                ..Default::default()
            },
            RouteSyncOptions {
                max_apply_delay: Duration::from_millis(1),
                ..Default::default()
            },
            RouteSyncOptions {
                first_backoff: Duration::ZERO,
                ..Default::default()
            },
            RouteSyncOptions {
                max_backoff: Duration::from_millis(1),
                ..Default::default()
            },
        ];
        for options in bad {
            assert!(
                matches!(options.validate(), Err(Error::Invalid(_))),
                "{options:?}"
            );
        }
    }

    #[test]
    fn status_records() {
        let status = RouteSyncStatus::new();
        assert_eq!(status.last_updated(), None);
        status.record_apply(42);
        assert_eq!(status.revision(), 42);
        assert_eq!(status.applies(), 1);
        let age = SystemTime::now()
            .duration_since(status.last_updated().unwrap())
            .unwrap_or_default();
        assert!(age < Duration::from_secs(5));
        status.record_current(43);
        assert_eq!(status.revision(), 43);
        assert_eq!(status.applies(), 1);
    }
}
