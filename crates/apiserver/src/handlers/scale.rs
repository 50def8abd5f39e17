//! The `scale` subresource: an autoscaling/v1 Scale view of spec.replicas, for
//! `kubectl scale` and autoscalers.

use super::Ctx;
use super::read::fetch;
use super::write::{Ownership, apply_patch, update_with};
use crate::error::{ApiError, ApiResult};
use crate::http_util::{Body, Format, RequestBody, content_type, decode_object, read_body, respond};
use http::{Request, Response};
use registry::FieldError;
use registry::object_meta::UpdateScope;
use serde_json::{Value, json};

fn scale_of(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": obj.pointer("/spec/selector").map(registry::labels::format_selector).unwrap_or_default(),
        },
    })
}

pub async fn get(ctx: Ctx) -> ApiResult<Response<Body>> {
    let obj = fetch(&ctx, ctx.name()).await?;
    Ok(respond(200, &scale_of(&obj), Format::Json))
}

/// PUT or PATCH of a Scale: sets spec.replicas, guarded by the Scale's resourceVersion.
pub async fn write(ctx: Ctx, req: Request<RequestBody>) -> ApiResult<Response<Body>> {
    let headers = req.headers().clone();
    let patch_type = (ctx.req.verb == "patch").then(|| content_type(&headers));
    let body = read_body(req.into_body()).await?;
    let name = ctx.name().to_string();
    let precondition = match &patch_type {
        Some(_) => super::write::patch_precondition(&body)?,
        None => crate::objects::precondition_of(&decode_object(&ctx.api.registry, &headers, &body)?)?,
    };
    let writer = ctx.writer()?;
    let updated = update_with(&ctx, &name, UpdateScope::Main, precondition, Ownership::Update(&writer), &|current| {
        let scale = match &patch_type {
            Some(ct) => apply_patch(ct, &scale_of(current), &body, "io.k8s.api.autoscaling.v1.Scale")?,
            None => decode_object(&ctx.api.registry, &headers, &body)?,
        };
        let replicas = scale.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
        if replicas < 0 {
            return Err(ApiError::invalid(
                crate::error::Subject { group: "autoscaling", plural: "scale", kind: "Scale", name: &name },
                &[FieldError::invalid("spec.replicas", replicas, "must be greater than or equal to 0")],
            ));
        }
        let mut next = current.clone();
        next["spec"]["replicas"] = json!(replicas);
        next["metadata"]["resourceVersion"] =
            scale.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null);
        if next["metadata"]["resourceVersion"].is_null()
            && let Some(m) = next["metadata"].as_object_mut()
        {
            m.remove("resourceVersion");
        }
        Ok(next)
    })
    .await?;
    Ok(respond(200, &scale_of(&updated), Format::Json))
}
