//! The route sync: a long-running task that keeps a [`Router`]'s table following discovery.
//!
//! It reads a snapshot of `/deis/`, builds a [`RouteTable`] from it and hands it to the router,
//! then watches from the snapshot's revision, applying each change to the table and pushing
//! the new table to the router. Bursts are coalesced: the router gets at most one table per
//! `min_apply_interval`, and no change waits longer than `max_apply_delay`. When the watch
//! reports a compaction it takes a fresh snapshot (a full resync); when discovery is
//! unavailable it retries with capped exponential backoff while the router keeps serving its
//! last table. It stops when its shutdown token is cancelled.

mod status;

pub use status::{RouteSyncOptions, RouteSyncStatus};

use deis_core::discovery::{Discovery, WatchEvent, WatchStream};
use deis_core::error::{Error, Result};
use deis_core::route::RouteTable;
use deis_core::router::Router;
use futures::{FutureExt, StreamExt};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How many already-arrived events are folded into the table before the next router update
/// is considered.
const DRAIN_LIMIT: usize = 1024;

/// A running route sync: its status, and the means to stop it.
#[derive(Debug)]
pub struct RouteSync {
    status: Arc<RouteSyncStatus>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl RouteSync {
    /// Starts following discovery into `router` on the current Tokio runtime.
    ///
    /// Fails only when the options are invalid or there is no runtime; everything later is
    /// retried.
    pub fn spawn(
        discovery: Arc<dyn Discovery>,
        router: Arc<dyn Router>,
        options: RouteSyncOptions,
    ) -> Result<Self> {
        options.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::precondition("RouteSync::spawn must be called within a Tokio runtime")
        })?;
        let status = Arc::new(RouteSyncStatus::new());
        let shutdown = CancellationToken::new();
        let task = {
            let status = status.clone();
            let shutdown = shutdown.clone();
            runtime.spawn(async move {
                if let Err(error) =
                    follow_routes(discovery, router, options, status, shutdown).await
                {
                    tracing::error!(%error, "route sync stopped");
                }
            })
        };
        Ok(RouteSync {
            status,
            shutdown,
            task,
        })
    }

    /// The sync's live status.
    pub fn status(&self) -> Arc<RouteSyncStatus> {
        self.status.clone()
    }

    /// A token that stops the sync when cancelled (e.g. tied to the process's shutdown).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops the sync and waits for it to finish; the router keeps its last table.
    pub async fn stop(self) {
        self.shutdown.cancel();
        if let Err(error) = self.task.await {
            tracing::error!(%error, "route sync task failed");
        }
    }
}

/// Follows discovery into `router` until `shutdown` is cancelled, recording progress in
/// `status`. Returns `Ok(())` on shutdown and an error only for invalid options.
pub async fn follow_routes(
    discovery: Arc<dyn Discovery>,
    router: Arc<dyn Router>,
    options: RouteSyncOptions,
    status: Arc<RouteSyncStatus>,
    shutdown: CancellationToken,
) -> Result<()> {
    options.validate()?;
    let mut follower = Follower {
        discovery,
        router,
        backoff: Backoff::new(options.first_backoff, options.max_backoff),
        apply_backoff: Backoff::new(options.first_backoff, options.max_backoff),
        options,
        status,
        shutdown,
        table: RouteTable::default(),
        pending: None,
        last_apply: None,
        apply_retry_at: None,
        applied: None,
    };
    follower.run().await;
    follower.status.set_following(false);
    Ok(())
}

/// What to do after a watch item.
enum Flow {
    /// Keep reading the stream.
    Continue,
    /// The history is gone: read a fresh snapshot.
    Resync,
    /// The stream failed or ended: back off, then watch again from the table's revision.
    Rewatch,
}

/// Capped exponential backoff.
#[derive(Debug)]
struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    fn next(&mut self) -> Duration {
        let current = self.next;
        self.next = (self.next * 2).min(self.max);
        current
    }

    fn reset(&mut self) {
        self.next = self.first;
    }
}

