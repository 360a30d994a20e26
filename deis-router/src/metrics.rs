//! Router metrics, written by hand in the Prometheus text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Upper bounds (seconds) of the upstream latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The label used for requests whose host belongs to no app.
pub(crate) const NO_APP: &str = "_default";

/// Counters of one app, shared by every compiled table that routes it.
#[derive(Debug, Default)]
pub(crate) struct AppMetrics {
    by_class: [AtomicU64; 5],
    buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl AppMetrics {
    pub(crate) fn record_status(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_latency(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// Every metric of one router.
#[derive(Debug)]
pub(crate) struct Metrics {
    apps: Mutex<BTreeMap<String, Arc<AppMetrics>>>,
    default_app: Arc<AppMetrics>,
    revision: AtomicU64,
    applies: AtomicU64,
    last_apply: Mutex<Instant>,
    connect_retries: AtomicU64,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        Self {
            apps: Mutex::default(),
            default_app: Arc::default(),
            revision: AtomicU64::new(0),
            applies: AtomicU64::new(0),
            last_apply: Mutex::new(Instant::now()),
            connect_retries: AtomicU64::new(0),
        }
    }

    /// The counters of `app`, created on first use.
    pub(crate) fn app(&self, app: &str) -> Arc<AppMetrics> {
        let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        apps.entry(app.to_string()).or_default().clone()
    }

    /// The counters of requests for hosts that are no app.
    pub(crate) fn default_app(&self) -> &AppMetrics {
        &self.default_app
    }

    /// Notes a call of `apply` with the table's revision.
    pub(crate) fn applied(&self, revision: u64) {
        self.revision.store(revision, Ordering::Relaxed);
        self.applies.fetch_add(1, Ordering::Relaxed);
        *self.last_apply.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    pub(crate) fn connect_retry(&self) {
        self.connect_retries.fetch_add(1, Ordering::Relaxed);
    }

    /// The whole exposition, in the Prometheus text format (version 0.0.4).
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let apps: Vec<(String, Arc<AppMetrics>)> = {
            let apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
            let mut all: Vec<_> = apps.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            all.push((NO_APP.to_string(), self.default_app.clone()));
            all
        };
        out.push_str(
            "# HELP deis_router_requests_total Requests answered, by app and status class.\n",
        );
        out.push_str("# TYPE deis_router_requests_total counter\n");
        for (app, metrics) in &apps {
            for (index, counter) in metrics.by_class.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "deis_router_requests_total{{app=\"{}\",class=\"{}xx\"}} {}",
                    escape(app),
                    index + 1,
                    counter.load(Ordering::Relaxed)
                );
            }
        }
        out.push_str("# HELP deis_router_upstream_latency_seconds Time from sending a request upstream to its response headers.\n");
        out.push_str("# TYPE deis_router_upstream_latency_seconds histogram\n");
        for (app, metrics) in &apps {
            let app = escape(app);
            let mut cumulative = 0;
            for (bound, counter) in BUCKETS.iter().zip(&metrics.buckets) {
                cumulative += counter.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "deis_router_upstream_latency_seconds_bucket{{app=\"{app}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let count = metrics.latency_count.load(Ordering::Relaxed);
            let sum = metrics.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "deis_router_upstream_latency_seconds_bucket{{app=\"{app}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "deis_router_upstream_latency_seconds_sum{{app=\"{app}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "deis_router_upstream_latency_seconds_count{{app=\"{app}\"}} {count}"
            );
        }
        let age = self
            .last_apply
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            .as_secs_f64();
        let gauges = [
            (
                "deis_router_route_table_revision",
                "gauge",
                "The discovery revision of the route table in force.",
                self.revision.load(Ordering::Relaxed).to_string(),
            ),
            (
                "deis_router_route_table_age_seconds",
                "gauge",
                "Seconds since the route table was last applied.",
                format!("{age:.3}"),
            ),
            (
                "deis_router_route_table_applies_total",
                "counter",
                "Calls of apply.",
                self.applies.load(Ordering::Relaxed).to_string(),
            ),
            (
                "deis_router_upstream_connect_retries_total",
                "counter",
                "Requests sent to another endpoint after a failed connect.",
                self.connect_retries.load(Ordering::Relaxed).to_string(),
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let metrics = Metrics::new();
        let app = metrics.app("go");
        app.record_status(200);
        app.record_status(204);
        app.record_status(503);
        app.record_latency(Duration::from_millis(3));
        metrics.default_app().record_status(404);
        metrics.applied(42);
        let text = metrics.render();
        assert!(text.contains("deis_router_requests_total{app=\"go\",class=\"2xx\"} 2\n"));
        assert!(text.contains("deis_router_requests_total{app=\"go\",class=\"5xx\"} 1\n"));
        assert!(text.contains("deis_router_requests_total{app=\"_default\",class=\"4xx\"} 1\n"));
        assert!(text
            .contains("deis_router_upstream_latency_seconds_bucket{app=\"go\",le=\"0.0025\"} 0\n"));
        assert!(text
            .contains("deis_router_upstream_latency_seconds_bucket{app=\"go\",le=\"0.005\"} 1\n"));
        assert!(text.contains("deis_router_upstream_latency_seconds_count{app=\"go\"} 1\n"));
        assert!(text.contains("deis_router_route_table_revision 42\n"));
        assert_eq!(escape("a\"b\\"), "a\\\"b\\\\");
    }
}
