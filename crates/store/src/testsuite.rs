//! The behaviour every [`Store`] backend must show, as async checks that each take a fresh,
//! empty store and panic on a failure. They use nothing but the `Store` trait, so the same
//! checks hold the SQLite backend and etcd to the same semantics.
//!
//! [`store_suite!`](crate::store_suite) turns them into one `#[tokio::test]` each:
//!
//! ```ignore
//! async fn fresh() -> (Arc<dyn Store>, tempfile::TempDir) { /* a new, empty store */ }
//! store::store_suite!(fresh);
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::{
    Error, Event, EventKind, KeyValue, RangeRequest, RangeResult, Restored, Snapshot, Store, WatchItem, WatchStream,
};

/// Expands to one `#[tokio::test]` per check of [`testsuite`](crate::testsuite). `$fresh` is an
/// async fn returning a new, empty store and a guard to keep alive as long as it (a temporary
/// directory, a server), as `(Arc<dyn Store>, impl Sized)`.
#[macro_export]
macro_rules! store_suite {
    ($fresh:path) => {
        $crate::store_suite!(@checks $fresh;
            revisions_grow,
            create_refuses_an_existing_key,
            get_returns_the_current_pair,
            guarded_writes_refuse_stale_revisions,
            range_keeps_to_the_prefix,
            range_at_an_older_revision,
            range_pages_with_limit_and_start_after,
            range_of_compacted_or_future_revisions,
            watch_replays_history_then_goes_live,
            watch_from_zero_sends_only_new_events,
            watch_from_a_future_revision_waits_for_it,
            watch_of_a_compacted_revision_fails,
            dropped_watch_does_not_stop_writes,
            concurrent_writers_are_all_seen_once_in_order,
            progress_follows_the_events,
            a_snapshot_restores_the_cluster_it_was_taken_of,
        );
    };
    (@checks $fresh:path; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (store, _guard) = $fresh().await;
                $crate::testsuite::$check(store).await;
            }
        )+
    };
}

/// How long a watch may take to deliver an item before a check fails.
const WATCH_TIMEOUT: Duration = Duration::from_secs(10);

fn bytes(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn pair(key: &str, value: &str, create_revision: i64, mod_revision: i64) -> KeyValue {
    KeyValue { key: key.to_owned(), value: bytes(value), create_revision, mod_revision }
}

fn put(kv: KeyValue, prev: Option<KeyValue>) -> Event {
    Event { kind: EventKind::Put, kv, prev }
}

/// The delete at `revision` of `prev`, as a watch reports it.
fn delete(prev: KeyValue, revision: i64) -> Event {
    Event { kind: EventKind::Delete, kv: KeyValue { mod_revision: revision, ..prev.clone() }, prev: Some(prev) }
}

async fn range(store: &dyn Store, prefix: &str, revision: i64) -> RangeResult {
    let request = RangeRequest { prefix: prefix.to_owned(), revision, ..Default::default() };
    store.range(request).await.unwrap_or_else(|e| panic!("range {prefix} at {revision}: {e}"))
}

fn keys_and_values(result: &RangeResult) -> Vec<(String, String)> {
    result.kvs.iter().map(|kv| (kv.key.clone(), String::from_utf8_lossy(&kv.value).into_owned())).collect()
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|&(key, value)| (key.to_owned(), value.to_owned())).collect()
}

async fn next_item(stream: &mut WatchStream) -> WatchItem {
    match tokio::time::timeout(WATCH_TIMEOUT, stream.recv()).await {
        Ok(Some(Ok(item))) => item,
        Ok(Some(Err(e))) => panic!("the watch failed: {e}"),
        Ok(None) => panic!("the watch ended"),
        Err(_) => panic!("the watch delivered nothing within {WATCH_TIMEOUT:?}"),
    }
}

async fn next_event(stream: &mut WatchStream) -> Event {
    match next_item(stream).await {
        WatchItem::Event(event) => event,
        WatchItem::Progress(revision) => panic!("expected an event, got progress at {revision}"),
    }
}

/// Asserts that the next item is a progress notice at `revision`: nothing else was pending.
async fn expect_progress(stream: &mut WatchStream, revision: i64) {
    assert_eq!(next_item(stream).await, WatchItem::Progress(revision), "expected progress");
}

