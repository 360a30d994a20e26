//! Load balancing: least outstanding requests, ties broken round robin.

use http::uri::Authority;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// One upstream endpoint and the number of requests in flight to it.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) address: String,
    pub(crate) authority: Authority,
    inflight: AtomicUsize,
}

impl Endpoint {
    pub(crate) fn new(address: &str) -> Option<Self> {
        let authority: Authority = address.parse().ok()?;
        authority.port_u16()?;
        Some(Self {
            address: address.to_string(),
            authority,
            inflight: AtomicUsize::new(0),
        })
    }

    /// Counts a request in flight until the guard is dropped.
    pub(crate) fn start(self: &Arc<Self>) -> InflightGuard {
        self.inflight.fetch_add(1, Ordering::Relaxed);
        InflightGuard(self.clone())
    }

    pub(crate) fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Relaxed)
    }
}

/// Decrements its endpoint's in-flight count when dropped.
#[derive(Debug)]
pub(crate) struct InflightGuard(Arc<Endpoint>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Picks the endpoint with the fewest requests in flight among those not yet `tried`
/// (a bit per index), starting the scan at a rotating offset so equal loads alternate.
pub(crate) fn pick(endpoints: &[Arc<Endpoint>], cursor: &AtomicUsize, tried: u64) -> Option<usize> {
    let n = endpoints.len();
    if n == 0 {
        return None;
    }
    let start = cursor.fetch_add(1, Ordering::Relaxed) % n;
    let mut best: Option<(usize, usize)> = None;
    for step in 0..n {
        let index = (start + step) % n;
        if index < 64 && tried & (1 << index) != 0 {
            continue;
        }
        let load = endpoints[index].inflight();
        if best.is_none_or(|(_, best_load)| load < best_load) {
            best = Some((index, load));
        }
    }
    best.map(|(index, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(n: usize) -> Vec<Arc<Endpoint>> {
        (0..n)
            .map(|i| Arc::new(Endpoint::new(&format!("127.0.0.1:{}", 1000 + i)).unwrap()))
            .collect()
    }

    #[test]
    fn idle_endpoints_take_turns() {
        let eps = endpoints(3);
        let cursor = AtomicUsize::new(0);
        let picks: Vec<usize> = (0..6).map(|_| pick(&eps, &cursor, 0).unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn busy_endpoints_are_avoided_and_tried_ones_skipped() {
        let eps = endpoints(3);
        let cursor = AtomicUsize::new(0);
        let _a = eps[0].start();
        let _b = eps[1].start();
        assert_eq!(pick(&eps, &cursor, 0), Some(2));
        let second = pick(&eps, &cursor, 0b100).unwrap();
        assert!(second == 0 || second == 1);
        assert_eq!(pick(&eps, &cursor, 0b111), None);
        drop(_a);
        assert_eq!(eps[0].inflight(), 0);
        assert!(Endpoint::new("no-port").is_none());
        assert!(Endpoint::new("bad host:80").is_none());
    }
}
