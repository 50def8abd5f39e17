//! The API: one request in, one response out. Authentication, authorization, routing to the
//! discovery, operations and resource handlers, and request metrics.

use crate::authn::{TokenFile, User, authenticate};
use crate::authz::{Authorizer, Decision, PUBLIC_PATHS, Request};
use crate::error::ApiError;
use crate::handlers::{self, Ctx};
use crate::http_util::{Body, RequestBody, error_response};
use crate::inflight::InFlight;
use crate::metrics::Metrics;
use crate::request_info::{Query, Target, parse};
use crate::service_alloc::ServiceAllocator;
use crate::watch_cache::WatchCaches;
use http::{Request as HttpRequest, Response};
use registry::Registry;
use std::sync::Arc;
use std::time::Instant;
use store::Store;

pub struct Api {
    pub store: Arc<dyn Store>,
    pub registry: Registry,
    pub caches: WatchCaches,
    pub tokens: TokenFile,
    pub authorizer: Box<dyn Authorizer>,
    pub metrics: Metrics,
    pub services: ServiceAllocator,
    pub inflight: InFlight,
    /// The address clients reach this server at, for `/api`'s serverAddressByClientCIDRs.
    pub advertise: String,
    pub openapi: crate::openapi::OpenApi,
    pub discovery: handlers::aggregated_discovery::Cache,
    pub priorities: Arc<crate::priority::PriorityClasses>,
    /// The ResourceQuotas and LimitRanges, which admission looks up for every create.
    pub quotas: crate::mirror::Mirror,
    pub limit_ranges: crate::mirror::Mirror,
    /// The way to the nodes' kubelets, for the pod subresources they serve (pods/log).
    pub kubelet: crate::kubelet_client::KubeletClient,
    /// What servers joining the cluster fetch, outside the Kubernetes API.
    pub join: handlers::join::Join,
}

impl Api {
    pub async fn handle(self: &Arc<Self>, req: HttpRequest<RequestBody>, cert_user: Option<&User>) -> Response<Body> {
        if handlers::join::serves(req.uri().path()) {
            return self.join.serve(req).await;
        }
        let started = Instant::now();
        let query = Query::parse(req.uri().query());
        let path = req.uri().path().to_string();
        let target = parse(req.method(), &path, &query);
        // Metric labels come from fixed sets (the catalog's resources, the API's verbs), so
        // that no request can mint new time series.
        let (verb, resource) = match &target {
            Target::Resource(r) => {
                let known = self.registry.get(&r.group, &r.version, &r.resource).map_or("", |info| info.plural);
                (r.verb, known)
            }
            _ => (if req.method() == http::Method::GET { "get" } else { "other" }, ""),
        };
        let authorization = req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let response = match authenticate(cert_user, authorization, &self.tokens) {
            Err(e) => error_response(&e),
            Ok(user) => match self.inflight.admit(verb, &user) {
                Err(e) => error_response(&e),
                Ok(_permit) => match self.route(req, user, target, query, &path).await {
                    Ok(resp) => resp,
                    Err(e) => error_response(&e),
                },
            },
        };
        if verb != "watch" {
            self.metrics.observe_request(verb, resource, response.status().as_u16(), started.elapsed());
        }
        response
    }

    async fn route(
        self: &Arc<Self>,
        req: HttpRequest<RequestBody>,
        user: User,
        target: Target,
        query: Query,
        path: &str,
    ) -> Result<Response<Body>, ApiError> {
        let verb = req.method().as_str().to_ascii_lowercase();
        let request = match &target {
            Target::Resource(r) => Request::Resource(r),
            _ => Request::NonResource { verb: &verb, path },
        };
        let public = matches!(request, Request::NonResource { .. })
            && PUBLIC_PATHS.iter().any(|p| path == *p || path.starts_with(&format!("{p}/")));
        if user.is_anonymous() && !public {
            return Err(ApiError::unauthorized());
        }
        if !public && let Decision::Deny(why) = self.authorizer.authorize(&user, &request) {
            let mut e = ApiError::forbidden(why);
            if let Target::Resource(r) = &target {
                let mut details = serde_json::json!({"kind": r.resource});
                if let Some(name) = &r.name {
                    details["name"] = name.clone().into();
                }
                if !r.group.is_empty() {
                    details["group"] = r.group.clone().into();
                }
                e.details = Some(details);
            }
            return Err(e);
        }
        match target {
            Target::ApiVersions => Ok(handlers::discovery::api_versions(self, req.headers())),
            Target::ApiGroups => Ok(handlers::discovery::api_groups(self, req.headers())),
            Target::ApiGroup(g) => handlers::discovery::api_group(self, &g),
            Target::GroupVersion { group, version } => handlers::discovery::resource_list(self, &group, &version),
            Target::NonResource(p) if p.starts_with("/openapi/") => {
                crate::openapi::serve(self, &p, &query, req.headers()).await
            }
            Target::NonResource(p) => handlers::ops::serve(self, &p, &query).await,
            Target::Resource(r) => {
                let ctx = Ctx::new(self.clone(), r, query, req.headers().clone(), user)?;
                handlers::resource(ctx, req).await
            }
        }
    }
}