/// Asserts that the watch has delivered everything up to the current revision and nothing more.
async fn expect_caught_up(store: &dyn Store, stream: &mut WatchStream) {
    let revision = store.current_revision().await.unwrap();
    store.request_progress().await.unwrap();
    expect_progress(stream, revision).await;
}

/// Every write takes a new, greater revision, and a refused one takes none.
pub async fn revisions_grow(store: Arc<dyn Store>) {
    let start = store.current_revision().await.unwrap();
    assert!(start >= 1, "a fresh store's revision is {start}, but 0 means \"latest\"");
    let r1 = store.create("/t/a", bytes("1")).await.unwrap();
    let r2 = store.update("/t/a", bytes("2"), r1).await.unwrap();
    let r3 = store.create("/t/b", bytes("1")).await.unwrap();
    let (r4, _) = store.delete("/t/a", None).await.unwrap();
    assert!(start < r1 && r1 < r2 && r2 < r3 && r3 < r4, "{start} {r1} {r2} {r3} {r4}");
    assert_eq!(store.current_revision().await.unwrap(), r4);
    assert!(matches!(store.create("/t/b", bytes("x")).await, Err(Error::AlreadyExists)));
    assert!(matches!(store.update("/t/b", bytes("x"), r1).await, Err(Error::Conflict { .. })));
    assert_eq!(store.current_revision().await.unwrap(), r4, "a refused write took a revision");
}

pub async fn create_refuses_an_existing_key(store: Arc<dyn Store>) {
    let r1 = store.create("/t/a", bytes("first")).await.unwrap();
    let refused = store.create("/t/a", bytes("second")).await;
    assert!(matches!(refused, Err(Error::AlreadyExists)), "{refused:?}");
    assert_eq!(store.get("/t/a").await.unwrap(), Some(pair("/t/a", "first", r1, r1)));
    store.delete("/t/a", Some(r1)).await.unwrap();
    let r2 = store.create("/t/a", bytes("again")).await.unwrap();
    assert_eq!(store.get("/t/a").await.unwrap(), Some(pair("/t/a", "again", r2, r2)));
}

pub async fn get_returns_the_current_pair(store: Arc<dyn Store>) {
    assert_eq!(store.get("/t/a").await.unwrap(), None);
    let binary = Bytes::from_static(&[0, 255, 1, 0]);
    let r1 = store.create("/t/a", binary.clone()).await.unwrap();
    let created = KeyValue { key: "/t/a".to_owned(), value: binary, create_revision: r1, mod_revision: r1 };
    assert_eq!(store.get("/t/a").await.unwrap(), Some(created));
    let r2 = store.update("/t/a", bytes("v2"), r1).await.unwrap();
    assert_eq!(store.get("/t/a").await.unwrap(), Some(pair("/t/a", "v2", r1, r2)));
    assert_eq!(store.get("/t/").await.unwrap(), None, "get matched a prefix");
    store.delete("/t/a", None).await.unwrap();
    assert_eq!(store.get("/t/a").await.unwrap(), None);
}

pub async fn guarded_writes_refuse_stale_revisions(store: Arc<dyn Store>) {
    let r1 = store.create("/t/a", bytes("v1")).await.unwrap();
    let r2 = store.update("/t/a", bytes("v2"), r1).await.unwrap();
    let current = pair("/t/a", "v2", r1, r2);
    match store.update("/t/a", bytes("v3"), r1).await {
        Err(Error::Conflict { current: found }) => assert_eq!(found, current),
        other => panic!("a stale update gave {other:?}"),
    }
    match store.delete("/t/a", Some(r1)).await {
        Err(Error::Conflict { current: found }) => assert_eq!(found, current),
        other => panic!("a stale delete gave {other:?}"),
    }
    assert!(matches!(store.update("/t/none", bytes("x"), r1).await, Err(Error::NotFound)));
    assert!(matches!(store.delete("/t/none", None).await, Err(Error::NotFound)));
    assert!(matches!(store.delete("/t/none", Some(r1)).await, Err(Error::NotFound)));
    assert_eq!(store.get("/t/a").await.unwrap(), Some(current.clone()));
    let (r3, deleted) = store.delete("/t/a", Some(r2)).await.unwrap();
    assert!(r3 > r2);
    assert_eq!(deleted, current);
    assert!(matches!(store.update("/t/a", bytes("v4"), r2).await, Err(Error::NotFound)));
    let r4 = store.create("/t/b", bytes("b")).await.unwrap();
    let (_, deleted) = store.delete("/t/b", None).await.unwrap();
    assert_eq!(deleted, pair("/t/b", "b", r4, r4));
}

