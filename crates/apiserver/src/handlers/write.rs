//! create, update and patch: decoding, the kind's rules, the admission plugins (NodeRestriction,
//! Priority, LimitRanger, ResourceQuota on create), the namespace's existence, service allocations,
//! and the guarded store write (409 on a stale resourceVersion).

use super::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http_util::{Body, Format, RequestBody, decode_object, read_body, respond};
use crate::node_restriction::{self, Write};
use crate::objects;
use crate::service_alloc::{AllocError, ServiceAllocator};
use bytes::Bytes;
use http::{Request, Response};
use registry::object_meta::{self, UpdateRefusal, UpdateScope};
use registry::{AdmitError, FieldError, apply};
use serde_json::Value;

/// Checks the body's apiVersion and kind against the endpoint, filling them in if absent.
pub fn check_type(ctx: &Ctx, obj: &mut Value) -> ApiResult<()> {
    let info = ctx.info();
    let expected_version = info.api_version();
    let map = obj.as_object_mut().ok_or_else(|| ApiError::bad_request("the body must be an object"))?;
    match map.get("apiVersion").and_then(Value::as_str) {
        Some(v) if !v.is_empty() && v != expected_version => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected_version})"
            )));
        }
        _ => map.insert("apiVersion".into(), Value::String(expected_version)),
    };
    match map.get("kind").and_then(Value::as_str) {
        Some(k) if !k.is_empty() && k != info.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                info.kind
            )));
        }
        _ => map.insert("kind".into(), Value::String(info.kind.into())),
    };
    Ok(())
}

pub fn admit_error(ctx: &Ctx, name: &str, e: AdmitError) -> ApiError {
    match e {
        AdmitError::BadRequest(msg) => {
            ApiError::bad_request(format!("the object provided is unrecognized or malformed: {msg}"))
        }
        AdmitError::Invalid(errors) => ApiError::invalid(ctx.subject(name), &errors),
    }
}

