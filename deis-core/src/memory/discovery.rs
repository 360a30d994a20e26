use crate::discovery::{Discovery, KeyValue, LeaseId, Snapshot, WatchEvent, WatchStream};
use crate::error::{Error, Kind, Result};
use async_trait::async_trait;
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// How many past changes a [`MemoryDiscovery`] keeps for resuming watches by default.
pub const DEFAULT_HISTORY: usize = 10_000;

/// A [`Discovery`] key space in process memory, with leases that expire on their own and
/// watches that resume from a revision, like etcd.
///
/// Expired leases are reaped by a small background thread (no async runtime needed) that
/// ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct MemoryDiscovery {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    events: broadcast::Sender<WatchEvent>,
}

#[derive(Debug)]
struct Entry {
    value: String,
    mod_revision: u64,
    lease: Option<LeaseId>,
}

#[derive(Debug)]
struct Lease {
    ttl: Duration,
    deadline: Instant,
    keys: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct State {
    revision: u64,
    data: BTreeMap<String, Entry>,
    leases: HashMap<LeaseId, Lease>,
    next_lease: i64,
    history: VecDeque<WatchEvent>,
    history_limit: usize,
    /// Changes at or below this revision can no longer be replayed.
    compacted: u64,
}

impl Default for MemoryDiscovery {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryDiscovery {
    /// An empty key space keeping [`DEFAULT_HISTORY`] past changes.
    pub fn new() -> Self {
        Self::with_history(DEFAULT_HISTORY)
    }

    /// An empty key space keeping `limit` past changes for resuming watches.
    pub fn with_history(limit: usize) -> Self {
        let (events, _) = broadcast::channel(4096);
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                history_limit: limit.max(1),
                ..State::default()
            }),
            events,
        });
        let weak = Arc::downgrade(&inner);
        let _ = std::thread::Builder::new()
            .name("memory-discovery-leases".into())
            .spawn(move || reap_leases(weak));
        MemoryDiscovery { inner }
    }

    /// Forgets the history up to `revision`, as an etcd compaction does: watches from
    /// before it fail with `Error::Compacted`.
    pub fn compact(&self, revision: u64) {
        let mut state = self.lock();
        let revision = revision.min(state.revision);
        while state
            .history
            .front()
            .is_some_and(|e| e.revision() <= revision)
        {
            state.history.pop_front();
        }
        state.compacted = state.compacted.max(revision);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a change in the history and tells live watchers, under the state lock so
    /// that a watch started concurrently sees each change exactly once.
    fn emit(&self, state: &mut State, event: WatchEvent) {
        state.history.push_back(event.clone());
        while state.history.len() > state.history_limit {
            if let Some(old) = state.history.pop_front() {
                state.compacted = old.revision();
            }
        }
        let _ = self.events.send(event);
    }

    fn expire(&self, state: &mut State, now: Instant) {
        let expired: Vec<LeaseId> = state
            .leases
            .iter()
            .filter(|(_, lease)| lease.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.drop_lease(state, id);
        }
    }

    fn drop_lease(&self, state: &mut State, id: LeaseId) -> bool {
        let Some(lease) = state.leases.remove(&id) else {
            return false;
        };
        for key in lease.keys {
            if state
                .data
                .get(&key)
                .is_some_and(|entry| entry.lease == Some(id))
            {
                self.delete_key(state, &key);
            }
        }
        true
    }

    fn delete_key(&self, state: &mut State, key: &str) {
        if let Some(entry) = state.data.remove(key) {
            if let Some(lease) = entry.lease.and_then(|id| state.leases.get_mut(&id)) {
                lease.keys.remove(key);
            }
            state.revision += 1;
            let revision = state.revision;
            self.emit(
                state,
                WatchEvent::Delete {
                    key: key.to_string(),
                    revision,
                },
            );
        }
    }
}

fn reap_leases(inner: Weak<Inner>) {
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let mut state = inner.lock();
        inner.expire(&mut state, Instant::now());
    }
}

