//! [`RemoteLogs`]: a controller's view of a remote logger ([`crate::logger`]). It is the
//! controller's [`LogSource`] (tail, follow, delete) and the scheduler's [`LogSink`]; lines
//! written to it (app output, `<app>[deis-controller]` events) are shipped in batches by a
//! background task, so a slow or absent logger never blocks a deploy.

use crate::logger::{ShippedLine, ShippedLines, LOGGER_AUTH_HEADER, MAX_BATCH};
use crate::logs::LogSource;
use async_trait::async_trait;
use deis_core::{Error, Result};
use deis_scheduler::LogSink;
use futures::stream::BoxStream;
use futures::StreamExt;
use reqwest::StatusCode;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How many lines wait for shipping before new ones are dropped (and counted).
pub const SHIP_QUEUE: usize = 20_000;

/// How often a failed batch is retried before it is dropped.
const SHIP_ATTEMPTS: u32 = 5;

/// The logs of a remote logger, reached over HTTP with the logger key.
#[derive(Clone)]
pub struct RemoteLogs {
    http: reqwest::Client,
    base: String,
    key: Arc<str>,
    queue: mpsc::Sender<ShippedLine>,
    dropped: Arc<AtomicU64>,
}

impl fmt::Debug for RemoteLogs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteLogs")
            .field("base", &self.base)
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

fn unavailable(message: impl fmt::Display) -> Error {
    Error::Unavailable {
        backend: "logger",
        message: message.to_string(),
    }
}

