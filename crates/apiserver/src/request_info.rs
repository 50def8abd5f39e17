//! What a request is about, read from its path and method the way kube-apiserver reads it:
//! `/apis/apps/v1/namespaces/default/deployments/web/scale` is verb `get` on the `scale`
//! subresource of deployment `web` in `default`.

use http::Method;
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `/api`, `/apis`: discovery of API versions and groups.
    ApiVersions,
    ApiGroups,
    /// `/apis/<group>`.
    ApiGroup(String),
    /// `/api/v1`, `/apis/<group>/<version>`: the resources of one group version.
    GroupVersion {
        group: String,
        version: String,
    },
    /// A resource request.
    Resource(ResourceRequest),
    /// Anything else (`/healthz`, `/version`, `/metrics`, ...).
    NonResource(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRequest {
    pub verb: &'static str,
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// Namespace paths that name the namespace itself rather than a resource inside it.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

pub fn parse(method: &Method, path: &str, query: &Query) -> Target {
    let parts: Vec<&str> = path.trim_matches('/').split('/').filter(|p| !p.is_empty()).collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api"] => return Target::ApiVersions,
        ["apis"] => return Target::ApiGroups,
        ["apis", group] => return Target::ApiGroup(group.to_string()),
        ["api", version] => return Target::GroupVersion { group: String::new(), version: version.to_string() },
        ["apis", group, version] => {
            return Target::GroupVersion { group: group.to_string(), version: version.to_string() };
        }
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Target::NonResource(path.to_string()),
    };
    // The deprecated `/watch/` path prefix is the same as `?watch=true`.
    let (legacy_watch, mut rest) = match rest {
        ["watch", tail @ ..] => (true, tail),
        _ => (false, rest),
    };
    let mut namespace = None;
    if rest.first() == Some(&"namespaces") && rest.len() > 1 {
        namespace = Some(rest[1].to_string());
        if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
            rest = &rest[2..];
        } else {
            namespace = None;
        }
    }
    let Some(resource) = rest.first() else { return Target::NonResource(path.to_string()) };
    let name = rest.get(1).map(|s| s.to_string());
    let subresource = (rest.len() > 2).then(|| rest[2..].join("/"));
    let watching = legacy_watch || query.flag("watch");
    let verb = match *method {
        Method::GET | Method::HEAD if name.is_none() && watching => "watch",
        Method::GET | Method::HEAD if name.is_none() => "list",
        Method::GET | Method::HEAD if watching => "watch",
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if name.is_none() => "deletecollection",
        Method::DELETE => "delete",
        _ => "unknown",
    };
    // A namespace's own path: `/api/v1/namespaces/foo` is resource namespaces, name foo.
    Target::Resource(ResourceRequest {
        verb,
        group: group.to_string(),
        version: version.to_string(),
        namespace,
        resource: resource.to_string(),
        name,
        subresource,
    })
}

/// Decoded query parameters.
#[derive(Clone, Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        Query(form_urlencoded::parse(raw.unwrap_or("").as_bytes()).into_owned().collect())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A boolean parameter: present as `true` or `1` (or bare).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | ""))
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, path: &str) -> ResourceRequest {
        match parse(&method, path, &Query::parse(None)) {
            Target::Resource(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn paths() {
        let r = req(Method::GET, "/apis/apps/v1/namespaces/default/deployments/web/scale");
        assert_eq!(
            (r.verb, r.group.as_str(), r.namespace.as_deref(), r.resource.as_str()),
            ("get", "apps", Some("default"), "deployments")
        );
        assert_eq!((r.name.as_deref(), r.subresource.as_deref()), (Some("web"), Some("scale")));
        let r = req(Method::GET, "/api/v1/namespaces/kube-system");
        assert_eq!((r.resource.as_str(), r.name.as_deref(), r.namespace), ("namespaces", Some("kube-system"), None));
        let r = req(Method::PUT, "/api/v1/namespaces/x/status");
        assert_eq!((r.verb, r.name.as_deref(), r.subresource.as_deref()), ("update", Some("x"), Some("status")));
        let r = req(Method::GET, "/api/v1/pods");
        assert_eq!((r.verb, r.namespace), ("list", None));
        let r = req(Method::GET, "/api/v1/watch/namespaces/a/pods");
        assert_eq!((r.verb, r.namespace.as_deref()), ("watch", Some("a")));
        let r = req(Method::DELETE, "/api/v1/namespaces/a/configmaps");
        assert_eq!(r.verb, "deletecollection");
        assert_eq!(parse(&Method::GET, "/apis", &Query::parse(None)), Target::ApiGroups);
        assert_eq!(parse(&Method::GET, "/readyz", &Query::parse(None)), Target::NonResource("/readyz".into()));
    }
}
