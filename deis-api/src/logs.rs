//! Where app logs come from: the [`LogSource`] trait. The platform serves its log store
//! (`platform::StoredLogs`), a controller role a remote logger
//! (`client::RemoteLogs`); [`MemoryLogs`] is a small in-memory source for tests.

use async_trait::async_trait;
use deis_core::Result;
use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::sync::Mutex;

/// The source tag of platform events in an app's log: `<app>[deis-controller]`.
pub const CONTROLLER_SOURCE: &str = "deis-controller";

/// A source of app log lines.
#[async_trait]
pub trait LogSource: Debug + Send + Sync + 'static {
    /// The last `lines` lines of the app's log joined with newlines, or `None` when there
    /// are none.
    async fn tail(&self, app: &str, lines: usize) -> Result<Option<String>>;
    /// Forgets the app's logs (the app was destroyed).
    async fn delete(&self, app: &str) -> Result<()>;
    /// The last `lines` lines of the app, then every new line as it comes, one per item
    /// (`deis logs -f`, like `tail -n <lines> -f`): the tail and the stream come from one
    /// position, so no line written while the follower connects is missed or repeated.
    /// `Ok(None)` when this source cannot follow.
    async fn follow(
        &self,
        _app: &str,
        _lines: usize,
    ) -> Result<Option<futures::stream::BoxStream<'static, String>>> {
        Ok(None)
    }
    /// Records a platform event about the app (`<app>[deis-controller]: alice deployed …`,
    /// as Deis v1 showed them in `deis logs`). Sources that only read may ignore it.
    fn record(&self, _app: &str, _source: &str, _line: &str) {}
}

/// A bounded in-memory ring of log lines per app.
#[derive(Debug)]
pub struct MemoryLogs {
    capacity: usize,
    apps: Mutex<HashMap<String, VecDeque<String>>>,
}

impl Default for MemoryLogs {
    fn default() -> Self {
        Self::new(1000)
    }
}

impl MemoryLogs {
    /// A log store keeping the last `capacity` lines of each app.
    pub fn new(capacity: usize) -> Self {
        MemoryLogs {
            capacity: capacity.max(1),
            apps: Mutex::new(HashMap::new()),
        }
    }

    /// Appends a line to an app's log, dropping the oldest line when full.
    pub fn push(&self, app: &str, line: impl Into<String>) {
        let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        let ring = apps.entry(app.to_string()).or_default();
        if ring.len() == self.capacity {
            ring.pop_front();
        }
        ring.push_back(line.into());
    }
}

#[async_trait]
impl LogSource for MemoryLogs {
    async fn tail(&self, app: &str, lines: usize) -> Result<Option<String>> {
        let apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        let Some(ring) = apps.get(app).filter(|r| !r.is_empty() && lines > 0) else {
            return Ok(None);
        };
        let skip = ring.len().saturating_sub(lines);
        let text: Vec<&str> = ring.iter().skip(skip).map(String::as_str).collect();
        Ok(Some(text.join("\n") + "\n"))
    }

    async fn delete(&self, app: &str) -> Result<()> {
        self.apps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(app);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_the_last_lines() {
        let logs = MemoryLogs::new(3);
        assert_eq!(logs.tail("go", 10).await.unwrap(), None);
        for i in 1..=5 {
            logs.push("go", format!("line {i}"));
        }
        assert_eq!(
            logs.tail("go", 2).await.unwrap().as_deref(),
            Some("line 4\nline 5\n")
        );
        assert_eq!(
            logs.tail("go", 10).await.unwrap().as_deref(),
            Some("line 3\nline 4\nline 5\n")
        );
        logs.delete("go").await.unwrap();
        assert_eq!(logs.tail("go", 10).await.unwrap(), None);
    }
}
