use chrono::Utc;
use futures::stream::BoxStream;
use futures::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{broadcast, mpsc};

/// The source tag of platform events about an app (`<app>[deis-controller]`).
pub const CONTROLLER_SOURCE: &str = "deis-controller";

/// The bounds of a [`LogStore`].
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Where per-app files live (`<dir>/<app>.log`, rotated to `<app>.log.1`); `None`
    /// keeps logs in memory only.
    pub directory: Option<PathBuf>,
    /// Lines kept in memory per app.
    pub lines_in_memory: usize,
    /// Bytes per app file before it is rotated (one rotated file is kept).
    pub bytes_on_disk: u64,
    /// Lines waiting for the disk writer before new ones are dropped (and counted).
    pub write_queue: usize,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            directory: None,
            lines_in_memory: 10_000,
            bytes_on_disk: 16 * 1024 * 1024,
            write_queue: 65_536,
        }
    }
}

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct LogStats {
    /// Lines accepted.
    pub accepted: AtomicU64,
    /// Lines lost to a full write queue or a slow follower.
    pub dropped: AtomicU64,
}

#[derive(Debug, Default)]
struct AppLog {
    lines: VecDeque<String>,
    loaded: bool,
    dropped_since_notice: u64,
}

/// Per-app log storage. Cheap to clone; every clone shares the same logs.
#[derive(Debug, Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: LogSettings,
    apps: Mutex<HashMap<String, AppLog>>,
    followers: broadcast::Sender<(String, String)>,
    writer: Option<mpsc::Sender<(String, String)>>,
    drains: Mutex<HashMap<String, Vec<super::Drain>>>,
    stats: LogStats,
}

impl LogStore {
    /// A store with these bounds. With a directory, a background task (on the current tokio
    /// runtime) appends lines to the app files.
    pub fn new(settings: LogSettings) -> std::io::Result<Self> {
        let writer = match &settings.directory {
            Some(directory) => {
                std::fs::create_dir_all(directory)?;
                let (sender, receiver) = mpsc::channel(settings.write_queue.max(1));
                let directory = directory.clone();
                let limit = settings.bytes_on_disk;
                tokio::task::spawn_blocking(move || write_files(receiver, &directory, limit));
                Some(sender)
            }
            None => None,
        };
        let (followers, _) = broadcast::channel(4096);
        Ok(LogStore {
            inner: Arc::new(Inner {
                settings,
                apps: Mutex::new(HashMap::new()),
                followers,
                writer,
                drains: Mutex::new(HashMap::new()),
                stats: LogStats::default(),
            }),
        })
    }

    /// A memory-only store with default bounds.
    pub fn in_memory() -> Self {
        Self::new(LogSettings::default()).expect("no I/O without a directory")
    }

    fn apps(&self) -> MutexGuard<'_, HashMap<String, AppLog>> {
        self.inner.apps.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The counters.
    pub fn stats(&self) -> &LogStats {
        &self.inner.stats
    }

