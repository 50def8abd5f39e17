//! Reviews answered and never stored: SelfSubjectReview (who am I) and
//! SelfSubjectAccessReview / SelfSubjectRulesReview (may I), answered by the authorizer.

use super::Ctx;
use crate::authz::{Decision, Request as AuthzRequest};
use crate::error::{ApiError, ApiResult};
use crate::http_util::{Body, Format, RequestBody, decode_object, read_body, respond};
use crate::request_info::ResourceRequest;
use http::{Request, Response};
use serde_json::{Value, json};

pub async fn create(ctx: Ctx, req: Request<RequestBody>) -> ApiResult<Response<Body>> {
    let headers = req.headers().clone();
    let body = read_body(req.into_body()).await?;
    let mut review = decode_object(&ctx.api.registry, &headers, &body)?;
    super::write::check_type(&ctx, &mut review)?;
    let user = &ctx.user;
    let user_info = json!({"username": user.name, "uid": user.uid, "groups": user.groups});
    match ctx.info().plural {
        "selfsubjectreviews" => review["status"] = json!({"userInfo": user_info}),
        "selfsubjectaccessreviews" => {
            let attrs = review.pointer("/spec/resourceAttributes").cloned();
            let non_resource = review.pointer("/spec/nonResourceAttributes").cloned();
            let str_of = |v: &Option<Value>, k: &str| {
                v.as_ref().and_then(|a| a.get(k)).and_then(Value::as_str).unwrap_or("").to_string()
            };
            let decision = if let Some(a) = &attrs {
                let r = ResourceRequest {
                    verb: leak_verb(&str_of(&attrs, "verb")),
                    group: str_of(&attrs, "group"),
                    version: str_of(&attrs, "version"),
                    namespace: Some(str_of(&attrs, "namespace")).filter(|n| !n.is_empty()),
                    resource: str_of(&attrs, "resource"),
                    name: a.get("name").and_then(Value::as_str).map(String::from),
                    subresource: a
                        .get("subresource")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(String::from),
                };
                ctx.api.authorizer.authorize(user, &AuthzRequest::Resource(&r))
            } else if non_resource.is_some() {
                let (verb, path) = (str_of(&non_resource, "verb"), str_of(&non_resource, "path"));
                ctx.api.authorizer.authorize(user, &AuthzRequest::NonResource { verb: &verb, path: &path })
            } else {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    "spec: Invalid value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
                ));
            };
            review["status"] = match decision {
                Decision::Allow => json!({"allowed": true, "reason": "allowed by the built-in roles"}),
                // As with RBAC, a denial carries no reason: no rule allowed it.
                Decision::Deny(_) => json!({"allowed": false}),
            };
        }
        "selfsubjectrulesreviews" => {
            let rules = ctx.api.authorizer.rules(user);
            let resource_rules: Vec<Value> = rules
                .resource
                .iter()
                .map(|r| json!({"verbs": r.verbs, "apiGroups": r.groups, "resources": r.resources}))
                .collect();
            let non_resource_rules: Vec<Value> =
                rules.non_resource.iter().map(|r| json!({"verbs": r.verbs, "nonResourceURLs": r.urls})).collect();
            // A node's rules do not tell which objects are its own, to which it is held.
            let incomplete = user.node_name().is_some() && !user.is_master();
            review["status"] = json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules,
                                      "incomplete": incomplete});
        }
        _ => return Err(ApiError::not_found_path()),
    }
    if let Some(meta) = review.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("creationTimestamp".into(), Value::Null);
    }
    Ok(respond(201, &review, Format::Json))
}

/// Verbs in review requests name one of the API's verbs; anything else is checked as given.
fn leak_verb(verb: &str) -> &'static str {
    const VERBS: &[&str] = &["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "*"];
    VERBS.iter().find(|v| **v == verb).copied().unwrap_or("unknown")
}