/// Objects may only be created in a namespace that exists and is not being deleted.
async fn check_namespace_open(ctx: &Ctx, name: &str) -> ApiResult<()> {
    let Some(ns) = ctx.namespace().filter(|_| ctx.info().namespaced) else { return Ok(()) };
    let key = format!("{}core/namespaces/{ns}", objects::ROOT);
    let kv = ctx.api.store.get(&key).await?;
    let Some(kv) = kv else {
        return Err(ApiError::not_found(crate::error::Subject {
            group: "",
            plural: "namespaces",
            kind: "Namespace",
            name: ns,
        }));
    };
    let namespace = objects::parse_stored(&kv)?;
    if namespace.pointer("/metadata/deletionTimestamp").is_some() {
        let mut e = ApiError::forbidden(format!(
            "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
            ctx.info().plural,
            name
        ));
        e.details = Some(
            serde_json::json!({"name": name, "kind": ctx.info().plural, "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]}),
        );
        return Err(e);
    }
    Ok(())
}

fn alloc_error(ctx: &Ctx, name: &str, e: AllocError) -> ApiError {
    let field = |f: &str, v: String, msg: &str| ApiError::invalid(ctx.subject(name), &[FieldError::invalid(f, v, msg)]);
    match e {
        AllocError::IpTaken(ip) => {
            field("spec.clusterIPs", ip, "failed to allocate IP: provided IP is already allocated")
        }
        AllocError::IpOutOfRange(ip) => {
            field("spec.clusterIPs", ip, "failed to allocate IP: the provided IP is not in the valid range")
        }
        AllocError::IpInvalid(ip) => field("spec.clusterIPs", ip, "must be a valid IP address"),
        AllocError::PortTaken(p) => field("spec.ports[].nodePort", p.to_string(), "provided port is already allocated"),
        AllocError::Full(msg) => ApiError::internal(msg),
    }
}

fn respond_object(ctx: &Ctx, code: u16, obj: &Value) -> ApiResult<Response<Body>> {
    Ok(match ctx.format(false)? {
        Format::Table => respond(code, obj, Format::Json),
        Format::Metadata => respond(code, &objects::partial_metadata(obj), Format::Metadata),
        format => respond(code, obj, format),
    })
}

pub async fn create(ctx: Ctx, req: Request<RequestBody>) -> ApiResult<Response<Body>> {
    let headers = req.headers().clone();
    let body = read_body(req.into_body()).await?;
    let mut obj = decode_object(&ctx.api.registry, &headers, &body)?;
    ctx.check_duplicates(&headers, &body)?;
    check_type(&ctx, &mut obj)?;
    ctx.check_fields(&obj)?;
    let writer = ctx.writer()?;
    let created = create_object(&ctx, obj, Ownership::Update(&writer)).await?;
    respond_object(&ctx, 201, &created)
}

/// How a write records field ownership.
#[derive(Clone, Copy)]
pub enum Ownership<'a> {
    /// Create, update and non-apply patches: the writer owns what it set or changed.
    Update(&'a apply::Writer),
    /// managedFields are kept as the mutation left them: server-side apply has written
    /// them, and the API server's own writes (an eviction marking its pod) change no one's.
    Applied,
}

/// How many names a create from generateName is tried under before a name conflict is the
/// answer, as kube-apiserver tries.
const GENERATED_NAME_ATTEMPTS: usize = 8;

/// Creates `obj` (checked against the endpoint already) and returns it as stored.
async fn create_object(ctx: &Ctx, mut obj: Value, ownership: Ownership<'_>) -> ApiResult<Value> {
    let info = ctx.info();
    let provisional_name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
    object_meta::prepare_create(info, &mut obj, ctx.namespace()).map_err(|e| admit_error(ctx, &provisional_name, e))?;
    let mut name = objects::name_of(&obj).to_string();
    node_restriction::admit(&ctx.user, info, Write::Create(&obj))?;
    if info.group.is_empty() && info.plural == "pods" {
        ctx.api.priorities.admit(&ctx.api.store, &mut obj, &name).await?;
    }
    if let Some(ns) = ctx.namespace().filter(|_| info.namespaced && info.group.is_empty()) {
        crate::limit_ranger::admit(&ctx.api.limit_ranges, info.plural, ns, &mut obj, &name).await?;
    }
    let mut unknown = ctx.unknown_fields_wanted();
    let admitted = info.behaviour.admit(obj, None, unknown.as_mut());
    ctx.warn_unknown(unknown);
    let mut obj = admitted.map_err(|e| admit_error(ctx, &name, e))?;
    if let Ownership::Update(writer) = ownership {
        apply::record_update(writer, None, &mut obj);
    }
    check_namespace_open(ctx, &name).await?;
    if let Some(ns) = ctx.namespace().filter(|_| info.namespaced) {
        crate::resource_quota::admit(&ctx.api, info, ns, (&obj, None), &name, ctx.dry_run).await?;
    }
    let is_service = info.group.is_empty() && info.plural == "services";
    if is_service {
        ctx.api.services.allocate(&mut obj).map_err(|e| alloc_error(ctx, &name, e))?;
    }
    if ctx.dry_run {
        if is_service {
            ctx.api.services.release(&obj);
        }
        return Ok(obj);
    }
    let mut attempts = 1;
    let result = loop {
        let bytes = objects::encode(info, &obj)?;
        let started = std::time::Instant::now();
        let result = ctx.api.store.create(&ctx.key(&name), bytes).await;
        ctx.api.metrics.observe_store("create", started.elapsed());
        // A name generated from generateName that is taken is generated again, as the API
        // server does: among many objects, five random characters collide.
        if matches!(result, Err(store::Error::AlreadyExists))
            && provisional_name.is_empty()
            && attempts < GENERATED_NAME_ATTEMPTS
            && let Some(fresh) =
                obj.get_mut("metadata").and_then(Value::as_object_mut).and_then(object_meta::name_from_generate_name)
        {
            name = fresh;
            attempts += 1;
            continue;
        }
        break result;
    };
    match result {
        Ok(rev) => {
            objects::set_resource_version(&mut obj, rev);
            Ok(objects::to_served(info, obj))
        }
        Err(e) => {
            if is_service {
                ctx.api.services.release(&obj);
            }
            Err(match e {
                store::Error::AlreadyExists => ApiError::already_exists(ctx.subject(&name)),
                other => other.into(),
            })
        }
    }
}

/// What an update wants the object to become, given the current one.
pub type Mutation<'a> = dyn Fn(&Value) -> ApiResult<Value> + Send + Sync + 'a;

/// Updates object `name` to what `mutate` makes of the current one. With a `precondition`
/// (the resourceVersion the client started from) a stale object is a 409; without one a lost
/// race is retried on the newer object. Returns the stored object.
pub async fn update_with(
    ctx: &Ctx,
    name: &str,
    scope: UpdateScope,
    precondition: Option<i64>,
    ownership: Ownership<'_>,
    mutate: &Mutation<'_>,
) -> ApiResult<Value> {
    let info = ctx.info();
    let key = ctx.key(name);
    loop {
        let current_kv = ctx.api.store.get(&key).await?.ok_or_else(|| ApiError::not_found(ctx.subject(name)))?;
        let current = objects::decode(info, &current_kv)?;
        if scope == UpdateScope::Status {
            node_restriction::admit(&ctx.user, info, Write::UpdateStatus { current: &current })?;
        }
        let mut new = mutate(&current)?;
        let applied_fields = new.pointer("/metadata/managedFields").cloned();
        check_type(ctx, &mut new)?;
        ctx.check_fields(&new)?;
        let body_name = objects::name_of(&new);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        object_meta::check_namespace(info, &mut new, ctx.namespace()).map_err(|e| admit_error(ctx, name, e))?;
        if let Some(rv) = precondition
            && rv != current_kv.mod_revision
        {
            return Err(ApiError::conflict(
                ctx.subject(name),
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        object_meta::prepare_update(info, &mut new, &current, scope).map_err(|e| match e {
            UpdateRefusal::Admit(a) => admit_error(ctx, name, a),
            UpdateRefusal::UidMismatch(uid) => ApiError::conflict(
                ctx.subject(name),
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    current.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("")
                ),
            ),
        })?;
        let is_service = info.group.is_empty() && info.plural == "services";
        if is_service {
            ServiceAllocator::carry_over(&mut new, &current);
        }
        let mut unknown = ctx.unknown_fields_wanted();
        let admitted = info.behaviour.admit(new, Some(&current), unknown.as_mut());
        ctx.warn_unknown(unknown);
        let mut new = admitted.map_err(|e| admit_error(ctx, name, e))?;
        object_meta::bump_generation(info, &mut new, &current);
        objects::set_resource_version(&mut new, current_kv.mod_revision);
        match ownership {
            Ownership::Update(writer) => apply::record_update(writer, Some(&current), &mut new),
            // A status write keeps only the status of what it was given; the apply's
            // ownership record goes on.
            Ownership::Applied => match (applied_fields, new.get_mut("metadata").and_then(Value::as_object_mut)) {
                (Some(fields), Some(meta)) => {
                    meta.insert("managedFields".into(), fields);
                }
                (None, Some(meta)) => {
                    meta.remove("managedFields");
                }
                _ => {}
            },
        }
        if let Some(ns) = ctx.namespace().filter(|_| info.namespaced && scope == UpdateScope::Main) {
            crate::resource_quota::admit(&ctx.api, info, ns, (&new, Some(&current)), name, ctx.dry_run).await?;
        }
        if is_service {
            ctx.api.services.reallocate(&mut new, &current).map_err(|e| alloc_error(ctx, name, e))?;
        }
        // Returns what this attempt newly reserved, when it does not store them.
        let unreserve = |new: &Value| {
            if is_service {
                ctx.api.services.release_difference(new, &current);
            }
        };
        if new == current || ctx.dry_run {
            unreserve(&new);
            return Ok(new);
        }
        // An object being deleted goes once its last finalizer is removed.
        if super::delete::ready_to_go(&new) {
            unreserve(&new);
            match super::delete::remove(ctx, name, &current, current_kv.mod_revision).await {
                Err(e) if e.code == 409 && precondition.is_none() => continue,
                other => return other,
            }
        }
        // Only a Service needs what it tried to store after the attempt.
        let attempted = is_service.then(|| new.clone());
        let stored = guarded_update(ctx, name, new, current_kv.mod_revision).await;
        match (&stored, &attempted) {
            (Ok(Some(stored)), Some(_)) => ctx.api.services.release_difference(&current, stored),
            (Ok(Some(_)), None) => {}
            (_, attempted) => attempted.iter().for_each(unreserve),
        }
        match stored? {
            Some(stored) => return Ok(stored),
            None if precondition.is_none() => continue,
            None => {
                return Err(ApiError::conflict(
                    ctx.subject(name),
                    "the object has been modified; please apply your changes to the latest version and try again",
                ));
            }
        }
    }
}

/// Writes `next` over the object as it was at `revision`. `Ok(None)` if another write got
/// there first (the caller retries on the newer object, or answers 409).
pub async fn guarded_update(ctx: &Ctx, name: &str, mut next: Value, revision: i64) -> ApiResult<Option<Value>> {
    let started = std::time::Instant::now();
    let result = ctx.api.store.update(&ctx.key(name), objects::encode(ctx.info(), &next)?, revision).await;
    ctx.api.metrics.observe_store("update", started.elapsed());
    match result {
        Ok(rev) => {
            objects::set_resource_version(&mut next, rev);
            Ok(Some(next))
        }
        Err(store::Error::Conflict { .. }) => Ok(None),
        Err(store::Error::NotFound) => Err(ApiError::not_found(ctx.subject(name))),
        Err(e) => Err(e.into()),
    }
}

pub async fn update(ctx: Ctx, req: Request<RequestBody>, scope: UpdateScope) -> ApiResult<Response<Body>> {
    let headers = req.headers().clone();
    let body = read_body(req.into_body()).await?;
    let obj = decode_object(&ctx.api.registry, &headers, &body)?;
    ctx.check_duplicates(&headers, &body)?;
    let name = ctx.name().to_string();
    let precondition = objects::precondition_of(&obj)?;
    let writer = ctx.writer()?;
    let updated =
        update_with(&ctx, &name, scope, precondition, Ownership::Update(&writer), &|_| Ok(obj.clone())).await?;
    respond_object(&ctx, 200, &updated)
}

/// Applies a JSON merge patch or a JSON patch to a JSON document.
/// Applies a JSON, merge or strategic merge patch to `target`, an object of the OpenAPI
/// definition `definition`.
pub fn apply_patch(content_type: &str, target: &Value, patch: &Bytes, definition: &str) -> ApiResult<Value> {
    let mut doc = target.clone();
    match content_type {
        "application/strategic-merge-patch+json" => {
            let p: Value = serde_json::from_slice(patch)
                .map_err(|e| ApiError::bad_request(format!("invalid strategic merge patch: {e}")))?;
            doc = registry::patch::strategic::apply(doc, p, definition).map_err(|e| ApiError::bad_request(e.0))?;
        }
        "application/merge-patch+json" => {
            let p: Value = serde_json::from_slice(patch)
                .map_err(|e| ApiError::bad_request(format!("invalid merge patch: {e}")))?;
            if !p.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            json_patch::merge(&mut doc, &p);
        }
        "application/json-patch+json" => {
            let p: json_patch::Patch =
                serde_json::from_slice(patch).map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut doc, &p)
                .map_err(|e| ApiError::new(422, "Invalid", format!("the JSON patch could not be applied: {e}")))?;
        }
        other => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {other})"
                ),
            ));
        }
    }
    Ok(doc)
}