    /// Appends one line from `source` (`web.1`, [`CONTROLLER_SOURCE`]…) to `app`'s log.
    /// Never blocks; a full queue drops the line and counts it.
    pub fn append(&self, app: &str, source: &str, text: &str) {
        if deis_core::validation::app_id(app, &[]).is_err() {
            self.inner.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let stamp = Utc::now().format("%Y-%m-%dT%H:%M:%SUTC");
        let text = text.trim_end_matches(['\r', '\n']);
        let line = format!("{stamp} {app}[{source}]: {text}");
        self.record(app, line);
        let drains = self.inner.drains.lock().unwrap_or_else(|e| e.into_inner());
        for drain in drains.get(app).into_iter().flatten() {
            drain.send(app, source, text);
        }
    }

    /// Replaces an app's drains: every later line is also forwarded to each of them.
    pub fn set_drains(&self, app: &str, drains: Vec<super::Drain>) {
        let mut all = self.inner.drains.lock().unwrap_or_else(|e| e.into_inner());
        if drains.is_empty() {
            all.remove(app);
        } else {
            all.insert(app.to_string(), drains);
        }
    }

    /// Lines an app's drains could not deliver.
    pub fn drain_losses(&self, app: &str) -> u64 {
        let drains = self.inner.drains.lock().unwrap_or_else(|e| e.into_inner());
        drains
            .get(app)
            .into_iter()
            .flatten()
            .map(super::Drain::dropped)
            .sum()
    }

    fn record(&self, app: &str, line: String) {
        self.inner.stats.accepted.fetch_add(1, Ordering::Relaxed);
        self.load_from_disk(app);
        let mut lines = vec![line];
        {
            let mut apps = self.apps();
            let log = apps.entry(app.to_string()).or_default();
            if log.dropped_since_notice > 0 {
                let stamp = Utc::now().format("%Y-%m-%dT%H:%M:%SUTC");
                lines.insert(
                    0,
                    format!(
                        "{stamp} {app}[deis-logger]: {} line(s) were dropped because the log writer fell behind",
                        log.dropped_since_notice
                    ),
                );
                log.dropped_since_notice = 0;
            }
            for line in &lines {
                log.lines.push_back(line.clone());
                while log.lines.len() > self.inner.settings.lines_in_memory.max(1) {
                    log.lines.pop_front();
                }
                // Announced while the app's lines are locked, so `tail_and_follow` sees each
                // line either in its tail or in its stream, never both nor neither.
                let _ = self.inner.followers.send((app.to_string(), line.clone()));
            }
        }
        for line in lines {
            if let Some(writer) = &self.inner.writer {
                if writer.try_send((app.to_string(), line.clone())).is_err() {
                    self.inner.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    self.apps()
                        .entry(app.to_string())
                        .or_default()
                        .dropped_since_notice += 1;
                }
            }
        }
    }

    /// The last `count` lines of an app, oldest first (after a restart, read from disk).
    pub fn tail(&self, app: &str, count: usize) -> Vec<String> {
        self.load_from_disk(app);
        let apps = self.apps();
        let Some(log) = apps.get(app) else {
            return Vec::new();
        };
        let skip = log.lines.len().saturating_sub(count);
        log.lines.iter().skip(skip).cloned().collect()
    }

    fn load_from_disk(&self, app: &str) {
        let Some(directory) = &self.inner.settings.directory else {
            return;
        };
        if self.apps().get(app).is_some_and(|log| log.loaded) {
            return;
        }
        let mut from_disk = VecDeque::new();
        for path in [rotated(directory, app), current(directory, app)] {
            if let Ok(text) = std::fs::read_to_string(path) {
                from_disk.extend(text.lines().map(str::to_string));
            }
        }
        let mut apps = self.apps();
        let log = apps.entry(app.to_string()).or_default();
        if log.loaded {
            return;
        }
        // Loading happens before the app's first line in this process, so the disk holds
        // everything older than what is in memory.
        let newer: Vec<String> = log.lines.drain(..).collect();
        from_disk.extend(newer);
        while from_disk.len() > self.inner.settings.lines_in_memory.max(1) {
            from_disk.pop_front();
        }
        log.lines = from_disk;
        log.loaded = true;
    }

    /// Follows an app's log from now on. A follower that falls too far behind gets a line
    /// saying how many it missed, and the loss is counted.
    pub fn follow(&self, app: &str) -> BoxStream<'static, String> {
        let receiver = self.inner.followers.subscribe();
        self.followed(app, receiver)
    }