pub async fn range_keeps_to_the_prefix(store: Arc<dyn Store>) {
    for key in ["/a/c", "/a/b/2", "/b/1", "/a/bc/1", "/a/b", "/a/b/1"] {
        store.create(key, bytes(key)).await.unwrap();
    }
    let r = store.current_revision().await.unwrap();
    let under_b = range(&*store, "/a/b/", 0).await;
    assert_eq!(keys_and_values(&under_b), owned(&[("/a/b/1", "/a/b/1"), ("/a/b/2", "/a/b/2")]));
    assert_eq!(under_b.revision, r);
    assert!(!under_b.more);
    let under_a: Vec<String> = range(&*store, "/a/", 0).await.kvs.into_iter().map(|kv| kv.key).collect();
    assert_eq!(under_a, ["/a/b", "/a/b/1", "/a/b/2", "/a/bc/1", "/a/c"]);
    assert!(range(&*store, "/z/", 0).await.kvs.is_empty());
    store.delete("/a/b/2", None).await.unwrap();
    let under_b = range(&*store, "/a/b/", 0).await;
    assert_eq!(keys_and_values(&under_b), owned(&[("/a/b/1", "/a/b/1")]));
    assert_eq!(under_b.kvs[0], store.get("/a/b/1").await.unwrap().unwrap());
}

pub async fn range_at_an_older_revision(store: Arc<dyn Store>) {
    let start = store.current_revision().await.unwrap();
    let r1 = store.create("/p/a", bytes("a1")).await.unwrap();
    let r2 = store.create("/p/b", bytes("b1")).await.unwrap();
    let r3 = store.update("/p/a", bytes("a2"), r1).await.unwrap();
    let (r4, _) = store.delete("/p/b", None).await.unwrap();
    let r5 = store.create("/p/c", bytes("c1")).await.unwrap();
    let expected: [(i64, &[(&str, &str)]); 7] = [
        (start, &[]),
        (r1, &[("/p/a", "a1")]),
        (r2, &[("/p/a", "a1"), ("/p/b", "b1")]),
        (r3, &[("/p/a", "a2"), ("/p/b", "b1")]),
        (r4, &[("/p/a", "a2")]),
        (r5, &[("/p/a", "a2"), ("/p/c", "c1")]),
        (0, &[("/p/a", "a2"), ("/p/c", "c1")]),
    ];
    for (revision, pairs) in expected {
        let result = range(&*store, "/p/", revision).await;
        assert_eq!(keys_and_values(&result), owned(pairs), "at revision {revision}");
        assert_eq!(result.revision, if revision == 0 { r5 } else { revision });
    }
    let at_r3 = range(&*store, "/p/", r3).await;
    assert_eq!(at_r3.kvs[0], pair("/p/a", "a2", r1, r3));
}