/// A patch guards its write only if it sets metadata.resourceVersion itself (a merge patch's
/// field, or a JSON patch operation on that path).
pub fn patch_precondition(patch: &Bytes) -> ApiResult<Option<i64>> {
    match serde_json::from_slice::<Value>(patch) {
        Ok(Value::Array(ops)) => {
            let op = ops.iter().rev().find(|op| op["path"] == "/metadata/resourceVersion" && op["value"].is_string());
            let rv = op.map(|op| serde_json::json!({"metadata": {"resourceVersion": op["value"]}}));
            rv.map_or(Ok(None), |v| objects::precondition_of(&v))
        }
        Ok(doc) => objects::precondition_of(&doc),
        Err(_) => Ok(None),
    }
}

pub async fn patch(ctx: Ctx, req: Request<RequestBody>, scope: UpdateScope) -> ApiResult<Response<Body>> {
    let content_type = crate::http_util::content_type(req.headers());
    let headers = req.headers().clone();
    let body = read_body(req.into_body()).await?;
    ctx.check_duplicates(&headers, &body)?;
    if content_type == APPLY_PATCH {
        return server_side_apply(ctx, &body, scope).await;
    }
    if ctx.query.get("force").is_some() {
        return Err(invalid_patch_options(FieldError::forbidden("force", "may not be specified for non-apply patch")));
    }
    let name = ctx.name().to_string();
    let precondition = patch_precondition(&body)?;
    let writer = ctx.writer()?;
    let definition = &ctx.info().definition;
    let updated = update_with(&ctx, &name, scope, precondition, Ownership::Update(&writer), &|current| {
        apply_patch(&content_type, current, &body, definition)
    })
    .await?;
    respond_object(&ctx, 200, &updated)
}

