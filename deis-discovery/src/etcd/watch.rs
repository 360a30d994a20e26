//! Resumable etcd watches.
//!
//! A watch is a background task that owns one etcd watch stream and forwards its events into
//! a channel. When the gRPC stream breaks (a member died, the connection reset, the member
//! lost its leader), the task creates the watch again from the last revision it delivered,
//! with capped exponential backoff, for as long as the reader keeps the stream. Only when
//! etcd says that revision was compacted does the reader see an error, `Error::Compacted`,
//! after which the stream ends.

use super::errors::{map, unavailable};
use super::{strip_namespace, EtcdDiscovery};
use deis_core::discovery::{KeyValue, WatchEvent, WatchStream};
use deis_core::error::{Error, Result};
use etcd_client::{Client, EventType, WatchOptions, WatchResponse};
use futures::StreamExt;
use std::time::Duration;
use tokio::sync::mpsc;

/// Events buffered between the etcd stream and a slow reader.
const BUFFER: usize = 1024;

/// The first pause before re-creating a broken watch; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// The longest pause between two attempts to re-create a broken watch.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

type EtcdStream = etcd_client::WatchStream;

/// What a watch task needs to know.
struct Watcher {
    client: Client,
    namespace: String,
    wire_prefix: String,
    request_timeout: Duration,
    /// The last revision delivered (or known to hold nothing more for this prefix).
    last: u64,
}

/// Creates the watch (failing when etcd cannot be reached within the request timeout) and
/// starts the task that keeps it going. A compacted start revision usually shows as the
/// stream's first item rather than as an error here: etcd confirms a watch before it cancels
/// it for compaction.
pub(super) async fn open(
    discovery: &EtcdDiscovery,
    prefix: &str,
    after_revision: u64,
) -> Result<WatchStream> {
    let mut watcher = Watcher {
        client: discovery.client.clone(),
        namespace: discovery.namespace.clone(),
        wire_prefix: discovery.wire_prefix(prefix)?,
        request_timeout: discovery.request_timeout,
        last: after_revision,
    };
    // Creating a watch is idempotent: try again while etcd is unavailable and time remains.
    let deadline = tokio::time::Instant::now() + discovery.request_timeout;
    let mut pause = Duration::from_millis(20);
    let (stream, first) = loop {
        match watcher.create().await {
            Ok(created) => break created,
            Err(error)
                if error.is_retryable() && tokio::time::Instant::now() + pause < deadline =>
            {
                tracing::debug!(%error, "creating an etcd watch failed; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(error) => return Err(error),
        }
    };
    let (sender, receiver) = mpsc::channel(BUFFER);
    tokio::spawn(async move { watcher.run(stream, first, sender).await });
    Ok(
        futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        })
        .boxed(),
    )
}

/// What one etcd watch response means for the reader.
enum Step {
    /// Events (possibly none) to deliver.
    Deliver(Vec<WatchEvent>),
    /// The history the reader needs is gone.
    Compacted(Error),
    /// The server cancelled the watch for another reason; create it again.
    Recreate(String),
}

impl Watcher {
    /// Creates the etcd watch from `last + 1` and waits for etcd to confirm it. Returns the
    /// stream and any response that arrived in place of the confirmation.
    async fn create(&mut self) -> Result<(EtcdStream, Option<WatchResponse>)> {
        let start = i64::try_from(self.last.saturating_add(1)).unwrap_or(i64::MAX);
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(start)
            .with_progress_notify();
        let key = if self.wire_prefix.is_empty() {
            vec![0]
        } else {
            self.wire_prefix.clone().into_bytes()
        };
        let options = if self.wire_prefix.is_empty() {
            options.with_all_keys()
        } else {
            options
        };
        // Creating is tried again on failure, so one attempt gets only part of the timeout.
        let timeout = super::attempt_timeout(self.request_timeout);
        let what = "create watch";
        let mut stream = tokio::time::timeout(timeout, self.client.watch(key, Some(options)))
            .await
            .map_err(|_| unavailable(format!("{what}: no answer within {timeout:?}")))?
            .map_err(|error| map(error, what, None))?;
        let response = tokio::time::timeout(timeout, stream.message())
            .await
            .map_err(|_| unavailable(format!("{what}: no confirmation within {timeout:?}")))?
            .map_err(|error| map(error, what, None))?
            .ok_or_else(|| unavailable(format!("{what}: the stream closed at once")))?;
        if response.canceled() {
            return match self.interpret(&response) {
                Step::Compacted(error) => Err(error),
                Step::Recreate(reason) => Err(unavailable(format!("{what}: {reason}"))),
                Step::Deliver(_) => Err(unavailable(format!("{what}: cancelled"))),
            };
        }
        let first = (!response.created()).then_some(response);
        Ok((stream, first))
    }