pub async fn range_pages_with_limit_and_start_after(store: Arc<dyn Store>) {
    for i in 0..10 {
        store.create(&format!("/p/k{i}"), bytes("v")).await.unwrap();
    }
    store.create("/q/k0", bytes("v")).await.unwrap();
    store.delete("/p/k4", None).await.unwrap();
    let page = |start_after: Option<&str>, revision: i64, limit: usize| RangeRequest {
        prefix: "/p/".to_owned(),
        start_after: start_after.map(str::to_owned),
        revision,
        limit,
        count_remaining: true,
    };
    let names = |result: &RangeResult| result.kvs.iter().map(|kv| kv.key.clone()).collect::<Vec<_>>();

    let first = store.range(page(None, 0, 4)).await.unwrap();
    assert_eq!(names(&first), ["/p/k0", "/p/k1", "/p/k2", "/p/k3"]);
    assert!(first.more);
    assert_eq!(first.remaining, Some(5));
    // Later pages read at the first page's revision see none of the writes since.
    store.create("/p/k10", bytes("v")).await.unwrap();
    store.delete("/p/k9", None).await.unwrap();
    let second = store.range(page(Some("/p/k3"), first.revision, 4)).await.unwrap();
    assert_eq!(names(&second), ["/p/k5", "/p/k6", "/p/k7", "/p/k8"]);
    assert_eq!((second.more, second.remaining, second.revision), (true, Some(1), first.revision));
    let last = store.range(page(Some("/p/k8"), first.revision, 4)).await.unwrap();
    assert_eq!(names(&last), ["/p/k9"]);
    assert_eq!((last.more, last.remaining), (false, Some(0)));
    let exact = store.range(page(Some("/p/k5"), first.revision, 4)).await.unwrap();
    assert_eq!(names(&exact), ["/p/k6", "/p/k7", "/p/k8", "/p/k9"]);
    assert_eq!((exact.more, exact.remaining), (false, Some(0)));
    let before_prefix = store.range(page(Some("/a"), 0, 2)).await.unwrap();
    assert_eq!(names(&before_prefix), ["/p/k0", "/p/k1"]);
    assert_eq!((before_prefix.more, before_prefix.remaining), (true, Some(7)));
    let now = store.range(page(Some("/p/k6"), 0, 0)).await.unwrap();
    assert_eq!(names(&now), ["/p/k7", "/p/k8"]);
    assert_eq!((now.more, now.remaining), (false, Some(0)));
    // Uncounted, a page still says whether more follow.
    let uncounted = RangeRequest { count_remaining: false, ..page(Some("/p/k3"), first.revision, 4) };
    let uncounted = store.range(uncounted).await.unwrap();
    assert_eq!(names(&uncounted), ["/p/k5", "/p/k6", "/p/k7", "/p/k8"]);
    assert_eq!((uncounted.more, uncounted.remaining), (true, None));
}

pub async fn range_of_compacted_or_future_revisions(store: Arc<dyn Store>) {
    let r1 = store.create("/p/a", bytes("v1")).await.unwrap();
    let r2 = store.update("/p/a", bytes("v2"), r1).await.unwrap();
    let r3 = store.update("/p/a", bytes("v3"), r2).await.unwrap();
    let r4 = store.create("/p/b", bytes("b")).await.unwrap();
    store.compact(r3).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), r3);
    let at = |revision| RangeRequest { prefix: "/p/".to_owned(), revision, ..Default::default() };
    match store.range(at(r2)).await {
        Err(Error::Compacted { requested, compacted }) => assert_eq!((requested, compacted), (r2, r3)),
        other => panic!("a range at a compacted revision gave {other:?}"),
    }
    match store.range(at(r4 + 1)).await {
        Err(Error::FutureRevision { requested, current }) => {
            assert_eq!((requested, current), (r4 + 1, r4))
        }
        other => panic!("a range at a future revision gave {other:?}"),
    }
    // The state at the compacted revision itself is whole, as in etcd.
    assert_eq!(keys_and_values(&range(&*store, "/p/", r3).await), owned(&[("/p/a", "v3")]));
    assert_eq!(keys_and_values(&range(&*store, "/p/", 0).await), owned(&[("/p/a", "v3"), ("/p/b", "b")]));
    assert_eq!(store.get("/p/a").await.unwrap(), Some(pair("/p/a", "v3", r1, r3)));
    assert!(matches!(store.compact(r2).await, Err(Error::Compacted { .. })));
    assert!(matches!(store.compact(r4 + 1).await, Err(Error::FutureRevision { .. })));
}