const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// Server-side apply: merges the applied configuration into the live object (creating it if
/// absent) under the field manager's ownership; 409 when it would change fields other
/// managers own, unless `force=true`.
async fn server_side_apply(ctx: Ctx, body: &Bytes, scope: UpdateScope) -> ApiResult<Response<Body>> {
    if ctx.query.get("fieldManager").is_none_or(str::is_empty) {
        return Err(invalid_patch_options(FieldError::required("fieldManager", "is required for apply patch")));
    }
    let writer = ctx.writer()?;
    let force = ctx.query.flag("force");
    let mut applied: Value =
        serde_yaml::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    let Some(sent) = applied.as_object() else {
        return Err(ApiError::bad_request("the applied configuration must be an object"));
    };
    for field in ["apiVersion", "kind"] {
        if sent.get(field).and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(ApiError::bad_request(format!("{field} must be set in an applied configuration")));
        }
    }
    if applied.pointer("/metadata/managedFields").is_some_and(|m| !m.is_null()) {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    check_type(&ctx, &mut applied)?;
    ctx.check_fields(&applied)?;
    let name = ctx.name().to_string();
    let sent_name = objects::name_of(&applied);
    if !sent_name.is_empty() && sent_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({sent_name}) does not match the name on the URL ({name})"
        )));
    }
    let precondition = objects::precondition_of(&applied)?;
    let merge =
        |live: Option<&Value>| apply::apply(&writer, live, &applied, force).map_err(|e| apply_error(&ctx, &name, e));
    loop {
        match update_with(&ctx, &name, scope, precondition, Ownership::Applied, &|current| merge(Some(current))).await {
            Err(e) if e.code == 404 && scope == UpdateScope::Main => {}
            Err(e) => return Err(e),
            Ok(updated) => return respond_object(&ctx, 200, &updated),
        }
        let mut created = merge(None)?;
        if let Some(meta) = created.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("name".into(), Value::String(name.clone()));
        }
        match create_object(&ctx, created, Ownership::Applied).await {
            // Someone else created it meanwhile: apply over theirs.
            Err(e) if e.code == 409 && e.reason == "AlreadyExists" => continue,
            Err(e) => return Err(e),
            Ok(created) => return respond_object(&ctx, 201, &created),
        }
    }
}

