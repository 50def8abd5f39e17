//! delete and deletecollection: preconditions, propagationPolicy (recorded as the finalizers
//! the garbage collector acts on), finalizers and graceful deletion.

use super::Ctx;
use super::read::{parse_limit, select};
use crate::error::{ApiError, ApiResult};
use crate::http_util::{Body, Format, RequestBody, decode_object, read_body, respond};
use crate::node_restriction::{self, Write};
use crate::objects;
use crate::selectors::Selection;
use futures::{StreamExt, stream};
use http::{Request, Response};
use serde_json::{Value, json};

/// The DeleteOptions of a request, from its body or its query.
#[derive(Clone)]
pub struct DeleteOptions {
    /// `dryRun=All` in the query or `"dryRun": ["All"]` in the body.
    pub dry_run: bool,
    grace_period: Option<i64>,
    propagation: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

async fn options(ctx: &Ctx, req: Request<RequestBody>) -> ApiResult<DeleteOptions> {
    let headers = req.headers().clone();
    let body = read_body(req.into_body()).await?;
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        decode_object(&ctx.api.registry, &headers, &body)?
    };
    options_from(ctx, &body)
}

/// Reads DeleteOptions given as JSON (a delete's body, an Eviction's deleteOptions), with
/// the request's query for what they leave out.
pub fn options_from(ctx: &Ctx, body: &Value) -> ApiResult<DeleteOptions> {
    let str_at = |p: &str| body.pointer(p).and_then(Value::as_str).map(String::from);
    let grace_period =
        match (body.get("gracePeriodSeconds").and_then(Value::as_i64), ctx.query.get("gracePeriodSeconds")) {
            (Some(g), _) => Some(g),
            (None, Some(q)) => {
                Some(q.parse().map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds: {q}")))?)
            }
            (None, None) => None,
        };
    let propagation = str_at("/propagationPolicy").or_else(|| ctx.query.get("propagationPolicy").map(String::from));
    if let Some(p) = &propagation
        && !["Orphan", "Background", "Foreground"].contains(&p.as_str())
    {
        return Err(ApiError::new(
            422,
            "Invalid",
            format!(
                "propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            ),
        ));
    }
    let propagation = match body.get("orphanDependents").and_then(Value::as_bool) {
        Some(true) if propagation.is_none() => Some("Orphan".to_string()),
        _ => propagation,
    };
    let dry_run = match body.get("dryRun").and_then(Value::as_array) {
        None => ctx.dry_run,
        Some(values) if values.iter().all(|v| v == "All") => true,
        Some(values) => {
            let given = Value::Array(values.clone());
            return Err(ApiError::bad_request(format!("Unsupported value: {given}: supported values: \"All\"")));
        }
    };
    Ok(DeleteOptions {
        dry_run,
        grace_period,
        propagation,
        uid: str_at("/preconditions/uid"),
        resource_version: str_at("/preconditions/resourceVersion"),
    })
}

/// What a delete did.
pub enum Outcome {
    /// The object is gone (this is how it was).
    Gone(Value),
    /// The object waits for its finalizers or grace period (this is how it is now).
    Pending(Value),
}

/// Kinds whose delete answers with the deleted object rather than a Status, as in Kubernetes.
const RETURN_DELETED_OBJECT: &[&str] = &["pods", "services", "serviceaccounts", "storageclasses", "namespaces"];

/// Namespaces the cluster itself needs (kube-apiserver's NamespaceLifecycle admission).
const PROTECTED_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// An object marked for deletion with no finalizers left is removed, unless it is a pod still
/// within its grace period (its node agent removes it) or a namespace with spec finalizers.
pub fn ready_to_go(obj: &Value) -> bool {
    let empty = |p: &str| obj.pointer(p).and_then(Value::as_array).is_none_or(Vec::is_empty);
    if obj.pointer("/metadata/deletionTimestamp").is_none() || !empty("/metadata/finalizers") {
        return false;
    }
    if obj.get("kind").and_then(Value::as_str) == Some("Namespace") {
        return empty("/spec/finalizers");
    }
    obj.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(0) == 0
}

/// Removes the object from the store, guarded by the revision it was read at.
pub async fn remove(ctx: &Ctx, name: &str, current: &Value, revision: i64) -> ApiResult<Value> {
    let started = std::time::Instant::now();
    let result = ctx.api.store.delete(&ctx.key(name), Some(revision)).await;
    ctx.api.metrics.observe_store("delete", started.elapsed());
    match result {
        Ok((rev, _)) => {
            if ctx.info().group.is_empty() && ctx.info().plural == "services" {
                ctx.api.services.release(current);
            }
            let mut gone = current.clone();
            objects::set_resource_version(&mut gone, rev);
            Ok(gone)
        }
        Err(store::Error::Conflict { .. }) => Err(ApiError::conflict(
            ctx.subject(name),
            "the object has been modified; please apply your changes to the latest version and try again",
        )),
        Err(store::Error::NotFound) => Err(ApiError::not_found(ctx.subject(name))),
        Err(e) => Err(e.into()),
    }
}

/// Pods bound to a node are given their grace period to stop; the node agent removes them.
fn grace_period(ctx: &Ctx, obj: &Value, requested: Option<i64>) -> i64 {
    let is_pod = ctx.info().group.is_empty() && ctx.info().plural == "pods";
    if !is_pod {
        return 0;
    }
    let bound = obj.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
    let finished = matches!(obj.pointer("/status/phase").and_then(Value::as_str), Some("Succeeded" | "Failed"));
    if !bound || finished {
        return 0;
    }
    requested
        .unwrap_or_else(|| obj.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(30))
        .max(0)
}

/// Deletes one object. Returns it as it was removed, or as it now waits (finalizers or a grace
/// period).
pub async fn delete_one(ctx: &Ctx, name: &str, opts: &DeleteOptions) -> ApiResult<Outcome> {
    let info = ctx.info();
    if info.group.is_empty() && info.plural == "namespaces" && PROTECTED_NAMESPACES.contains(&name) {
        let mut e =
            ApiError::forbidden(format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"));
        e.details = Some(json!({"name": name, "kind": "namespaces"}));
        return Err(e);
    }
    loop {
        let kv = ctx.api.store.get(&ctx.key(name)).await?.ok_or_else(|| ApiError::not_found(ctx.subject(name)))?;
        let current = objects::decode(info, &kv)?;
        node_restriction::admit(&ctx.user, info, Write::Delete { current: &current })?;
        let uid = current.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("");
        if let Some(want) = &opts.uid
            && want != uid
        {
            return Err(ApiError::conflict(
                ctx.subject(name),
                &format!("Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"),
            ));
        }
        if let Some(want) = &opts.resource_version
            && *want != kv.mod_revision.to_string()
        {
            return Err(ApiError::conflict(
                ctx.subject(name),
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {}",
                    kv.mod_revision
                ),
            ));
        }
        let mut next = current.clone();
        let meta =
            next["metadata"].as_object_mut().ok_or_else(|| ApiError::internal("stored object has no metadata"))?;
        let mut finalizers: Vec<Value> = meta.get("finalizers").and_then(Value::as_array).cloned().unwrap_or_default();
        let policy_finalizer = match opts.propagation.as_deref() {
            Some("Orphan") => Some("orphan"),
            Some("Foreground") => Some("foregroundDeletion"),
            _ => None,
        };
        if let Some(f) = policy_finalizer
            && !finalizers.iter().any(|x| x == f)
        {
            finalizers.push(Value::from(f));
        }
        let grace = grace_period(ctx, &current, opts.grace_period);
        let is_namespace = info.group.is_empty() && info.plural == "namespaces";
        let spec_finalizers = is_namespace
            && current.pointer("/spec/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty());
        if finalizers.is_empty() && grace == 0 && !spec_finalizers {
            if opts.dry_run {
                return Ok(Outcome::Gone(current));
            }
            match remove(ctx, name, &current, kv.mod_revision).await {
                Err(e) if e.code == 409 && opts.resource_version.is_none() => continue,
                other => return other.map(Outcome::Gone),
            }
        }
        // The first delete sets the deadline; a later one with a shorter grace period brings it
        // forward.
        let current_grace = meta.get("deletionGracePeriodSeconds").and_then(Value::as_i64);
        if !meta.contains_key("deletionTimestamp") || current_grace.is_some_and(|g| grace < g) {
            let when = chrono::Utc::now() + chrono::Duration::seconds(grace);
            meta.insert("deletionTimestamp".into(), Value::String(when.format("%Y-%m-%dT%H:%M:%SZ").to_string()));
            meta.insert("deletionGracePeriodSeconds".into(), Value::from(grace));
        }
        if !finalizers.is_empty() {
            meta.insert("finalizers".into(), Value::Array(finalizers));
        }
        if is_namespace {
            next["status"]["phase"] = Value::from("Terminating");
        }
        if next == current || opts.dry_run {
            return Ok(Outcome::Pending(next));
        }
        if let Some(stored) = super::write::guarded_update(ctx, name, next, kv.mod_revision).await? {
            return Ok(Outcome::Pending(stored));
        }
    }
}

pub async fn delete(ctx: Ctx, req: Request<RequestBody>) -> ApiResult<Response<Body>> {
    let opts = options(&ctx, req).await?;
    let name = ctx.name().to_string();
    // 200 either way: with the object while it waits (finalizers, a grace period), and once
    // gone with a Success Status, or the object for the kinds Kubernetes returns it for.
    let body = match delete_one(&ctx, &name, &opts).await? {
        Outcome::Pending(obj) => obj,
        Outcome::Gone(obj) if RETURN_DELETED_OBJECT.contains(&ctx.info().plural) => obj,
        Outcome::Gone(obj) => {
            let info = ctx.info();
            let mut details = json!({"name": name, "kind": info.plural, "uid": obj.pointer("/metadata/uid")});
            if !info.group.is_empty() {
                details["group"] = json!(info.group);
            }
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
        }
    };
    Ok(respond(200, &body, Format::Json))
}

/// How many of a collection's objects are deleted at once. Each deletion waits for its
/// write to be durable; deletions in flight together share their commits.
const COLLECTION_DELETES_IN_FLIGHT: usize = 32;

pub async fn delete_collection(ctx: Ctx, req: Request<RequestBody>) -> ApiResult<Response<Body>> {
    let opts = options(&ctx, req).await?;
    let selection = Selection::parse(ctx.info(), ctx.query.get("labelSelector"), ctx.query.get("fieldSelector"))?;
    let page = select(&ctx, &selection, parse_limit(&ctx)?).await?;
    // Collected first: a stream holding the mapping closure would not be Send for every
    // lifetime, as the server's tasks need.
    let deletions: Vec<_> = page.items.iter().map(|obj| delete_one(&ctx, objects::name_of(obj), &opts)).collect();
    let mut outcomes = stream::iter(deletions).buffered(COLLECTION_DELETES_IN_FLIGHT);
    let mut deleted = Vec::new();
    while let Some(outcome) = outcomes.next().await {
        match outcome {
            Ok(Outcome::Gone(obj) | Outcome::Pending(obj)) => deleted.push(obj),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    drop(outcomes);
    let info = ctx.info();
    let list = json!({
        "kind": format!("{}List", info.kind),
        "apiVersion": info.api_version(),
        "metadata": {"resourceVersion": page.revision.to_string()},
        "items": deleted,
    });
    Ok(respond(200, &list, Format::Json))
}
