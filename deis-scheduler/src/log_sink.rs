//! Where instance output goes: one line at a time, tagged `<app>[<source>]` as Deis showed it.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

/// The source tag of the scheduler's own messages about an app (warnings, crashes).
pub const SCHEDULER_SOURCE: &str = "deis-scheduler";

/// Receives every line an instance writes to stdout or stderr, and the scheduler's own
/// messages about an app.
///
/// `source` is the instance's short name (`web.1`) or [`SCHEDULER_SOURCE`]; the Deis log
/// tag is `<app>[<source>]`. Implementations must be cheap and must not block: they are
/// called from the tasks that drain the processes' pipes.
pub trait LogSink: fmt::Debug + Send + Sync + 'static {
    /// Records one line (without its line ending).
    fn line(&self, app: &str, source: &str, line: &str);
}

/// One recorded line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The app's name.
    pub app: String,
    /// The instance's short name (`web.1`) or [`SCHEDULER_SOURCE`].
    pub source: String,
    /// The text, without its line ending.
    pub line: String,
}

impl LogLine {
    /// The Deis tag, `<app>[<source>]`.
    pub fn tag(&self) -> String {
        format!("{}[{}]", self.app, self.source)
    }
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]: {}", self.app, self.source, self.line)
    }
}

/// A bounded in-memory sink that keeps the newest lines, for tests and for embedding.
#[derive(Clone)]
pub struct MemoryLogSink {
    inner: Arc<Mutex<VecDeque<LogLine>>>,
    capacity: usize,
}

impl MemoryLogSink {
    /// A sink that keeps at most `capacity` lines (at least one), dropping the oldest.
    pub fn new(capacity: usize) -> Self {
        MemoryLogSink {
            inner: Arc::new(Mutex::new(VecDeque::new())),
            capacity: capacity.max(1),
        }
    }

    /// Every line kept, oldest first.
    pub fn lines(&self) -> Vec<LogLine> {
        self.lock().iter().cloned().collect()
    }

    /// The lines kept for `app`, oldest first.
    pub fn lines_of(&self, app: &str) -> Vec<LogLine> {
        self.lock()
            .iter()
            .filter(|l| l.app == app)
            .cloned()
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<LogLine>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for MemoryLogSink {
    /// The lines are app output, not state: only how many are kept is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryLogSink")
            .field("lines", &self.lock().len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Default for MemoryLogSink {
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl LogSink for MemoryLogSink {
    fn line(&self, app: &str, source: &str, line: &str) {
        let mut lines = self.lock();
        while lines.len() >= self.capacity {
            lines.pop_front();
        }
        lines.push_back(LogLine {
            app: app.to_string(),
            source: source.to_string(),
            line: line.to_string(),
        });
    }
}

/// A sink that forwards every line to `tracing` at INFO, under the target `deis::app`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingLogSink;

impl LogSink for TracingLogSink {
    fn line(&self, app: &str, source: &str, line: &str) {
        tracing::info!(target: "deis::app", "{app}[{source}]: {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_lines_up_to_capacity() {
        let sink = MemoryLogSink::new(2);
        sink.line("go", "web.1", "one");
        sink.line("go", "web.1", "two");
        sink.line("js", "worker.1", "three");
        let lines = sink.lines();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].to_string(), "go[web.1]: two");
        assert_eq!(lines[1].tag(), "js[worker.1]");
        assert_eq!(sink.lines_of("go").len(), 1);
    }
}
