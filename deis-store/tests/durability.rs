//! Durability: a child process (this test binary, re-executed) appends releases to a
//! SQLite store as fast as it can and prints each acknowledged one; the test kills it with
//! SIGKILL in the middle of the burst, reopens the file and checks that the database is
//! intact and that every acknowledged write is there.
#![cfg(all(feature = "sqlite", unix))]

mod common;

use deis_core::conformance::store::new_user;
use deis_core::model::{App, PageRequest};
use deis_core::Store;
use deis_store::{SqliteOptions, SqliteStore, Synchronous};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Set for the child: the database file to write to.
const CHILD_DB: &str = "DEIS_STORE_BURST_WRITER_DB";
/// Set for the child: `full` or `normal`.
const CHILD_SYNC: &str = "DEIS_STORE_BURST_WRITER_SYNC";
/// Acknowledgements to wait for before killing the child.
const KILL_AFTER: usize = 300;
/// Concurrent writers in the child.
const WRITERS: usize = 4;

/// The child's side. Does nothing unless spawned by [`acknowledged_writes_survive_sigkill`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_writer_child() {
    let Ok(path) = std::env::var(CHILD_DB) else {
        return;
    };
    let options = SqliteOptions {
        synchronous: match std::env::var(CHILD_SYNC).as_deref() {
            Ok("full") => Synchronous::Full,
            _ => Synchronous::Normal,
        },
        ..SqliteOptions::default()
    };
    let store = std::sync::Arc::new(SqliteStore::open_with(&path, options).await.unwrap());
    let writers = (0..WRITERS).map(|w| {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 0.. {
                let release = store
                    .append_release(common::deploy("burst", "burster", w * 1_000_000 + n))
                    .await
                    .expect("append");
                // Only acknowledged (committed) writes are printed, one line each.
                let mut out = std::io::stdout().lock();
                writeln!(out, "ACK {} {}", release.version, release.uuid).unwrap();
                out.flush().unwrap();
            }
        })
    });
    for writer in writers.collect::<Vec<_>>() {
        writer.await.unwrap();
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    burst_and_kill("normal");
}

#[test]
fn acknowledged_writes_survive_sigkill_with_full_sync() {
    burst_and_kill("full");
}

fn burst_and_kill(sync: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deis.db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&path).await.unwrap();
        store.create_user(new_user("burster")).await.unwrap();
        store
            .create_app(App::new("burst", "burster"))
            .await
            .unwrap();
        store.close().await;
    });

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "burst_writer_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, &path)
        .env(CHILD_SYNC, sync)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the burst writer");
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut acked: BTreeMap<u64, Uuid> = BTreeMap::new();
    let mut record = |line: String| {
        if let Some(rest) = line.strip_prefix("ACK ") {
            let (version, uuid) = rest.split_once(' ').expect("ACK <version> <uuid>");
            acked.insert(version.parse().unwrap(), uuid.parse().unwrap());
        }
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut count = 0;
    while count < KILL_AFTER {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match lines_rx.recv_timeout(remaining) {
            Ok(line) => {
                if line.starts_with("ACK ") {
                    count += 1;
                }
                record(line);
            }
            Err(_) => {
                let _ = child.kill();
                panic!("the writer acknowledged only {count} writes before stopping or timing out");
            }
        }
    }
    // In the middle of the burst: the writers are still going.
    child.kill().expect("SIGKILL the writer");
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the writer died of SIGKILL: {status:?}"
    );
    // Lines printed before the kill are still in the pipe.
    reader.join().unwrap();
    for line in lines_rx.try_iter() {
        record(line);
    }
    assert!(acked.len() >= KILL_AFTER);

    runtime.block_on(async {
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .integrity_check()
            .await
            .expect("PRAGMA integrity_check = ok");
        let releases = store
            .list_releases("burst", PageRequest::ALL)
            .await
            .unwrap();
        let stored: BTreeMap<u64, Uuid> =
            releases.items.iter().map(|r| (r.version, r.uuid)).collect();
        for (version, uuid) in &acked {
            assert_eq!(
                stored.get(version),
                Some(uuid),
                "acknowledged release v{version} is in the database"
            );
        }
        let newest = *stored.keys().next_back().unwrap();
        assert_eq!(
            stored.keys().copied().collect::<Vec<_>>(),
            (1..=newest).collect::<Vec<_>>(),
            "versions have no gap"
        );
        assert!(newest >= *acked.keys().next_back().unwrap());
        // Releases, builds and configs stayed consistent, and the store takes new writes.
        for release in releases.items.iter().take(20) {
            store
                .get_config("burst", release.config)
                .await
                .expect("config of a release");
            if let Some(build) = release.build {
                store
                    .get_build("burst", build)
                    .await
                    .expect("build of a release");
            }
        }
        let next = store
            .append_release(common::deploy("burst", "burster", 0))
            .await
            .unwrap();
        assert_eq!(next.version, newest + 1);
        eprintln!(
            "synchronous={sync}: {} writes acknowledged before SIGKILL, {} in the database \
             after it",
            acked.len(),
            stored.len() - 1
        );
    });
}
