//! get and list: one object, or a selection of them with limit/continue pagination over a
//! consistent snapshot, as JSON, YAML, a Table or metadata only (PartialObjectMetadata).

use super::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http_util::{Body, Format, respond};
use crate::objects;
use crate::selectors::Selection;
use crate::table::{Include, table};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use http::Response;
use serde_json::{Value, json};
use store::RangeRequest;

pub async fn get(ctx: Ctx) -> ApiResult<Response<Body>> {
    let format = ctx.format(true)?;
    let obj = fetch(&ctx, ctx.name()).await?;
    Ok(match format {
        Format::Table => {
            let meta = json!({"resourceVersion": obj.pointer("/metadata/resourceVersion")});
            respond(
                200,
                &table(
                    registry::table::printer(ctx.info().group, ctx.info().plural),
                    &[obj],
                    meta,
                    Include::parse(ctx.query.get("includeObject")),
                    true,
                ),
                format,
            )
        }
        Format::Metadata => respond(200, &objects::partial_metadata(&obj), format),
        _ => respond(200, &obj, format),
    })
}

/// The current object, or 404.
pub async fn fetch(ctx: &Ctx, name: &str) -> ApiResult<Value> {
    let started = std::time::Instant::now();
    let kv = ctx.api.store.get(&ctx.key(name)).await?;
    ctx.api.metrics.observe_store("get", started.elapsed());
    let kv = kv.ok_or_else(|| ApiError::not_found(ctx.subject(name)))?;
    objects::decode(ctx.info(), &kv)
}

/// Where a list continues: the snapshot revision and the last key returned, and for a list of
/// everything how many keys follow it, counted on the first page only: the snapshot is fixed,
/// so each later page's count is the last one less the page.
#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    rv: i64,
    start: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    remaining: Option<usize>,
}

fn decode_continue(token: &str) -> ApiResult<ContinueToken> {
    let invalid =
        || ApiError::bad_request("continue key is not valid: the token is malformed; start a new list without it");
    let bytes = URL_SAFE.decode(token).map_err(|_| invalid())?;
    serde_json::from_slice(&bytes).map_err(|_| invalid())
}

fn encode_continue(rv: i64, start: &str, remaining: Option<usize>) -> String {
    let token = ContinueToken { rv, start: start.to_string(), remaining };
    URL_SAFE.encode(serde_json::to_vec(&token).unwrap_or_default())
}

/// The revision a list reads at, from `resourceVersion` and `resourceVersionMatch`.
async fn list_revision(ctx: &Ctx) -> ApiResult<i64> {
    let rv = ctx.query.get("resourceVersion").unwrap_or("");
    let matching = ctx.query.get("resourceVersionMatch").unwrap_or("");
    if rv.is_empty() || rv == "0" {
        // A watch-list (sendInitialEvents) may read "not older than" the latest revision.
        let watch_list = ctx.query.has("sendInitialEvents") && matching == "NotOlderThan";
        if !(matching.is_empty() || rv == "0" && matching == "NotOlderThan" || watch_list) {
            return Err(ApiError::bad_request(format!(
                "resourceVersionMatch \"{matching}\" is forbidden unless resourceVersion is provided"
            )));
        }
        return Ok(0);
    }
    let n: i64 = rv.parse().map_err(|_| ApiError::bad_request(format!("invalid resource version: \"{rv}\"")))?;
    match matching {
        "Exact" => Ok(n),
        "" | "NotOlderThan" => {
            let current = ctx.api.store.current_revision().await?;
            if n > current {
                return Err(ApiError::timeout(format!("Too large resource version: {n}, current: {current}")));
            }
            Ok(0)
        }
        other => Err(ApiError::bad_request(format!(
            "Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
        ))),
    }
}

