//! Unknown fields: what a client sent that the kind's schema does not have. Decoding into the
//! typed struct drops them; comparing what came in with what the struct keeps names them,
//! as `spec.template.spec.containers[0].imagee`, for `fieldValidation` (Strict refuses them,
//! Warn, the default, reports them in Warning headers).

use serde_json::Value;

/// The paths present in `sent` (ignoring nulls) that are missing from `kept`.
pub fn dropped(sent: &Value, kept: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(sent, kept, String::new(), &mut out);
    out
}

fn walk(sent: &Value, kept: &Value, path: String, out: &mut Vec<String>) {
    match (sent, kept) {
        (Value::Object(s), Value::Object(k)) => {
            for (key, value) in s {
                if value.is_null() {
                    continue;
                }
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                match k.get(key) {
                    None => out.push(child),
                    Some(kept_value) => walk(value, kept_value, child, out),
                }
            }
        }
        (Value::Array(s), Value::Array(k)) => {
            for (i, (sv, kv)) in s.iter().zip(k).enumerate() {
                walk(sv, kv, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::dropped;
    use k8s_openapi::api::apps::v1::Deployment;
    use serde_json::json;

    #[test]
    fn names_what_the_schema_drops() {
        let sent = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "bogus": 1, "creationTimestamp": null},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "replicaz": 2, "template": {"spec": {"containers": [
                {"name": "c", "image": "x"},
                {"name": "d", "imagee": "y"},
            ]}}},
        });
        let typed: Deployment = serde_json::from_value(sent.clone()).unwrap();
        let kept = serde_json::to_value(&typed).unwrap();
        assert_eq!(
            dropped(&sent, &kept),
            ["metadata.bogus", "spec.replicaz", "spec.template.spec.containers[1].imagee"]
        );
    }
}