    /// Turns one response into events, advancing `last`.
    fn interpret(&mut self, response: &WatchResponse) -> Step {
        if response.canceled() {
            let compacted = response.compact_revision();
            if compacted > 0 {
                return Step::Compacted(Error::Compacted {
                    requested: self.last,
                    oldest: u64::try_from(compacted).unwrap_or_default(),
                });
            }
            let reason = response.cancel_reason();
            return Step::Recreate(if reason.is_empty() {
                "the server cancelled the watch".into()
            } else {
                reason.to_string()
            });
        }
        if response.events().is_empty() {
            // A progress notification: nothing under the prefix up to the header revision.
            if !response.created() {
                if let Some(header) = response.header() {
                    let revision = u64::try_from(header.revision()).unwrap_or_default();
                    self.last = self.last.max(revision);
                }
            }
            return Step::Deliver(Vec::new());
        }
        let mut events = Vec::with_capacity(response.events().len());
        // One transaction's events share a revision: compare with the revision before it.
        let delivered = self.last;
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            let revision = u64::try_from(kv.mod_revision()).unwrap_or_default();
            if revision <= delivered {
                continue;
            }
            self.last = self.last.max(revision);
            let Some(key) = strip_namespace(&self.namespace, kv.key()) else {
                continue;
            };
            match event.event_type() {
                EventType::Put => match std::str::from_utf8(kv.value()) {
                    Ok(value) => events.push(WatchEvent::Put(KeyValue {
                        key,
                        value: value.to_string(),
                        mod_revision: revision,
                    })),
                    Err(_) => tracing::warn!(key, "ignoring an etcd value that is not UTF-8"),
                },
                EventType::Delete => events.push(WatchEvent::Delete { key, revision }),
            }
        }
        Step::Deliver(events)
    }

    /// Forwards events until the reader goes away or the history is compacted, re-creating
    /// the etcd watch whenever its stream breaks.
    async fn run(
        mut self,
        mut stream: EtcdStream,
        mut pending: Option<WatchResponse>,
        sender: mpsc::Sender<Result<WatchEvent>>,
    ) {
        loop {
            let reason = loop {
                let response = match pending.take() {
                    Some(response) => response,
                    None => {
                        let message = tokio::select! {
                            _ = sender.closed() => return,
                            message = stream.message() => message,
                        };
                        match message {
                            Ok(Some(response)) => response,
                            Ok(None) => break "the stream ended".to_string(),
                            Err(error) => break map(error, "watch", None).to_string(),
                        }
                    }
                };
                match self.interpret(&response) {
                    Step::Deliver(events) => {
                        for event in events {
                            if sender.send(Ok(event)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Step::Compacted(error) => {
                        let _ = sender.send(Err(error)).await;
                        return;
                    }
                    Step::Recreate(reason) => break reason,
                }
            };
            tracing::info!(
                prefix = %self.wire_prefix,
                last_revision = self.last,
                %reason,
                "etcd watch broke; resuming"
            );
            drop(stream);
            let mut backoff = FIRST_BACKOFF;
            (stream, pending) = loop {
                tokio::select! {
                    _ = sender.closed() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                match self.create().await {
                    Ok(created) => break created,
                    Err(error @ Error::Compacted { .. }) => {
                        let _ = sender.send(Err(error)).await;
                        return;
                    }
                    Err(error) => {
                        tracing::debug!(%error, "re-creating the etcd watch failed");
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            };
            tracing::info!(prefix = %self.wire_prefix, from = self.last + 1, "etcd watch resumed");
        }
    }
}