struct Follower {
    discovery: Arc<dyn Discovery>,
    router: Arc<dyn Router>,
    options: RouteSyncOptions,
    status: Arc<RouteSyncStatus>,
    shutdown: CancellationToken,
    backoff: Backoff,
    apply_backoff: Backoff,
    /// The table as discovery has it (ahead of the router while `pending` is set).
    table: RouteTable,
    /// Since when the table has changes the router has not accepted yet.
    pending: Option<Instant>,
    last_apply: Option<Instant>,
    /// When a refused table is to be offered again.
    apply_retry_at: Option<Instant>,
    /// The last table the router accepted.
    applied: Option<RouteTable>,
}

impl Follower {
    async fn run(&mut self) {
        'resync: loop {
            let Some(snapshot) = self
                .until_shutdown(self.discovery.snapshot(&self.options.prefix))
                .await
            else {
                return;
            };
            let snapshot = match snapshot {
                Ok(snapshot) => snapshot,
                Err(error) => {
                    self.failed("reading a discovery snapshot", &error);
                    if !self.pause().await {
                        return;
                    }
                    continue 'resync;
                }
            };
            self.status.record_snapshot();
            self.table = RouteTable::from_snapshot(&snapshot);
            tracing::info!(
                revision = snapshot.revision,
                keys = snapshot.entries.len(),
                apps = self.table.apps.len(),
                "route table read from a discovery snapshot"
            );
            self.mark_pending();
            self.apply_retry_at = None;
            loop {
                if !self.flush_now().await {
                    return;
                }
                let watch = self
                    .until_shutdown(
                        self.discovery
                            .watch(&self.options.prefix, self.table.revision),
                    )
                    .await;
                let stream = match watch {
                    None => return,
                    Some(Ok(stream)) => stream,
                    Some(Err(Error::Compacted { requested, oldest })) => {
                        tracing::warn!(requested, oldest, "discovery history compacted; resyncing");
                        continue 'resync;
                    }
                    Some(Err(error)) => {
                        self.failed("watching discovery", &error);
                        if !self.pause().await {
                            return;
                        }
                        continue;
                    }
                };
                self.backoff.reset();
                self.status.set_following(true);
                let flow = self.follow(stream).await;
                self.status.set_following(false);
                match flow {
                    None => return,
                    Some(Flow::Resync) => continue 'resync,
                    Some(Flow::Rewatch | Flow::Continue) => {
                        if !self.flush_now().await || !self.pause().await {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Reads one watch stream until it fails, ends or needs a resync; `None` on shutdown.
    async fn follow(&mut self, mut stream: WatchStream) -> Option<Flow> {
        loop {
            let deadline = self.flush_deadline();
            if deadline.is_some_and(|at| at <= Instant::now()) {
                // Due already: a timer would only add a tick of the timer wheel.
                self.apply().await;
                continue;
            }
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return None,
                _ = sleep_until(deadline), if deadline.is_some() => self.apply().await,
                item = stream.next() => {
                    let mut flow = self.handle(item);
                    let mut drained = 0;
                    while matches!(flow, Flow::Continue) && drained < DRAIN_LIMIT {
                        match stream.next().now_or_never() {
                            Some(item) => flow = self.handle(item),
                            None => break,
                        }
                        drained += 1;
                    }
                    if !matches!(flow, Flow::Continue) {
                        return Some(flow);
                    }
                }
            }
        }
    }

    fn handle(&mut self, item: Option<Result<WatchEvent>>) -> Flow {
        match item {
            Some(Ok(event)) => {
                self.table.apply_event(&event);
                self.mark_pending();
                Flow::Continue
            }
            Some(Err(Error::Compacted { requested, oldest })) => {
                tracing::warn!(requested, oldest, "discovery history compacted; resyncing");
                Flow::Resync
            }
            Some(Err(error)) => {
                self.failed("following discovery", &error);
                Flow::Rewatch
            }
            None => {
                tracing::warn!("the discovery watch ended; watching again");
                Flow::Rewatch
            }
        }
    }

    fn mark_pending(&mut self) {
        if self.pending.is_none() {
            self.pending = Some(Instant::now());
        }
    }

    /// When the pending table is due at the router, if one is pending.
    fn flush_deadline(&self) -> Option<Instant> {
        let since = self.pending?;
        if let Some(retry) = self.apply_retry_at {
            return Some(retry);
        }
        let earliest = self
            .last_apply
            .map_or(since, |last| last + self.options.min_apply_interval);
        Some(
            earliest
                .max(since)
                .min(since + self.options.max_apply_delay),
        )
    }

    /// Offers the pending table to the router; on refusal, schedules another try.
    /// A table whose routes equal the router's (only the revision moved, e.g. after a change
    /// of a component setting under `/deis/`) is not offered at all, so a router that
    /// reloads on every table (nginx) does not churn.
    async fn apply(&mut self) {
        if self.pending.is_none() {
            return;
        }
        if self
            .applied
            .as_ref()
            .is_some_and(|applied| applied.diff(&self.table).is_empty())
        {
            self.pending = None;
            self.apply_retry_at = None;
            self.status.record_current(self.table.revision);
            return;
        }
        let result = self.router.apply(&self.table).await;
        self.last_apply = Some(Instant::now());
        match result {
            Ok(()) => {
                self.pending = None;
                self.apply_retry_at = None;
                self.apply_backoff.reset();
                self.status.record_apply(self.table.revision);
                tracing::debug!(
                    revision = self.table.revision,
                    apps = self.table.apps.len(),
                    "route table applied"
                );
                self.applied = Some(self.table.clone());
            }
            Err(error) => {
                self.failed("applying the route table", &error);
                self.apply_retry_at = Some(Instant::now() + self.apply_backoff.next());
            }
        }
    }

    /// Applies a pending table at once (before a pause or a new watch); false on shutdown.
    async fn flush_now(&mut self) -> bool {
        if self.pending.is_some() && self.apply_retry_at.is_none() {
            let shutdown = self.shutdown.clone();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return false,
                _ = self.apply() => {}
            }
        }
        !self.shutdown.is_cancelled()
    }

    fn failed(&self, what: &str, error: &Error) {
        self.status.record_failure();
        if error.is_retryable() {
            tracing::warn!(%error, "{what} failed; the router keeps its table; retrying");
        } else {
            tracing::error!(%error, "{what} failed; the router keeps its table; retrying");
        }
    }

    /// Waits out the next backoff step, still offering a refused table to the router when
    /// its retry is due; false on shutdown.
    async fn pause(&mut self) -> bool {
        let until = Instant::now() + self.backoff.next();
        loop {
            let retry = self.flush_deadline().filter(|at| *at < until);
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return false,
                _ = sleep_until(retry), if retry.is_some() => self.apply().await,
                _ = tokio::time::sleep_until(until) => return true,
            }
        }
    }

    async fn until_shutdown<T>(&self, future: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            _ = self.shutdown.cancelled() => None,
            output = future => Some(output),
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => futures::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawning_outside_a_runtime_is_an_error_not_a_panic() {
        let result = RouteSync::spawn(
            Arc::new(deis_core::memory::MemoryDiscovery::new()),
            Arc::new(deis_core::memory::MemoryRouter::new()),
            RouteSyncOptions::default(),
        );
        assert!(matches!(result, Err(Error::Precondition { .. })));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let steps: Vec<u128> = (0..5).map(|_| backoff.next().as_millis()).collect();
        assert_eq!(steps, [100, 200, 350, 350, 350]);
        backoff.reset();
        assert_eq!(backoff.next(), Duration::from_millis(100));
    }
}
