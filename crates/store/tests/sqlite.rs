//! The SQLite backend: the backend-agnostic suite, then what only an embedded database must do
//! (reopen, compaction of its log, durability when the process is killed).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use store::{Error, RangeRequest, Snapshot, SqliteOptions, SqliteStore, Store};
use tempfile::TempDir;

/// Options without background compaction, so that a test decides when to compact.
fn manual_compaction() -> SqliteOptions {
    SqliteOptions { compaction_interval: Duration::ZERO, ..SqliteOptions::default() }
}

fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("store.db")
}

async fn fresh() -> (Arc<dyn Store>, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db_path(&dir), SqliteOptions::default()).unwrap();
    (store, dir)
}

mod suite {
    store::store_suite!(super::fresh);
}

#[tokio::test]
async fn reopening_keeps_pairs_and_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db_path(&dir), manual_compaction()).unwrap();
    let r1 = store.create("/k/a", Bytes::from_static(b"a")).await.unwrap();
    let r2 = store.update("/k/a", Bytes::from_static(b"a2"), r1).await.unwrap();
    store.create("/k/b", Bytes::from_static(b"b")).await.unwrap();
    store.compact(r2).await.unwrap();
    let (last, _) = store.delete("/k/b", None).await.unwrap();
    let before = store.get("/k/a").await.unwrap();
    drop(store);

    let store = SqliteStore::open(&db_path(&dir), manual_compaction()).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), last);
    assert_eq!(store.compacted_revision().await.unwrap(), r2);
    assert_eq!(store.get("/k/a").await.unwrap(), before);
    assert_eq!(store.get("/k/b").await.unwrap(), None);
    let next = store.create("/k/c", Bytes::from_static(b"c")).await.unwrap();
    assert_eq!(next, last + 1);
}

#[tokio::test]
async fn revisions_are_not_reused_after_compaction_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db_path(&dir), manual_compaction()).unwrap();
    let r1 = store.create("/k/a", Bytes::from_static(b"a")).await.unwrap();
    let (r2, _) = store.delete("/k/a", Some(r1)).await.unwrap();
    store.compact(r2).await.unwrap();
    assert_eq!(store.row_count().await.unwrap(), 0);
    drop(store);
    let store = SqliteStore::open(&db_path(&dir), manual_compaction()).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), r2);
    assert_eq!(store.create("/k/a", Bytes::from_static(b"a")).await.unwrap(), r2 + 1);
}

/// Many tasks update their own keys over and over; after a compaction only one row per key is
/// left, and each key still has its newest value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_bounds_the_log_under_churn() {
    const KEYS: usize = 20;
    const UPDATES: usize = 250;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db_path(&dir), manual_compaction()).unwrap();
    let tasks: Vec<_> = (0..KEYS)
        .map(|k| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let key = format!("/churn/{k:02}");
                let mut revision = store.create(&key, Bytes::from_static(b"0")).await.unwrap();
                for i in 1..=UPDATES {
                    let value = Bytes::from(i.to_string());
                    revision = store.update(&key, value, revision).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.row_count().await.unwrap(), (KEYS * (UPDATES + 1)) as i64);
    let current = store.current_revision().await.unwrap();
    store.compact(current).await.unwrap();
    assert_eq!(store.row_count().await.unwrap(), KEYS as i64);
    let request = RangeRequest { prefix: "/churn/".to_owned(), ..Default::default() };
    let listed = store.range(request).await.unwrap();
    assert_eq!(listed.kvs.len(), KEYS);
    assert!(listed.kvs.iter().all(|kv| kv.value == UPDATES.to_string().as_bytes()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_compaction_keeps_only_recent_history() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions { compaction_interval: Duration::from_millis(50), history: Duration::from_millis(1) };
    let store = SqliteStore::open(&db_path(&dir), options).unwrap();
    let mut revision = store.create("/bg/a", Bytes::from_static(b"0")).await.unwrap();
    for i in 1..=100 {
        revision = store.update("/bg/a", Bytes::from(i.to_string()), revision).await.unwrap();
    }
    let compacted = tokio::time::timeout(Duration::from_secs(10), async {
        while store.compacted_revision().await.unwrap() < revision {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    compacted.await.expect("background compaction never reached the last write");
    assert_eq!(store.row_count().await.unwrap(), 1);
    assert!(matches!(store.watch("/bg/", revision).await, Err(Error::Compacted { .. })));
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(db_path(&dir), vec![0x5a; 8192]).unwrap();
    match SqliteStore::open(&db_path(&dir), manual_compaction()) {
        Err(Error::Backend(message)) => assert!(message.contains("SQLite"), "{message}"),
        Err(other) => panic!("opening garbage gave {other}"),
        Ok(_) => panic!("a file of garbage opened as a store"),
    }
}

/// Writes `count` pairs and closes the store, which checkpoints its log into the file.
async fn closed_store_with(path: &Path, count: usize) -> i64 {
    let store = SqliteStore::open(path, manual_compaction()).unwrap();
    let mut revision = 0;
    for i in 0..count {
        revision = store.create(&format!("/registry/k/{i:05}"), Bytes::from(vec![b'v'; 200])).await.unwrap();
    }
    drop(store);
    revision
}

#[tokio::test]
async fn a_damaged_store_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    closed_store_with(&db_path(&dir), 2000).await;
    // Garbage over a page in the middle of the file: a table page, past the header.
    let mut file = std::fs::read(db_path(&dir)).unwrap();
    let middle = file.len() / 2 / 4096 * 4096;
    file[middle..middle + 4096].fill(0x5a);
    std::fs::write(db_path(&dir), file).unwrap();
    match SqliteStore::open(&db_path(&dir), manual_compaction()) {
        Err(Error::Backend(message)) => assert!(message.contains("is damaged"), "{message}"),
        Err(other) => panic!("opening a damaged store gave {other}"),
        Ok(_) => panic!("a damaged store opened"),
    }
}

#[tokio::test]
async fn one_process_at_a_time_opens_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db_path(&dir), manual_compaction()).unwrap();
    match SqliteStore::open(&db_path(&dir), manual_compaction()) {
        Err(Error::Backend(message)) => assert!(message.contains("in use by another skiff process"), "{message}"),
        Err(other) => panic!("opening an open store gave {other}"),
        Ok(_) => panic!("a store opened twice"),
    }
    assert!(SqliteStore::reset(&db_path(&dir), 0).is_err(), "a store in use was reset");
    drop(store);
    SqliteStore::open(&db_path(&dir), manual_compaction()).expect("the store is free once closed");
}

#[tokio::test]
async fn a_reset_store_begins_past_the_old_one_with_its_history_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let old = closed_store_with(&db_path(&dir), 10).await;
    let reset = SqliteStore::reset(&db_path(&dir), 0).unwrap();
    assert_eq!(reset.revision, old + 1);
    let aside = reset.set_aside.expect("the old store is kept");
    assert!(aside.exists() && db_path(&dir).exists());

    let store = SqliteStore::open(&db_path(&dir), manual_compaction()).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), old + 1);
    assert_eq!(store.compacted_revision().await.unwrap(), old + 1);
    let listed = store.range(RangeRequest { prefix: "/registry/".to_owned(), ..Default::default() }).await.unwrap();
    assert!(listed.kvs.is_empty());
    // A client resuming from before the reset is told to list again.
    assert!(matches!(store.watch("/registry/", old).await, Err(Error::Compacted { .. })));
    assert_eq!(store.create("/registry/k/new", Bytes::from_static(b"n")).await.unwrap(), old + 2);

    // A snapshot's revision counts too; and a store that cannot be read is left far behind.
    drop(store);
    assert_eq!(SqliteStore::reset(&db_path(&dir), 10_000).unwrap().revision, 10_001);
    std::fs::write(db_path(&dir), vec![0x5a; 8192]).unwrap();
    assert!(SqliteStore::reset(&db_path(&dir), 5).unwrap().revision > 1_000_000);
    // A write-ahead log left without its database goes aside too, not into the new store.
    std::fs::remove_file(db_path(&dir)).unwrap();
    std::fs::write(dir.path().join("store.db-wal"), b"an old log").unwrap();
    let reset = SqliteStore::reset(&db_path(&dir), 0).unwrap();
    let aside = reset.set_aside.expect("the log is set aside");
    assert_eq!(std::fs::read(format!("{}-wal", aside.display())).unwrap(), b"an old log");
    // Each reset kept its own copy, even within one second.
    let kept: std::collections::BTreeSet<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".reset-"))
        .map(|name| name.trim_end_matches("-wal").trim_end_matches("-shm").to_owned())
        .collect();
    assert_eq!(kept.len(), 4, "four resets, four names: {kept:?}");
}

