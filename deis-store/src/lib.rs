//! Store backends: SQLite (the embedded default) and PostgreSQL (feature `postgres`), blob storage for slugs and caches, and log storage.
//!
//! Not written yet: the platform uses `deis_core::memory::MemoryStore` until this crate lands.