pub struct Page {
    pub items: Vec<Value>,
    pub revision: i64,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

/// Reads the selected objects under the request's prefix, a page at a time when limited.
pub async fn select(ctx: &Ctx, selection: &Selection, limit: usize) -> ApiResult<Page> {
    let info = ctx.info();
    let prefix = objects::prefix(info, ctx.namespace());
    let (mut revision, mut start_after, counted) = match ctx.query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let token = decode_continue(token)?;
            (token.rv, Some(format!("{prefix}{}", token.start)), token.remaining)
        }
        None => (list_revision(ctx).await?, None, None),
    };
    // Only a list of everything reports remainingItemCount, as Kubernetes does.
    let everything = selection.is_everything();
    let mut items = Vec::new();
    loop {
        let want = if limit == 0 { 0 } else { limit - items.len() };
        let started = std::time::Instant::now();
        let result = ctx
            .api
            .store
            .range(RangeRequest {
                prefix: prefix.clone(),
                start_after: start_after.clone(),
                revision,
                limit: want,
                count_remaining: everything && counted.is_none(),
            })
            .await
            .map_err(|e| match e {
                store::Error::Compacted { .. } if ctx.query.has("continue") => ApiError::gone(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                ),
                other => other.into(),
            })?;
        ctx.api.metrics.observe_store("list", started.elapsed());
        revision = result.revision;
        let last_key = result.kvs.last().map(|kv| kv.key.clone());
        for kv in &result.kvs {
            let obj = objects::decode(info, kv)?;
            if selection.matches(&obj) {
                items.push(obj);
            }
        }
        let full = limit != 0 && items.len() >= limit;
        if !result.more {
            return Ok(Page { items, revision, continue_token: None, remaining: None });
        }
        if full || last_key.is_none() {
            let last = last_key.unwrap_or_default();
            let remaining = match counted {
                Some(before) if everything => Some(before.saturating_sub(result.kvs.len())),
                _ => result.remaining,
            };
            let token = encode_continue(revision, last.strip_prefix(&prefix).unwrap_or(&last), remaining);
            return Ok(Page { items, revision, continue_token: Some(token), remaining });
        }
        start_after = last_key;
    }
}

pub fn parse_limit(ctx: &Ctx) -> ApiResult<usize> {
    match ctx.query.get("limit").filter(|l| !l.is_empty()) {
        None => Ok(0),
        Some(l) => l
            .parse::<i64>()
            .map(|n| n.max(0) as usize)
            .map_err(|_| ApiError::bad_request(format!("invalid limit: \"{l}\""))),
    }
}

pub async fn list(ctx: Ctx) -> ApiResult<Response<Body>> {
    let format = ctx.format(true)?;
    let selection = Selection::parse(ctx.info(), ctx.query.get("labelSelector"), ctx.query.get("fieldSelector"))?;
    let page = select(&ctx, &selection, parse_limit(&ctx)?).await?;
    let mut meta = json!({"resourceVersion": page.revision.to_string()});
    if let Some(token) = &page.continue_token {
        meta["continue"] = Value::String(token.clone());
    }
    if let Some(n) = page.remaining {
        meta["remainingItemCount"] = Value::from(n);
    }
    if format == Format::Table {
        return Ok(respond(
            200,
            &table(
                registry::table::printer(ctx.info().group, ctx.info().plural),
                &page.items,
                meta,
                Include::parse(ctx.query.get("includeObject")),
                true,
            ),
            format,
        ));
    }
    let info = ctx.info();
    let list = if format == Format::Metadata {
        let items: Vec<Value> = page.items.iter().map(objects::partial_metadata).collect();
        json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items})
    } else {
        let items: Vec<Value> = page
            .items
            .into_iter()
            .map(|mut o| {
                if let Value::Object(m) = &mut o {
                    m.remove("apiVersion");
                    m.remove("kind");
                }
                o
            })
            .collect();
        json!({"kind": format!("{}List", info.kind), "apiVersion": info.api_version(), "metadata": meta, "items": items})
    };
    Ok(respond(200, &list, format))
}