#[tokio::test]
async fn a_live_store_copies_consistently() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db_path(&dir), manual_compaction()).unwrap();
    for i in 0..100 {
        store.create(&format!("/registry/k/{i}"), Bytes::from(i.to_string())).await.unwrap();
    }
    let copy = dir.path().join("copy.db");
    SqliteStore::copy(&db_path(&dir), &copy).unwrap();
    let copied = SqliteStore::open(&copy, manual_compaction()).unwrap();
    let original = Snapshot::take(&*store).await.unwrap();
    assert_eq!(Snapshot::take(&*copied).await.unwrap(), original);
    assert_eq!(original.pairs.len(), 100);
}

#[test]
fn opening_outside_a_tokio_runtime_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(SqliteStore::open(&db_path(&dir), manual_compaction()), Err(Error::Backend(_))));
}

/// The variable that tells this test binary, started again as a child process, to run
/// `writes_until_killed` on the database it names.
const KILLED_WRITER_DB: &str = "SKIFF_STORE_KILLED_WRITER_DB";
const ACKED: &str = "acked ";

/// Every write the store acknowledged is there after its process is killed with SIGKILL.
#[test]
fn acknowledged_writes_survive_kill() {
    const WAIT_FOR: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "writes_until_killed", "--ignored", "--nocapture", "--test-threads=1"])
        .env(KILLED_WRITER_DB, db_path(&dir))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    while acked.len() < WAIT_FOR {
        let line = lines.next().expect("the writer exited early").unwrap();
        acked.extend(line.strip_prefix(ACKED).map(str::to_owned));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    acked.extend(lines.map_while(|line| line.ok()?.strip_prefix(ACKED).map(str::to_owned)));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&db_path(&dir), manual_compaction()).unwrap();
        for key in &acked {
            assert!(store.get(key).await.unwrap().is_some(), "acknowledged {key} was lost");
        }
    });
}

/// The child side of `acknowledged_writes_survive_kill`: writes from many tasks and prints each
/// key once its create returned, until killed (or, bounded, after a while).
#[test]
#[ignore = "run by acknowledged_writes_survive_kill in a child process"]
fn writes_until_killed() {
    let path = std::env::var_os(KILLED_WRITER_DB).expect("run by acknowledged_writes_survive_kill");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(write_and_report(Path::new(&path)));
}

async fn write_and_report(path: &Path) {
    let store = SqliteStore::open(path, manual_compaction()).unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for i in 0..10_000 {
                    let key = format!("/killed/{task:02}/{i:05}");
                    store.create(&key, Bytes::from_static(b"v")).await.unwrap();
                    writeln!(std::io::stdout().lock(), "{ACKED}{key}").unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}
