//! watch: a chunked stream of ADDED, MODIFIED, DELETED, BOOKMARK and ERROR events, served from
//! the resource's watch cache (or from the store's history for an older resourceVersion).

use super::Ctx;
use super::read::select;
use crate::error::{ApiError, ApiResult};
use crate::http_util::{Body, Format};
use crate::objects;
use crate::selectors::Selection;
use crate::stored_json;
use crate::table::{Include, table};
use crate::watch_cache::{CacheItem, CachedEvent};
use bytes::Bytes;
use http::{Response, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use store::{EventKind, WatchItem, WatchStream};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

/// Longer watch timeouts are cut to this (a day), which also keeps deadlines representable.
const MAX_TIMEOUT_SECONDS: u64 = 86_400;

/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(10);

enum Source {
    Cache { backlog: VecDeque<Arc<CachedEvent>>, live: broadcast::Receiver<CacheItem> },
    Store(WatchStream),
}

impl Source {
    /// The next item, or `None` when the feed ended (the client should watch again).
    async fn next(&mut self) -> Option<CacheItem> {
        match self {
            Source::Cache { backlog, live } => {
                if let Some(e) = backlog.pop_front() {
                    return Some(CacheItem::Event(e));
                }
                live.recv().await.ok()
            }
            Source::Store(stream) => loop {
                match stream.recv().await? {
                    Ok(WatchItem::Event(e)) => {
                        if let Some(ce) = CachedEvent::from_store(&e) {
                            return Some(CacheItem::Event(Arc::new(ce)));
                        }
                    }
                    Ok(WatchItem::Progress(rev)) => return Some(CacheItem::Progress(rev)),
                    Err(_) => return None,
                }
            },
        }
    }
}

/// What one client sees: its prefix, selection and format.
struct View {
    prefix: String,
    selection: Selection,
    table: Option<Include>,
    /// PartialObjectMetadata rather than the objects.
    metadata_only: bool,
    printer: &'static registry::table::Printer,
    api_version: String,
    kind: String,
    conversion: bool,
    columns_sent: bool,
}

impl View {
    /// An event's frame around the object, in the table form if the client asked for tables.
    fn frame(&mut self, kind: &str, obj: &Value) -> Bytes {
        let json = match self.table {
            Some(include) if kind != "BOOKMARK" && kind != "ERROR" => {
                let meta = json!({"resourceVersion": obj.pointer("/metadata/resourceVersion")});
                let t = table(self.printer, std::slice::from_ref(obj), meta, include, !self.columns_sent);
                self.columns_sent = true;
                serde_json::to_vec(&t)
            }
            _ => serde_json::to_vec(obj),
        };
        frame_json(kind, &json.unwrap_or_default())
    }

    /// The frame a change makes for this client, if it sees it at all. The object is decoded
    /// only when this client needs more than its JSON.
    fn event(&mut self, info: &registry::ResourceInfo, e: &CachedEvent) -> Option<Bytes> {
        if !e.key.starts_with(&self.prefix) {
            return None;
        }
        let selects = |obj: &Value| self.selection.matches(obj);
        let (after, before) = if self.selection.is_everything() {
            (true, e.had_prev())
        } else if let Some(picked) = e.picked(self.selection.pointers()) {
            (selects(&picked.object), picked.prev.as_ref().is_some_and(selects))
        } else {
            (selects(e.object()), e.prev().is_some_and(selects))
        };
        let kind = match (e.kind, e.had_prev(), before, after) {
            (EventKind::Delete, _, _, true) => "DELETED",
            (EventKind::Delete, ..) => return None,
            (_, false, _, true) | (_, true, false, true) => "ADDED",
            (_, true, true, true) => "MODIFIED",
            (_, true, true, false) => "DELETED",
            _ => return None,
        };
        if self.metadata_only {
            return Some(match stored_json::partial_metadata(&e.json) {
                Some(json) => frame_json(kind, &json),
                None => self.frame(kind, &objects::partial_metadata(e.object())),
            });
        }
        if self.conversion {
            let served = objects::to_served(info, e.object().clone());
            return Some(self.frame(kind, &served));
        }
        if self.table.is_some() {
            return Some(self.frame(kind, e.object()));
        }
        Some(frame_json(kind, &e.json))
    }

    fn bookmark(&mut self, revision: i64) -> Bytes {
        let obj = json!({"kind": self.kind, "apiVersion": self.api_version, "metadata": {"resourceVersion": revision.to_string()}});
        self.marker(&obj)
    }

    /// A BOOKMARK frame, whose object is of the kind the client gets.
    fn marker(&mut self, obj: &Value) -> Bytes {
        if self.metadata_only {
            return self.frame("BOOKMARK", &objects::partial_metadata(obj));
        }
        self.frame("BOOKMARK", obj)
    }

    /// The bookmark that ends a watch-list's initial events (`sendInitialEvents=true`).
    fn initial_events_end(&mut self, revision: i64) -> Bytes {
        let obj = json!({
            "kind": self.kind,
            "apiVersion": self.api_version,
            "metadata": {"resourceVersion": revision.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}},
        });
        self.marker(&obj)
    }
}

