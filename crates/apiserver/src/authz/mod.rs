//! May this user do this? Authorization is an interface so that RBAC can take over later;
//! until then users get the roles kube-apiserver binds from its first start ([`roles`]):
//! members of `system:masters` may do everything, nodes what kubelets need, every signed-in
//! user may read discovery and ask about themselves, and anonymous users reach only the health
//! and version endpoints.

mod roles;

use crate::authn::User;
use crate::request_info::ResourceRequest;
pub use roles::BuiltinRoles;
pub(crate) use roles::NODE_LEASE_NAMESPACE;

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
    /// What the user may do, as SelfSubjectRulesReview lists it.
    fn rules(&self, user: &User) -> Rules;
}

/// Paths anyone may read, signed in or not (kube-apiserver's system:public-info-viewer).
pub const PUBLIC_PATHS: &[&str] = &["/healthz", "/livez", "/readyz", "/version"];

/// A rule as an RBAC role writes one: these verbs on these resources (`pods/status` for a
/// subresource) of these API groups, `*` standing for any.
pub struct ResourceRule {
    pub verbs: &'static [&'static str],
    pub groups: &'static [&'static str],
    pub resources: &'static [&'static str],
}

/// These verbs on these paths; a path ending in `*` covers every path it begins.
pub struct NonResourceRule {
    pub verbs: &'static [&'static str],
    pub urls: &'static [&'static str],
}

#[derive(Default)]
pub struct Rules {
    pub resource: Vec<&'static ResourceRule>,
    pub non_resource: Vec<&'static NonResourceRule>,
}

fn any_or(allowed: &[&str], wanted: &str) -> bool {
    allowed.iter().any(|a| *a == "*" || *a == wanted)
}

/// The resource a request is for, as rules name it: `pods`, or `pods/status` for a subresource.
fn resource_of(r: &ResourceRequest) -> String {
    match &r.subresource {
        Some(sub) => format!("{}/{sub}", r.resource),
        None => r.resource.clone(),
    }
}

impl ResourceRule {
    /// Whether the rule allows `r`, whose resource as rules name it is `resource`.
    fn allows(&self, r: &ResourceRequest, resource: &str) -> bool {
        any_or(self.verbs, r.verb) && any_or(self.groups, &r.group) && any_or(self.resources, resource)
    }
}

impl NonResourceRule {
    fn allows(&self, verb: &str, path: &str) -> bool {
        let url = |pattern: &&str| match pattern.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == *pattern,
        };
        any_or(self.verbs, verb) && self.urls.iter().any(url)
    }
}

impl Rules {
    pub fn allow(&self, request: &Request) -> bool {
        match request {
            Request::Resource(r) => {
                let resource = resource_of(r);
                self.resource.iter().any(|rule| rule.allows(r, &resource))
            }
            Request::NonResource { verb, path } => self.non_resource.iter().any(|rule| rule.allows(verb, path)),
        }
    }
}

/// The message of a refusal, worded as kube-apiserver words it.
pub fn denial(user: &User, request: &Request) -> String {
    match request {
        Request::NonResource { verb, path } => {
            format!("forbidden: User \"{}\" cannot {verb} path \"{path}\"", user.name)
        }
        Request::Resource(r) => {
            let resource = resource_of(r);
            let scope = match &r.namespace {
                Some(ns) => format!(" in the namespace \"{ns}\""),
                None => " at the cluster scope".to_string(),
            };
            let name = r.name.as_ref().map(|n| format!(" \"{n}\"")).unwrap_or_default();
            let qualified = if r.group.is_empty() { r.resource.clone() } else { format!("{}.{}", r.resource, r.group) };
            format!(
                "{qualified}{name} is forbidden: User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\"{scope}",
                user.name, r.verb, r.group
            )
        }
    }
}