impl RemoteLogs {
    /// A client of the logger at `base` (e.g. `http://10.0.0.5:8088`) with its key. Spawns
    /// the shipping task, so it must be called inside a tokio runtime.
    pub fn new(base: impl Into<String>, key: impl Into<String>) -> Self {
        let base = base.into().trim_end_matches('/').to_string();
        let key: Arc<str> = Arc::from(key.into());
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        let (queue, receiver) = mpsc::channel(SHIP_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(ship(
            http.clone(),
            format!("{base}/v1/logs/"),
            key.clone(),
            receiver,
            dropped.clone(),
        ));
        RemoteLogs {
            http,
            base,
            key,
            queue,
            dropped,
        }
    }

    /// How many lines could not be shipped (queue full or the logger gone for too long).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues one line for the logger; drops (and counts) it when the queue is full.
    pub fn ship(&self, app: &str, source: &str, text: &str) {
        let line = ShippedLine {
            app: app.into(),
            source: source.into(),
            text: text.into(),
        };
        if self.queue.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until every line queued so far has been shipped (or dropped), at most `limit`.
    pub async fn flush(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.queue.capacity() < self.queue.max_capacity()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn url(&self, app: &str, query: &str) -> String {
        format!("{}/v1/logs/{}/{query}", self.base, super::segment(app))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let response = request
            .header(LOGGER_AUTH_HEADER, &*self.key)
            .send()
            .await
            .map_err(|e| unavailable(format!("{}: {e}", self.base)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        Err(unavailable(format!(
            "{}: {status}: {}",
            self.base,
            body.trim()
        )))
    }
}

/// The shipping loop: one batch at a time, retried with backoff while the logger is away.
async fn ship(
    http: reqwest::Client,
    url: String,
    key: Arc<str>,
    mut receiver: mpsc::Receiver<ShippedLine>,
    dropped: Arc<AtomicU64>,
) {
    while let Some(first) = receiver.recv().await {
        let mut batch = ShippedLines { lines: vec![first] };
        while batch.lines.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(line) => batch.lines.push(line),
                Err(_) => break,
            }
        }
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            let sent = http
                .post(&url)
                .header(LOGGER_AUTH_HEADER, &*key)
                .timeout(Duration::from_secs(10))
                .json(&batch)
                .send()
                .await;
            let error = match sent {
                Ok(response) if response.status().is_success() => break,
                Ok(response) if response.status().is_client_error() => {
                    // The logger refused the batch as such; retrying cannot help.
                    format!("refused: {}", response.status())
                }
                Ok(response) => format!("answered {}", response.status()),
                Err(e) => e.to_string(),
            };
            if attempt == SHIP_ATTEMPTS || error.starts_with("refused") {
                dropped.fetch_add(batch.lines.len() as u64, Ordering::Relaxed);
                tracing::warn!(%url, %error, lines = batch.lines.len(), "dropped log lines");
                break;
            }
            attempt += 1;
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

#[async_trait]
impl LogSource for RemoteLogs {
    async fn tail(&self, app: &str, lines: usize) -> Result<Option<String>> {
        let response = self
            .send(self.http.get(self.url(app, &format!("?lines={lines}"))))
            .await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let text = response.text().await.map_err(unavailable)?;
        Ok((!text.is_empty()).then_some(text))
    }

    async fn delete(&self, app: &str) -> Result<()> {
        self.send(self.http.delete(self.url(app, ""))).await?;
        Ok(())
    }

    async fn follow(&self, app: &str, lines: usize) -> Result<Option<BoxStream<'static, String>>> {
        // The logger sends the tail and then the live lines from one position, so nothing
        // written while this connects is lost. Connection and refusal errors surface here;
        // lines are handed over a channel, and the connection closes when the reader goes.
        let response = self
            .send(
                self.http
                    .get(self.url(app, &format!("?lines={lines}&follow=true"))),
            )
            .await?;
        let (sender, receiver) = mpsc::channel::<String>(1024);
        tokio::spawn(async move {
            let mut chunks = response.bytes_stream();
            let mut pending = Vec::new();
            loop {
                let chunk = tokio::select! {
                    chunk = chunks.next() => chunk,
                    _ = sender.closed() => return,
                };
                let Some(Ok(chunk)) = chunk else { return };
                pending.extend_from_slice(&chunk);
                while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                    if sender.send(text).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Some(
            futures::stream::unfold(receiver, |mut receiver| async move {
                receiver.recv().await.map(|line| (line, receiver))
            })
            .boxed(),
        ))
    }

    fn record(&self, app: &str, source: &str, line: &str) {
        self.ship(app, source, line);
    }
}

impl LogSink for RemoteLogs {
    fn line(&self, app: &str, source: &str, line: &str) {
        self.ship(app, source, line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logger::{Logger, LoggerConfig};
    use std::sync::atomic::AtomicBool;

    async fn logger() -> (Logger, std::path::PathBuf) {
        let data = std::env::temp_dir().join(format!(
            "deis-remote-logs-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let logger = Logger::start(LoggerConfig {
            data_dir: data.clone(),
            http_addr: ([127, 0, 0, 1], 0).into(),
            syslog_addr: None,
            key: "logger-key".into(),
        })
        .await
        .unwrap();
        (logger, data)
    }

    /// `deis logs -f` through a remote logger while the app writes without pause: the
    /// follower gets the last lines and then every later line, none lost while it
    /// connected and none twice.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn follow_through_the_logger_starts_from_the_tail_without_a_gap() {
        let (logger, data) = logger().await;
        let store = logger.logs().clone();
        let stop = Arc::new(AtomicBool::new(false));
        let producer = {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    store.append("go", "web.1", &n.to_string());
                    n += 1;
                    std::thread::sleep(Duration::from_micros(50));
                }
            })
        };
        while store.tail("go", 1000).len() < 100 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let remote = RemoteLogs::new(format!("http://{}", logger.http_addr()), "logger-key");
        let follow = remote.follow("go", 10).await.unwrap().expect("a stream");
        let lines: Vec<String> =
            tokio::time::timeout(Duration::from_secs(30), follow.take(2000).collect())
                .await
                .expect("2000 lines in time");
        stop.store(true, Ordering::Relaxed);
        producer.join().unwrap();
        let numbers: Vec<u64> = lines
            .iter()
            .map(|line| {
                let (_, n) = line.rsplit_once("go[web.1]: ").expect("an app line");
                n.parse()
                    .unwrap_or_else(|_| panic!("not a produced line: {line}"))
            })
            .collect();
        assert!(numbers[0] >= 90, "starts with the tail: {}", numbers[0]);
        for pair in numbers.windows(2) {
            assert_eq!(pair[1], pair[0] + 1, "a gap or a repeat: {pair:?}");
        }
        logger.shutdown().await;
        let _ = std::fs::remove_dir_all(data);
    }

    #[tokio::test]
    async fn follow_with_a_wrong_key_fails_at_once() {
        let (logger, data) = logger().await;
        let remote = RemoteLogs::new(format!("http://{}", logger.http_addr()), "wrong");
        match remote.follow("go", 10).await {
            Err(Error::Unavailable { message, .. }) => {
                assert!(message.contains("401"), "{message}")
            }
            other => panic!("expected a refusal, got {:?}", other.map(|s| s.is_some())),
        }
        logger.shutdown().await;
        let _ = std::fs::remove_dir_all(data);
    }
}