pub async fn watch_replays_history_then_goes_live(store: Arc<dyn Store>) {
    let r1 = store.create("/w/a", bytes("a1")).await.unwrap();
    let r2 = store.update("/w/a", bytes("a2"), r1).await.unwrap();
    let r3 = store.create("/w/b", bytes("b1")).await.unwrap();
    store.create("/x/a", bytes("elsewhere")).await.unwrap();
    store.create("/wz/a", bytes("sibling")).await.unwrap();
    let (r4, _) = store.delete("/w/a", Some(r2)).await.unwrap();
    let r5 = store.create("/w/a", bytes("a3")).await.unwrap();
    let mut stream = store.watch("/w/", r1).await.unwrap();
    let replayed = [
        put(pair("/w/a", "a1", r1, r1), None),
        put(pair("/w/a", "a2", r1, r2), Some(pair("/w/a", "a1", r1, r1))),
        put(pair("/w/b", "b1", r3, r3), None),
        delete(pair("/w/a", "a2", r1, r2), r4),
        put(pair("/w/a", "a3", r5, r5), None),
    ];
    for expected in replayed {
        assert_eq!(next_event(&mut stream).await, expected);
    }
    let r6 = store.update("/w/b", bytes("b2"), r3).await.unwrap();
    store.create("/x/b", bytes("elsewhere")).await.unwrap();
    let (r7, _) = store.delete("/w/b", None).await.unwrap();
    let b2 = pair("/w/b", "b2", r3, r6);
    assert_eq!(next_event(&mut stream).await, put(b2.clone(), Some(pair("/w/b", "b1", r3, r3))));
    assert_eq!(next_event(&mut stream).await, delete(b2, r7));
    expect_caught_up(&*store, &mut stream).await;
    let mut later = store.watch("/w/", r4).await.unwrap();
    assert_eq!(next_event(&mut later).await.revision(), r4);
    assert_eq!(next_event(&mut later).await.revision(), r5);
}

pub async fn watch_from_zero_sends_only_new_events(store: Arc<dyn Store>) {
    store.create("/w/a", bytes("old")).await.unwrap();
    let mut stream = store.watch("/w/", 0).await.unwrap();
    expect_caught_up(&*store, &mut stream).await;
    let r = store.create("/w/b", bytes("new")).await.unwrap();
    assert_eq!(next_event(&mut stream).await, put(pair("/w/b", "new", r, r), None));
}

pub async fn watch_from_a_future_revision_waits_for_it(store: Arc<dyn Store>) {
    let now = store.current_revision().await.unwrap();
    let mut stream = store.watch("/w/", now + 2).await.unwrap();
    store.create("/w/a", bytes("skipped")).await.unwrap();
    let r = store.create("/w/b", bytes("seen")).await.unwrap();
    assert_eq!(r, now + 2);
    assert_eq!(next_event(&mut stream).await, put(pair("/w/b", "seen", r, r), None));
}

pub async fn watch_of_a_compacted_revision_fails(store: Arc<dyn Store>) {
    let r1 = store.create("/w/a", bytes("v1")).await.unwrap();
    let r2 = store.update("/w/a", bytes("v2"), r1).await.unwrap();
    let r3 = store.update("/w/a", bytes("v3"), r2).await.unwrap();
    store.compact(r2).await.unwrap();
    let (r4, _) = store.delete("/w/a", None).await.unwrap();
    for from in [r1, r2] {
        match store.watch("/w/", from).await {
            Err(Error::Compacted { requested, compacted }) => assert_eq!((requested, compacted), (from, r2)),
            Ok(_) => panic!("a watch from compacted revision {from} started"),
            Err(e) => panic!("a watch from compacted revision {from} gave {e}"),
        }
    }
    // Just above the compacted revision, events still carry the values they replaced.
    let mut stream = store.watch("/w/", r2 + 1).await.unwrap();
    let v2 = pair("/w/a", "v2", r1, r2);
    let v3 = pair("/w/a", "v3", r1, r3);
    assert_eq!(next_event(&mut stream).await, put(v3.clone(), Some(v2)));
    assert_eq!(next_event(&mut stream).await, delete(v3, r4));
}

pub async fn dropped_watch_does_not_stop_writes(store: Arc<dyn Store>) {
    let from = store.create("/w/a", bytes("v")).await.unwrap();
    drop(store.watch("/w/", 0).await.unwrap());
    drop(store.watch("/w/", from).await.unwrap());
    let mut kept = store.watch("/w/", 0).await.unwrap();
    for i in 0..20 {
        store.create(&format!("/w/{i}"), bytes("v")).await.unwrap();
    }
    for i in 0..20 {
        assert_eq!(next_event(&mut kept).await.kv.key, format!("/w/{i}"));
    }
}

