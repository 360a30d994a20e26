//! Load balancing: least outstanding requests, ties broken round robin.

use crate::upstream::{IdleConnection, PoolLimits};
use http::uri::Authority;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One upstream endpoint, the number of requests in flight to it and its idle keep-alive
/// connections (kept across table changes as long as the endpoint stays in the table).
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) address: String,
    /// The address when it is an IP and port (no name to resolve).
    pub(crate) socket_addr: Option<SocketAddr>,
    inflight: AtomicUsize,
    idle: Mutex<Vec<IdleConnection>>,
}

impl Endpoint {
    pub(crate) fn new(address: &str) -> Option<Self> {
        // A host (name or IP) and a port, nothing else.
        let authority: Authority = address.parse().ok()?;
        authority.port_u16()?;
        Some(Self {
            address: address.to_string(),
            socket_addr: address.parse().ok(),
            inflight: AtomicUsize::new(0),
            idle: Mutex::new(Vec::new()),
        })
    }

    fn idle_list(&self) -> std::sync::MutexGuard<'_, Vec<IdleConnection>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most recently used idle connection, if any.
    pub(crate) fn take_idle(&self) -> Option<IdleConnection> {
        self.idle_list().pop()
    }

    /// Keeps a connection for the next request, unless `limits.max_idle` are kept already;
    /// drops the connections that have been idle longer than `limits.idle_timeout`.
    pub(crate) fn put_idle(&self, connection: IdleConnection, limits: PoolLimits) {
        let mut idle = self.idle_list();
        // The list is oldest first: the expired ones are at the front.
        let expired = idle
            .iter()
            .take_while(|old| old.idle_for() >= limits.idle_timeout)
            .count();
        if expired > 0 {
            idle.drain(..expired);
        }
        if idle.len() < limits.max_idle {
            idle.push(connection);
        }
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