/// Query parameters a patch may not combine, refused as Kubernetes refuses them: a 422 about
/// the request's PatchOptions.
fn invalid_patch_options(error: FieldError) -> ApiError {
    let subject =
        crate::error::Subject { group: "meta.k8s.io", plural: "PatchOptions", kind: "PatchOptions", name: "" };
    ApiError::invalid(subject, &[error])
}

/// A 409 naming every conflicting manager and field, as Kubernetes words it; or a 422.
fn apply_error(ctx: &Ctx, name: &str, e: apply::ApplyError) -> ApiError {
    match e {
        apply::ApplyError::Invalid(msg) => ApiError::new(422, "Invalid", msg),
        apply::ApplyError::Conflicts(conflicts) => {
            let message = if conflicts.len() == 1 {
                format!("Apply failed with 1 conflict: conflict with {}: {}", conflicts[0].manager, conflicts[0].path)
            } else {
                let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
                managers.sort_unstable();
                managers.dedup();
                let mut lines = Vec::new();
                for manager in managers {
                    lines.push(format!("conflicts with {manager}:"));
                    lines.extend(conflicts.iter().filter(|c| c.manager == manager).map(|c| format!("- {}", c.path)));
                }
                format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
            };
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| serde_json::json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", c.manager), "field": c.path}))
                .collect();
            let mut err = ApiError::new(409, "Conflict", message);
            let mut details = serde_json::json!({"name": name, "kind": ctx.info().plural, "causes": causes});
            if !ctx.info().group.is_empty() {
                details["group"] = ctx.info().group.into();
            }
            err.details = Some(details);
            err
        }
    }
}