    /// The last `count` lines of an app, then every later line as it comes, as
    /// `tail -n <count> -f` does: no line appended meanwhile is missed or repeated, because
    /// the tail is read and the subscription made under the lock that appending takes.
    pub fn tail_and_follow(&self, app: &str, count: usize) -> BoxStream<'static, String> {
        self.load_from_disk(app);
        let (tail, receiver) = {
            let apps = self.apps();
            let receiver = self.inner.followers.subscribe();
            let tail: Vec<String> = apps
                .get(app)
                .map(|log| {
                    let skip = log.lines.len().saturating_sub(count);
                    log.lines.iter().skip(skip).cloned().collect()
                })
                .unwrap_or_default();
            (tail, receiver)
        };
        futures::stream::iter(tail)
            .chain(self.followed(app, receiver))
            .boxed()
    }

    fn followed(
        &self,
        app: &str,
        receiver: broadcast::Receiver<(String, String)>,
    ) -> BoxStream<'static, String> {
        let app = app.to_string();
        let inner = self.inner.clone();
        futures::stream::unfold(receiver, move |mut receiver| {
            let app = app.clone();
            let inner = inner.clone();
            async move {
                loop {
                    match receiver.recv().await {
                        Ok((from, line)) if from == app => return Some((line, receiver)),
                        Ok(_) => continue,
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            inner.stats.dropped.fetch_add(missed, Ordering::Relaxed);
                            let note = format!(
                                "{app}[deis-logger]: this follower missed {missed} line(s)"
                            );
                            return Some((note, receiver));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        })
        .boxed()
    }

    /// Deletes an app's logs (when the app is destroyed).
    pub fn delete(&self, app: &str) {
        self.apps().remove(app);
        self.set_drains(app, Vec::new());
        if let Some(directory) = &self.inner.settings.directory {
            let _ = std::fs::remove_file(current(directory, app));
            let _ = std::fs::remove_file(rotated(directory, app));
        }
    }
}

fn current(directory: &Path, app: &str) -> PathBuf {
    directory.join(format!("{app}.log"))
}

fn rotated(directory: &Path, app: &str) -> PathBuf {
    directory.join(format!("{app}.log.1"))
}

/// The disk writer: appends each line to its app's file, rotating at `limit` bytes.
fn write_files(mut receiver: mpsc::Receiver<(String, String)>, directory: &Path, limit: u64) {
    let mut sizes: HashMap<String, u64> = HashMap::new();
    while let Some((app, line)) = receiver.blocking_recv() {
        let path = current(directory, &app);
        let size = sizes
            .entry(app.clone())
            .or_insert_with(|| std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0));
        if *size + line.len() as u64 + 1 > limit && *size > 0 {
            let _ = std::fs::rename(&path, rotated(directory, &app));
            *size = 0;
        }
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| writeln!(file, "{line}"));
        match written {
            Ok(()) => *size += line.len() as u64 + 1,
            Err(error) => tracing::warn!("writing the log of {app}: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_tagged_and_bounded_in_memory() {
        let store = LogStore::new(LogSettings {
            lines_in_memory: 3,
            ..LogSettings::default()
        })
        .unwrap();
        for i in 0..5 {
            store.append("go", "web.1", &format!("line {i}\n"));
        }
        store.append("other", CONTROLLER_SOURCE, "other app");
        let tail = store.tail("go", 10);
        assert_eq!(tail.len(), 3);
        assert!(tail[0].ends_with(" go[web.1]: line 2"), "{tail:?}");
        assert!(tail[2].ends_with(" go[web.1]: line 4"));
        let stamp = tail[0].split(' ').next().unwrap();
        assert!(
            stamp.ends_with("UTC") && stamp.len() == "2026-01-01T00:00:00UTC".len(),
            "{stamp}"
        );
        assert_eq!(store.tail("go", 1).len(), 1);
        assert!(store.tail("nobody", 10).is_empty());
        store.append("../etc", "web.1", "path-like app names are refused");
        assert_eq!(store.stats().dropped.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn followers_see_new_lines_of_their_app_only() {
        let store = LogStore::in_memory();
        let mut follow = store.follow("go");
        store.append("other", "web.1", "not mine");
        store.append("go", "web.1", "mine");
        let line = tokio::time::timeout(std::time::Duration::from_secs(2), follow.next())
            .await
            .unwrap()
            .unwrap();
        assert!(line.ends_with("go[web.1]: mine"));
    }

    /// Following starts from a position: the tail read and the subscription are one step,
    /// so a follower that starts while lines pour in sees each later line exactly once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tail_and_follow_misses_and_repeats_nothing() {
        let store = LogStore::in_memory();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let producer = {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    store.append("go", "web.1", &n.to_string());
                    n += 1;
                    std::thread::sleep(std::time::Duration::from_micros(20));
                }
            })
        };
        while store.tail("go", 1000).len() < 100 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let follow = store.tail_and_follow("go", 5);
        let lines: Vec<String> = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            follow.take(3000).collect(),
        )
        .await
        .expect("3000 lines in time");
        stop.store(true, Ordering::Relaxed);
        producer.join().unwrap();
        let numbers: Vec<u64> = lines
            .iter()
            .map(|line| {
                let (_, n) = line.rsplit_once("]: ").expect("a tagged line");
                n.parse()
                    .unwrap_or_else(|_| panic!("not a produced line: {line}"))
            })
            .collect();
        assert!(
            numbers[0] >= 95,
            "the tail starts near the end: {}",
            numbers[0]
        );
        for pair in numbers.windows(2) {
            assert_eq!(pair[1], pair[0] + 1, "a gap or a repeat: {pair:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lines_survive_a_restart_and_files_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let settings = LogSettings {
            directory: Some(dir.path().to_path_buf()),
            bytes_on_disk: 400,
            ..LogSettings::default()
        };
        let store = LogStore::new(settings.clone()).unwrap();
        for i in 0..20 {
            store.append("go", "web.1", &format!("persisted {i}"));
        }
        // Wait for the writer to catch up.
        for _ in 0..100 {
            let text = std::fs::read_to_string(dir.path().join("go.log")).unwrap_or_default();
            if text.contains("persisted 19") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(dir.path().join("go.log.1").exists(), "the file rotated");
        assert!(std::fs::metadata(dir.path().join("go.log")).unwrap().len() <= 400);
        drop(store);
        let reopened = LogStore::new(settings).unwrap();
        let tail = reopened.tail("go", 3);
        assert_eq!(tail.len(), 3, "{tail:?}");
        assert!(tail[2].ends_with("persisted 19"), "{tail:?}");
        reopened.delete("go");
        assert!(!dir.path().join("go.log").exists());
        assert!(reopened.tail("go", 3).is_empty());
    }

    #[tokio::test]
    async fn a_full_write_queue_drops_visibly() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::new(LogSettings {
            directory: Some(dir.path().to_path_buf()),
            write_queue: 1,
            ..LogSettings::default()
        })
        .unwrap();
        // The writer runs on a blocking thread; a burst overflows a queue of one.
        for i in 0..2000 {
            store.append("burst", "web.1", &format!("{i}"));
        }
        let dropped = store.stats().dropped.load(Ordering::Relaxed);
        assert!(dropped > 0, "a queue of one must overflow under a burst");
        store.append("burst", "web.1", "after");
        let tail = store.tail("burst", 10_000);
        let notices = tail
            .iter()
            .filter(|l| l.contains("line(s) were dropped"))
            .count();
        assert!(notices > 0, "the loss shows in the app's log");
    }
}
