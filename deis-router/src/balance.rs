//! Load balancing: least outstanding requests, ties broken round robin.

use crate::upstream::{IdleConnection, PoolLimits};
use http::uri::Authority;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::TcpStream;

/// One upstream endpoint, the number of requests in flight to it and its idle keep-alive
/// connections (kept across table changes as long as the endpoint stays in the table): those
/// of hyper's client (HTTP/2 clients, HTTP/1.0 and the other requests hyper serves) and the
/// raw sockets of the HTTP/1.1 fast path (see `fast`).
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) address: String,
    /// The address when it is an IP and port (no name to resolve).
    pub(crate) socket_addr: Option<SocketAddr>,
    inflight: AtomicUsize,
    /// Idle connections of hyper's HTTP/1.1 client.
    pub(crate) idle: IdleList<IdleConnection>,
    /// Idle sockets of the fast path, each between two complete exchanges.
    pub(crate) idle_sockets: IdleList<TcpStream>,
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
            idle: IdleList::default(),
            idle_sockets: IdleList::default(),
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

/// Idle keep-alive connections of one kind, oldest first, each with the time it went idle.
#[derive(Debug)]
pub(crate) struct IdleList<T>(Mutex<Vec<(Instant, T)>>);

impl<T> Default for IdleList<T> {
    fn default() -> Self {
        Self(Mutex::new(Vec::new()))
    }
}

impl<T> IdleList<T> {
    fn list(&self) -> std::sync::MutexGuard<'_, Vec<(Instant, T)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most recently used connection that has been idle less than `limits.idle_timeout`
    /// (older ones are dropped on the way).
    pub(crate) fn take(&self, limits: PoolLimits) -> Option<T> {
        let mut list = self.list();
        while let Some((since, connection)) = list.pop() {
            if since.elapsed() < limits.idle_timeout {
                return Some(connection);
            }
            // The newest is expired, so is every older one.
            list.clear();
        }
        None
    }

    /// Keeps a connection for the next request, unless `limits.max_idle` are kept already;
    /// drops the connections that have been idle longer than `limits.idle_timeout`.
    pub(crate) fn put(&self, connection: T, limits: PoolLimits) {
        let mut list = self.list();
        let expired = list
            .iter()
            .take_while(|(since, _)| since.elapsed() >= limits.idle_timeout)
            .count();
        if expired > 0 {
            list.drain(..expired);
        }
        if list.len() < limits.max_idle {
            list.push((Instant::now(), connection));
        }
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