/// Writes what `change` makes of the current object (given to it, as nothing else needs it),
/// bypassing the kind's update rules: for the dedicated subresources (binding, finalize) that
/// set fields an update may not touch.
async fn write_through(
    ctx: &Ctx,
    name: &str,
    change: &(dyn Fn(Value) -> ApiResult<Value> + Send + Sync),
) -> ApiResult<Value> {
    let info = ctx.info();
    let key = ctx.key(name);
    loop {
        let kv = ctx.api.store.get(&key).await?.ok_or_else(|| ApiError::not_found(ctx.subject(name)))?;
        let next = change(objects::decode(info, &kv)?)?;
        if ctx.dry_run {
            return Ok(next);
        }
        if super::delete::ready_to_go(&next) {
            return super::delete::remove(ctx, name, &next, kv.mod_revision).await;
        }
        if let Some(stored) = guarded_update(ctx, name, next, kv.mod_revision).await? {
            return Ok(stored);
        }
    }
}

/// `pods/binding`: assigns a pod to a node, once, and marks it scheduled.
pub async fn bind(ctx: Ctx, req: Request<RequestBody>) -> ApiResult<Response<Body>> {
    let headers = req.headers().clone();
    let body = read_body(req.into_body()).await?;
    let binding = decode_object(&ctx.api.registry, &headers, &body)?;
    let node = binding.pointer("/target/name").and_then(Value::as_str).unwrap_or("").to_string();
    let name = ctx.name().to_string();
    if node.is_empty() {
        return Err(ApiError::invalid(ctx.subject(&name), &[FieldError::required("target.name", "")]));
    }
    write_through(&ctx, &name, &|current| {
        if let Some(bound) = current.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            return Err(ApiError::conflict(ctx.subject(&name), &format!("pod {name} is already assigned to node \"{bound}\"")));
        }
        if current.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(ApiError::conflict(ctx.subject(&name), &format!("pod {name} is being deleted, cannot be assigned to a host")));
        }
        let mut next = current;
        next["spec"]["nodeName"] = Value::String(node.clone());
        let conditions = next["status"].get("conditions").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut conditions: Vec<Value> = conditions.into_iter().filter(|c| c["type"] != "PodScheduled").collect();
        conditions.push(serde_json::json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": object_meta::now_rfc3339()}));
        next["status"]["conditions"] = Value::Array(conditions);
        Ok(next)
    })
    .await?;
    let status =
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    Ok(respond(201, &status, Format::Json))
}

/// `namespaces/finalize`: sets the namespace's spec.finalizers; a namespace being deleted
/// whose finalizers are all gone is removed.
pub async fn finalize_namespace(ctx: Ctx, req: Request<RequestBody>) -> ApiResult<Response<Body>> {
    let headers = req.headers().clone();
    let body = read_body(req.into_body()).await?;
    let obj = decode_object(&ctx.api.registry, &headers, &body)?;
    let name = ctx.name().to_string();
    let finalizers = match obj.pointer("/spec/finalizers") {
        None | Some(Value::Null) => Value::Array(vec![]),
        Some(f @ Value::Array(items)) if items.iter().all(Value::is_string) => f.clone(),
        Some(_) => {
            let e = FieldError::invalid("spec.finalizers", "", "must be a list of finalizer names");
            return Err(ApiError::invalid(ctx.subject(ctx.name()), &[e]));
        }
    };
    let updated = write_through(&ctx, &name, &|mut next| {
        next["spec"]["finalizers"] = finalizers.clone();
        Ok(next)
    })
    .await?;
    respond_object(&ctx, 200, &updated)
}
