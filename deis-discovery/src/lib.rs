//! Discovery backends: etcd (feature `etcd`). The in-memory backend lives in `deis_core::memory`.
//!
//! Not written yet.