#[async_trait]
impl Discovery for MemoryDiscovery {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn put(&self, key: &str, value: &str, lease: Option<LeaseId>) -> Result<u64> {
        let inner = &self.inner;
        let mut state = inner.lock();
        inner.expire(&mut state, Instant::now());
        if let Some(id) = lease {
            if !state.leases.contains_key(&id) {
                return Err(Error::not_found(Kind::Lease, id.0.to_string()));
            }
        }
        let previous_lease = state.data.get(key).and_then(|e| e.lease);
        if let Some(old) = previous_lease.filter(|old| Some(*old) != lease) {
            if let Some(old_lease) = state.leases.get_mut(&old) {
                old_lease.keys.remove(key);
            }
        }
        if let Some(id) = lease {
            if let Some(new_lease) = state.leases.get_mut(&id) {
                new_lease.keys.insert(key.to_string());
            }
        }
        state.revision += 1;
        let revision = state.revision;
        state.data.insert(
            key.to_string(),
            Entry {
                value: value.to_string(),
                mod_revision: revision,
                lease,
            },
        );
        inner.emit(
            &mut state,
            WatchEvent::Put(KeyValue {
                key: key.to_string(),
                value: value.to_string(),
                mod_revision: revision,
            }),
        );
        Ok(revision)
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let mut state = self.lock();
        self.inner.expire(&mut state, Instant::now());
        Ok(state.data.get(key).map(|entry| KeyValue {
            key: key.to_string(),
            value: entry.value.clone(),
            mod_revision: entry.mod_revision,
        }))
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let inner = &self.inner;
        let mut state = inner.lock();
        inner.expire(&mut state, Instant::now());
        let existed = state.data.contains_key(key);
        inner.delete_key(&mut state, key);
        Ok(existed)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let inner = &self.inner;
        let mut state = inner.lock();
        inner.expire(&mut state, Instant::now());
        let keys: Vec<String> = state
            .data
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for key in &keys {
            inner.delete_key(&mut state, key);
        }
        Ok(keys.len() as u64)
    }

    async fn snapshot(&self, prefix: &str) -> Result<Snapshot> {
        let mut state = self.lock();
        self.inner.expire(&mut state, Instant::now());
        let entries = state
            .data
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, entry)| KeyValue {
                key: k.clone(),
                value: entry.value.clone(),
                mod_revision: entry.mod_revision,
            })
            .collect();
        Ok(Snapshot {
            revision: state.revision,
            entries,
        })
    }

    async fn watch(&self, prefix: &str, after_revision: u64) -> Result<WatchStream> {
        let state = self.lock();
        if after_revision < state.compacted {
            return Err(Error::Compacted {
                requested: after_revision,
                oldest: state.compacted + 1,
            });
        }
        let backlog: Vec<WatchEvent> = state
            .history
            .iter()
            .filter(|e| e.revision() > after_revision && e.key().starts_with(prefix))
            .cloned()
            .collect();
        let last_seen = backlog
            .last()
            .map_or(after_revision.max(state.revision), |e| {
                e.revision().max(state.revision)
            });
        let receiver = self.inner.events.subscribe();
        drop(state);
        let prefix = prefix.to_string();
        let live = futures::stream::unfold(
            (receiver, false),
            move |(mut receiver, failed)| async move {
                if failed {
                    return None;
                }
                match receiver.recv().await {
                    Ok(event) => Some((Ok(event), (receiver, false))),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Changes were lost: tell the reader to resync from a snapshot.
                        let error = Error::Compacted {
                            requested: 0,
                            oldest: 0,
                        };
                        Some((Err(error), (receiver, true)))
                    }
                    Err(broadcast::error::RecvError::Closed) => None,
                }
            },
        )
        .filter(move |item| {
            let keep = match item {
                Ok(event) => event.revision() > last_seen && event.key().starts_with(&prefix),
                Err(_) => true,
            };
            futures::future::ready(keep)
        });
        Ok(futures::stream::iter(backlog.into_iter().map(Ok))
            .chain(live)
            .boxed())
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId> {
        let mut state = self.lock();
        state.next_lease += 1;
        let id = LeaseId(state.next_lease);
        state.leases.insert(
            id,
            Lease {
                ttl,
                deadline: Instant::now() + ttl,
                keys: BTreeSet::new(),
            },
        );
        Ok(id)
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<()> {
        let inner = &self.inner;
        let mut state = inner.lock();
        let now = Instant::now();
        inner.expire(&mut state, now);
        let entry = state
            .leases
            .get_mut(&lease)
            .ok_or_else(|| Error::not_found(Kind::Lease, lease.0.to_string()))?;
        entry.deadline = now + entry.ttl;
        Ok(())
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        let inner = &self.inner;
        let mut state = inner.lock();
        if inner.drop_lease(&mut state, lease) {
            Ok(())
        } else {
            Err(Error::not_found(Kind::Lease, lease.0.to_string()))
        }
    }
}
