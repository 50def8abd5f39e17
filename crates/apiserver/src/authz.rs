//! May this user do this? Authorization is an interface so that RBAC can take over later;
//! until then members of `system:masters` may do everything, every authenticated user may read
//! discovery and ask about themselves, and anonymous users reach only the health and version
//! endpoints.

use crate::authn::User;
use crate::request_info::ResourceRequest;

pub enum Request<'a> {
    Resource(&'a ResourceRequest),
    NonResource { verb: &'a str, path: &'a str },
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(String),
}

pub trait Authorizer: Send + Sync {
    fn authorize(&self, user: &User, request: &Request) -> Decision;
}

/// Paths anyone may read, signed in or not (kube-apiserver's system:public-info-viewer).
pub const PUBLIC_PATHS: &[&str] = &["/healthz", "/livez", "/readyz", "/version"];

/// What every signed-in user may do (kube-apiserver's system:discovery and system:basic-user).
const DISCOVERY_PREFIXES: &[&str] = &["/api", "/apis", "/openapi", "/version", "/healthz", "/livez", "/readyz"];
const SELF_REVIEWS: &[&str] = &["selfsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews"];

pub struct MastersOnly;

impl Authorizer for MastersOnly {
    fn authorize(&self, user: &User, request: &Request) -> Decision {
        if user.is_master() {
            return Decision::Allow;
        }
        match request {
            Request::NonResource { path, .. }
                if DISCOVERY_PREFIXES.iter().any(|p| path == p || path.starts_with(&format!("{p}/"))) =>
            {
                Decision::Allow
            }
            Request::Resource(r) if r.verb == "create" && SELF_REVIEWS.contains(&r.resource.as_str()) => {
                Decision::Allow
            }
            Request::NonResource { verb, path } => {
                Decision::Deny(format!("forbidden: User \"{}\" cannot {verb} path \"{path}\"", user.name))
            }
            Request::Resource(r) => {
                let resource = match &r.subresource {
                    Some(sub) => format!("{}/{sub}", r.resource),
                    None => r.resource.clone(),
                };
                let scope = match &r.namespace {
                    Some(ns) => format!(" in the namespace \"{ns}\""),
                    None => " at the cluster scope".to_string(),
                };
                let name = r.name.as_ref().map(|n| format!(" \"{n}\"")).unwrap_or_default();
                let qualified =
                    if r.group.is_empty() { r.resource.clone() } else { format!("{}.{}", r.resource, r.group) };
                Decision::Deny(format!(
                    "{qualified}{name} is forbidden: User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\"{scope}",
                    user.name, r.verb, r.group
                ))
            }
        }
    }
}