/// 16 tasks create 200 keys each at once. Every key lands, and a watch started before, as well
/// as one started midway from a past revision, see every revision exactly once, in order.
pub async fn concurrent_writers_are_all_seen_once_in_order(store: Arc<dyn Store>) {
    const WRITERS: usize = 16;
    const PER_WRITER: usize = 200;
    let total = WRITERS * PER_WRITER;
    let start = store.current_revision().await.unwrap();
    let mut from_start = store.watch("/c/", 0).await.unwrap();
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut revisions = Vec::with_capacity(PER_WRITER);
                for i in 0..PER_WRITER {
                    let key = format!("/c/{writer:02}/{i:03}");
                    revisions.push(store.create(&key, bytes("v")).await.unwrap());
                }
                revisions
            })
        })
        .collect();
    let midway = tokio::time::timeout(WATCH_TIMEOUT, async {
        while store.current_revision().await.unwrap() < start + (total / 4) as i64 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    midway.await.expect("the writers stalled");
    let mut from_past = store.watch("/c/", start + 1).await.unwrap();
    let mut revisions = BTreeSet::new();
    for writer in writers {
        revisions.extend(writer.await.unwrap());
    }
    assert_eq!(revisions.len(), total, "two creates got the same revision");
    let listed = range(&*store, "/c/", 0).await;
    assert_eq!(listed.kvs.len(), total);
    let last = store.current_revision().await.unwrap();
    assert_eq!(revisions.last(), Some(&last));
    store.request_progress().await.unwrap();
    for stream in [&mut from_start, &mut from_past] {
        for &expected in &revisions {
            assert_eq!(next_event(stream).await.revision(), expected);
        }
        expect_progress(stream, last).await;
    }
}

pub async fn progress_follows_the_events(store: Arc<dyn Store>) {
    let mut idle = store.watch("/idle/", 0).await.unwrap();
    let mut busy = store.watch("/busy/", 0).await.unwrap();
    let mut revisions = Vec::new();
    for key in ["/busy/a", "/busy/b", "/busy/c"] {
        revisions.push(store.create(key, bytes("v")).await.unwrap());
    }
    store.request_progress().await.unwrap();
    for expected in &revisions {
        assert_eq!(next_event(&mut busy).await.revision(), *expected);
    }
    expect_progress(&mut busy, revisions[2]).await;
    expect_progress(&mut idle, revisions[2]).await;
}

/// A snapshot taken page by page holds every pair; restoring it over a changed store undoes each
/// kind of change, through writes that watches see.
pub async fn a_snapshot_restores_the_cluster_it_was_taken_of(store: Arc<dyn Store>) {
    for i in 0..1500 {
        store.create(&format!("/registry/things/{i:04}"), bytes(&i.to_string())).await.unwrap();
    }
    let snapshot = Snapshot::take(&*store).await.unwrap();
    assert_eq!(snapshot.pairs.len(), 1500, "pages of 1000 must all be read");
    assert_eq!(snapshot.revision, store.current_revision().await.unwrap());

    let changed = store.get("/registry/things/0000").await.unwrap().unwrap();
    store.update(&changed.key, bytes("changed"), changed.mod_revision).await.unwrap();
    store.delete("/registry/things/0001", None).await.unwrap();
    store.create("/registry/things/new", bytes("new")).await.unwrap();
    let mut watch = store.watch("/registry/", 0).await.unwrap();

    let restored = snapshot.restore(&*store).await.unwrap();
    assert_eq!(restored, Restored { created: 1, updated: 1, deleted: 1, unchanged: 1498 });
    assert_eq!(Snapshot::take(&*store).await.unwrap().pairs, snapshot.pairs);
    let mut seen = BTreeMap::new();
    for _ in 0..3 {
        let event = next_event(&mut watch).await;
        seen.insert(event.kv.key.clone(), event.kind);
    }
    let expected = [
        ("/registry/things/new".to_owned(), EventKind::Delete),
        ("/registry/things/0000".to_owned(), EventKind::Put),
        ("/registry/things/0001".to_owned(), EventKind::Put),
    ];
    assert_eq!(seen, BTreeMap::from(expected));
}