/// `{"type":kind,"object":json}` and the newline that ends each event.
fn frame_json(kind: &str, json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(32 + json.len());
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(json);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

fn error_frame(e: &ApiError) -> Bytes {
    frame_json("ERROR", &serde_json::to_vec(&e.to_status()).unwrap_or_default())
}

pub async fn watch(ctx: Ctx) -> ApiResult<Response<Body>> {
    let format = ctx.format(true)?;
    let info = ctx.info();
    // A watch on one named object is a watch of the collection, selected by that name.
    let fields = match (&ctx.req.name, ctx.query.get("fieldSelector").filter(|f| !f.is_empty())) {
        (Some(name), Some(f)) => Some(format!("{f},metadata.name={name}")),
        (Some(name), None) => Some(format!("metadata.name={name}")),
        (None, f) => f.map(String::from),
    };
    let selection = Selection::parse(info, ctx.query.get("labelSelector"), fields.as_deref())?;
    let timeout = match ctx.query.get("timeoutSeconds").filter(|t| !t.is_empty()) {
        Some(t) => {
            let secs: u64 = t.parse().map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds: {t}")))?;
            Duration::from_secs(secs.min(MAX_TIMEOUT_SECONDS))
        }
        None => Duration::from_secs(1800 + rand_secs(1800)),
    };
    let bookmarks = ctx.query.flag("allowWatchBookmarks");
    let rv = ctx.query.get("resourceVersion").unwrap_or("");
    let initial_events = initial_events(&ctx, rv, bookmarks)?;
    let (initial, after) = if initial_events.unwrap_or(rv.is_empty() || rv == "0") {
        let page = select(&ctx, &selection, 0).await?;
        (page.items, page.revision)
    } else if rv.is_empty() || rv == "0" {
        (Vec::new(), ctx.api.store.current_revision().await?)
    } else {
        (
            Vec::new(),
            rv.parse::<i64>().map_err(|_| ApiError::bad_request(format!("invalid resource version: \"{rv}\"")))?,
        )
    };
    let current = ctx.api.store.current_revision().await?;
    if after > current {
        return Err(ApiError::timeout(format!("Too large resource version: {after}, current: {current}")));
    }
    let storage_prefix = objects::prefix(info, None);
    let cache = ctx.api.caches.get(&ctx.api.store, &storage_prefix).await?;
    let source = match cache.subscribe(after) {
        Some(sub) => Ok(Source::Cache { backlog: sub.backlog.into(), live: sub.live }),
        None => match ctx.api.store.watch(&storage_prefix, after + 1).await {
            Ok(stream) => Ok(Source::Store(stream)),
            Err(store::Error::Compacted { compacted, .. }) => {
                Err(ApiError::gone(format!("too old resource version: {after} ({compacted})")))
            }
            Err(e) => return Err(e.into()),
        },
    };
    let mut view = View {
        prefix: objects::prefix(info, ctx.namespace()),
        selection,
        table: (format == Format::Table).then(|| Include::parse(ctx.query.get("includeObject"))),
        metadata_only: format == Format::Metadata,
        printer: registry::table::printer(info.group, info.plural),
        api_version: info.api_version(),
        kind: info.kind.to_string(),
        conversion: info.conversion.is_some(),
        columns_sent: false,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let api = ctx.api.clone();
    tokio::spawn(async move {
        let info = api.registry.all().iter().find(|r| r.api_version() == view.api_version && r.kind == view.kind);
        let Some(info) = info else { return };
        api.metrics.watches.inc();
        let mut source = match source {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(error_frame(&e)).await;
                api.metrics.watches.dec();
                return;
            }
        };
        let mut opening: Vec<Bytes> = initial.iter().map(|obj| view.frame("ADDED", obj)).collect();
        if initial_events == Some(true) {
            opening.push(view.initial_events_end(after));
        }
        for frame in opening {
            if tx.send(frame).await.is_err() {
                api.metrics.watches.dec();
                return;
            }
        }
        let deadline = Instant::now() + timeout;
        let mut last_bookmark = Instant::now();
        loop {
            let item = tokio::select! {
                item = source.next() => item,
                _ = tokio::time::sleep_until(deadline) => None,
                _ = tx.closed() => None,
            };
            let frame = match item {
                None => break,
                Some(CacheItem::Event(e)) if e.revision > after => view.event(info, &e),
                Some(CacheItem::Event(_)) => None,
                Some(CacheItem::Progress(rev))
                    if bookmarks && rev > after && last_bookmark.elapsed() >= BOOKMARK_INTERVAL =>
                {
                    last_bookmark = Instant::now();
                    Some(view.bookmark(rev))
                }
                Some(CacheItem::Progress(_)) => None,
            };
            if let Some(f) = frame
                && tx.send(f).await.is_err()
            {
                break;
            }
        }
        api.metrics.watches.dec();
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok(Frame::data(b)), rx)) });
    let body: Body = StreamBody::new(stream).boxed();
    Ok(Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(body)
        .expect("static response parts are valid"))
}

/// `sendInitialEvents` (the watch-list protocol of client-go's informers): `Some(true)` asks
/// for the current objects, then a bookmark that marks their end. It needs
/// `resourceVersionMatch=NotOlderThan` and bookmarks, as Kubernetes checks.
fn initial_events(ctx: &Ctx, rv: &str, bookmarks: bool) -> ApiResult<Option<bool>> {
    let send = match ctx.query.get("sendInitialEvents") {
        None => return Ok(None),
        Some("true" | "1") => true,
        Some("false" | "0") => false,
        Some(other) => return Err(ApiError::bad_request(format!("invalid sendInitialEvents: \"{other}\""))),
    };
    let invalid = |msg: &str| ApiError::new(422, "Invalid", format!("ListOptions.meta.k8s.io \"\" is invalid: {msg}"));
    if ctx.query.get("resourceVersionMatch") != Some("NotOlderThan") {
        return Err(invalid(
            "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ));
    }
    if send && !bookmarks {
        return Err(invalid(
            "allowWatchBookmarks: Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true",
        ));
    }
    if !send && rv.is_empty() {
        return Err(invalid("resourceVersion: Forbidden: sendInitialEvents=false requires a resourceVersion"));
    }
    Ok(Some(send))
}

/// A spread for default watch timeouts, so that watches do not all end at once.
fn rand_secs(max: u64) -> u64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    u64::from(nanos) % max
}
