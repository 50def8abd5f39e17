//! Resource requests: the context every handler gets, and the routing by verb and
//! subresource.

pub mod aggregated_discovery;
pub mod delete;
pub mod discovery;
pub mod eviction;
pub mod join;
pub mod node_kubelet;
pub mod node_proxy;
pub mod ops;
pub mod pod_log;
pub mod pod_stream;
pub mod read;
pub mod review;
pub mod scale;
pub mod watch;
pub mod write;

use crate::api::Api;
use crate::authn::User;
use crate::error::{ApiError, ApiResult, Subject};
use crate::http_util::{Body, Format, RequestBody, negotiate};
use crate::objects;
use crate::request_info::{Query, ResourceRequest};
use http::{HeaderMap, Request, Response};
use registry::object_meta::UpdateScope;
use registry::{ResourceInfo, Verbs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct Ctx {
    pub api: Arc<Api>,
    index: usize,
    pub req: ResourceRequest,
    pub query: Query,
    pub headers: HeaderMap,
    pub user: User,
    pub dry_run: bool,
    /// Warnings for the response's `Warning` headers (deprecations, unknown fields).
    pub warnings: Arc<Mutex<Vec<String>>>,
    /// Unknown fields are to be warned of as admission decodes the object (see
    /// [`Ctx::check_fields`]).
    warn_unknown_at_admission: AtomicBool,
}

impl Ctx {
    pub fn new(api: Arc<Api>, req: ResourceRequest, query: Query, headers: HeaderMap, user: User) -> ApiResult<Ctx> {
        let index = api
            .registry
            .all()
            .iter()
            .position(|r| r.group == req.group && r.version == req.version && r.plural == req.resource)
            .ok_or_else(ApiError::not_found_path)?;
        let info = &api.registry.all()[index];
        // A namespaced object is named inside a namespace; a cluster-scoped one never is.
        let by_name = req.name.is_some() || req.verb == "create";
        if (info.namespaced && by_name && req.namespace.is_none() && info.verbs == Verbs::All)
            || (!info.namespaced && req.namespace.is_some())
        {
            return Err(ApiError::not_found_path());
        }
        let dry_run = match query.get("dryRun") {
            None | Some("") => false,
            Some("All") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Unsupported value: \"{other}\": supported values: \"All\""
                )));
            }
        };
        let warnings = Arc::new(Mutex::new(info.deprecation.map(String::from).into_iter().collect()));
        Ok(Ctx {
            api,
            index,
            req,
            query,
            headers,
            user,
            dry_run,
            warnings,
            warn_unknown_at_admission: AtomicBool::new(false),
        })
    }

    pub fn info(&self) -> &ResourceInfo {
        &self.api.registry.all()[self.index]
    }

    pub fn namespace(&self) -> Option<&str> {
        self.req.namespace.as_deref()
    }

    pub fn name(&self) -> &str {
        self.req.name.as_deref().unwrap_or("")
    }

    pub fn key(&self, name: &str) -> String {
        objects::key(self.info(), self.namespace(), name)
    }

    /// Who this write is recorded as in managedFields: `fieldManager`, or else the client's
    /// User-Agent up to its first `/` (`kubectl`), as Kubernetes names it.
    pub fn writer(&self) -> ApiResult<registry::apply::Writer> {
        let manager = match self.query.get("fieldManager") {
            Some(m) => m.to_string(),
            None => {
                let agent = self.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
                agent.split('/').next().unwrap_or("").chars().take(128).collect()
            }
        };
        if manager.len() > 128 {
            return Err(ApiError::bad_request(format!(
                "fieldManager: Too long: may not be more than 128 bytes: \"{manager}\""
            )));
        }
        if manager.chars().any(|c| c.is_control()) {
            return Err(ApiError::bad_request("fieldManager: Invalid value: must only contain printable characters"));
        }
        let info = self.info();
        Ok(registry::apply::Writer {
            manager,
            api_version: info.api_version(),
            subresource: self.req.subresource.clone(),
            time: registry::object_meta::now_rfc3339(),
            definition: info.definition.clone(),
            has_status: info.status,
        })
    }

    pub fn subject<'a>(&'a self, name: &'a str) -> Subject<'a> {
        let info = self.info();
        Subject { group: info.group, plural: info.plural, kind: info.kind, name }
    }

    /// Applies `fieldValidation` to what the client sent: Strict refuses unknown fields,
    /// Warn (the default) reports each in a warning, Ignore drops them silently.
    ///
    /// Strict checks at once, for the error to come before any other. Warn leaves it to
    /// admission, which decodes the object anyway (a second decoding pass would cost every
    /// write): see [`Ctx::unknown_fields_wanted`] and [`Ctx::warn_unknown`].
    pub fn check_fields(&self, sent: &serde_json::Value) -> ApiResult<()> {
        match self.field_validation()? {
            "Strict" => {
                let unknown = self.info().behaviour.unknown_fields(sent);
                self.field_problems(unknown.into_iter().map(|f| format!("unknown field \"{f}\"")).collect())
            }
            "Warn" => {
                self.warn_unknown_at_admission.store(true, Ordering::Relaxed);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Where admission is to note the unknown fields of the object it decodes, if anywhere.
    pub fn unknown_fields_wanted(&self) -> Option<Vec<String>> {
        self.warn_unknown_at_admission.load(Ordering::Relaxed).then(Vec::new)
    }

    /// Warns of the unknown fields admission noted.
    pub fn warn_unknown(&self, unknown: Option<Vec<String>>) {
        let unknown = unknown.unwrap_or_default().into_iter().map(|f| format!("unknown field \"{f}\""));
        // Only Warn asks admission to note them.
        let _ = self.field_problems(unknown.collect());
    }

    /// The same for keys a JSON body repeats (decoding keeps the last).
    pub fn check_duplicates(&self, headers: &HeaderMap, body: &[u8]) -> ApiResult<()> {
        let json_objects =
            ["", "application/json", "application/merge-patch+json", "application/strategic-merge-patch+json"];
        // A second pass over the body costs a little on every write: skip it when nothing
        // would be reported.
        if self.query.get("fieldValidation") == Some("Ignore")
            || !json_objects.contains(&crate::http_util::content_type(headers).as_str())
        {
            return Ok(());
        }
        let repeated =
            registry::unknown_fields::duplicated(body).into_iter().map(|f| format!("duplicate field \"{f}\""));
        self.field_problems(repeated.collect())
    }

    /// `fieldValidation`: Strict, Warn (the default) or Ignore.
    fn field_validation(&self) -> ApiResult<&str> {
        let mode = self.query.get("fieldValidation").unwrap_or("Warn");
        if !matches!(mode, "Strict" | "Warn" | "Ignore") {
            return Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: \"{mode}\": supported values: \"Ignore\", \"Warn\", \"Strict\""
            )));
        }
        Ok(mode)
    }

    fn field_problems(&self, problems: Vec<String>) -> ApiResult<()> {
        let mode = self.field_validation()?;
        if mode == "Ignore" || problems.is_empty() {
            return Ok(());
        }
        if mode == "Strict" {
            let kind = self.info().kind;
            return Err(ApiError::bad_request(format!(
                "{kind} in version \"{}\" cannot be handled as a {kind}: strict decoding error: {}",
                self.info().version,
                problems.join(", ")
            )));
        }
        let mut warnings = self.warnings.lock().unwrap();
        for w in problems {
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
        Ok(())
    }

    pub fn format(&self, tables: bool) -> ApiResult<Format> {
        negotiate(&self.headers, tables)
    }
}

/// Serves a resource request, with a `Warning` header for each warning it gathered.
pub async fn resource(ctx: Ctx, req: Request<RequestBody>) -> ApiResult<Response<Body>> {
    let warnings = ctx.warnings.clone();
    let mut result = serve(ctx, req).await;
    if let Ok(resp) = &mut result {
        for w in warnings.lock().unwrap().iter() {
            let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
            if let Ok(value) = http::HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
                resp.headers_mut().append(http::header::WARNING, value);
            }
        }
    }
    result
}

async fn serve(ctx: Ctx, req: Request<RequestBody>) -> ApiResult<Response<Body>> {
    let info = ctx.info();
    let sub = ctx.req.subresource.clone();
    match sub.as_deref() {
        None | Some("status") if sub.is_none() || info.status => {}
        Some("scale") if info.scale => {}
        Some("binding" | "eviction") if info.plural == "pods" => {}
        Some("finalize") if info.plural == "namespaces" => {}
        Some("log") if info.plural == "pods" && ctx.req.verb == "get" => return pod_log::get(ctx).await,
        Some("log") if info.plural == "pods" => {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
        Some("exec" | "attach" | "portforward")
            if info.plural == "pods" && matches!(ctx.req.verb, "get" | "create") =>
        {
            return pod_stream::connect(ctx, req).await;
        }
        Some(s) if info.plural == "nodes" && (s == "proxy" || s.starts_with("proxy/")) => {
            return node_proxy::proxy(ctx, req).await;
        }
        Some("exec" | "attach" | "portforward") if info.plural == "pods" => {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
        _ => return Err(ApiError::not_found_path()),
    }
    if info.verbs == Verbs::CreateOnly {
        return match ctx.req.verb {
            "create" => review::create(ctx, req).await,
            _ => Err(ApiError::method_not_allowed("the server does not allow this method on the requested resource")),
        };
    }
    // Collections are created in and listed; named objects are read, replaced, patched, deleted.
    let named = ctx.req.name.is_some();
    let collection_verb = matches!(ctx.req.verb, "list" | "watch" | "deletecollection");
    if (ctx.req.verb == "create" && named && sub.is_none()) || (!named && !collection_verb && ctx.req.verb != "create")
    {
        return Err(ApiError::method_not_allowed("the server does not allow this method on the requested resource"));
    }
    let scope = if sub.as_deref() == Some("status") { UpdateScope::Status } else { UpdateScope::Main };
    match (ctx.req.verb, sub.as_deref()) {
        ("get", Some("scale")) => scale::get(ctx).await,
        ("update" | "patch", Some("scale")) => scale::write(ctx, req).await,
        ("get", _) => read::get(ctx).await,
        ("list", None) => read::list(ctx).await,
        ("watch", None) => watch::watch(ctx).await,
        ("create", None) => write::create(ctx, req).await,
        ("create", Some("binding")) => write::bind(ctx, req).await,
        ("create", Some("eviction")) => eviction::create(ctx, req).await,
        ("update", Some("finalize")) => write::finalize_namespace(ctx, req).await,
        ("update", _) => write::update(ctx, req, scope).await,
        ("patch", _) => write::patch(ctx, req, scope).await,
        ("delete", None) => delete::delete(ctx, req).await,
        ("deletecollection", None) => delete::delete_collection(ctx, req).await,
        _ => Err(ApiError::method_not_allowed("the server does not allow this method on the requested resource")),
    }
}
