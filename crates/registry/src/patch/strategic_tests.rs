//! Strategic merge patch, case by case as the Kubernetes documentation describes it
//! ("Update API Objects in Place Using kubectl patch" and the strategic merge patch design).

use super::{PatchError, apply};
use serde_json::{Value, json};

const POD: &str = "io.k8s.api.core.v1.Pod";
const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";

fn pod(containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}})
}

fn patched(original: Value, patch: Value, definition: &str) -> Value {
    apply(original, patch, definition).expect("the patch applies")
}

#[test]
fn containers_merge_by_name() {
    let original = pod(json!([{"name": "a", "image": "nginx"}]));
    let out = patched(original, json!({"spec": {"containers": [{"name": "b", "image": "redis"}]}}), POD);
    // As in the documentation's patch-demo example, the patched-in container comes first.
    assert_eq!(out["spec"]["containers"], json!([{"name": "b", "image": "redis"}, {"name": "a", "image": "nginx"}]));
}

#[test]
fn a_named_container_is_patched_in_place() {
    let original = pod(json!([{"name": "a", "image": "nginx", "args": ["x"]}, {"name": "b", "image": "redis"}]));
    let out = patched(original, json!({"spec": {"containers": [{"name": "a", "image": "nginx:2"}]}}), POD);
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "a", "image": "nginx:2", "args": ["x"]}, {"name": "b", "image": "redis"}])
    );
}

#[test]
fn lists_without_a_strategy_are_replaced() {
    let original = json!({"spec": {"containers": [], "tolerations": [{"key": "a", "operator": "Exists"}]}});
    let patch = json!({"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}});
    let out = patched(original, patch, POD);
    assert_eq!(out["spec"]["tolerations"], json!([{"key": "b", "operator": "Exists"}]));
}

#[test]
fn env_merges_by_name_and_patch_delete_removes_one() {
    let original = pod(json!([{"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}]));
    let patch = json!({"spec": {"containers": [{"name": "a", "env": [{"name": "X", "$patch": "delete"}, {"name": "Z", "value": "3"}]}]}});
    let out = patched(original, patch, POD);
    assert_eq!(out["spec"]["containers"][0]["env"], json!([{"name": "Z", "value": "3"}, {"name": "Y", "value": "2"}]));
}

#[test]
fn ports_merge_by_container_port() {
    let original = pod(json!([{"name": "a", "ports": [{"containerPort": 80, "name": "http"}]}]));
    let patch = json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80, "name": "web"}, {"containerPort": 443}]}]}});
    let out = patched(original, patch, POD);
    assert_eq!(
        out["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 80, "name": "web"}, {"containerPort": 443}])
    );
}

#[test]
fn finalizers_are_a_set() {
    let original = json!({"metadata": {"finalizers": ["a", "b"]}});
    let out = patched(original.clone(), json!({"metadata": {"finalizers": ["b", "c"]}}), POD);
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
    let out = patched(original, json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}), POD);
    assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
}

#[test]
fn patch_replace_in_a_list_replaces_the_list() {
    let original = pod(json!([{"name": "a"}, {"name": "b"}]));
    let patch = json!({"spec": {"containers": [{"name": "c", "image": "x"}, {"$patch": "replace"}]}});
    let out = patched(original, patch, POD);
    assert_eq!(out["spec"]["containers"], json!([{"name": "c", "image": "x"}]));
}

#[test]
fn patch_replace_in_a_map_replaces_the_map() {
    let original = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
    let out = patched(original, json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}), POD);
    assert_eq!(out["metadata"]["labels"], json!({"c": "3"}));
}

#[test]
fn patch_delete_on_a_map_empties_it() {
    let original = json!({"metadata": {"labels": {"a": "1"}, "name": "p"}});
    let out = patched(original, json!({"metadata": {"labels": {"$patch": "delete"}}}), POD);
    assert_eq!(out["metadata"], json!({"labels": {}, "name": "p"}));
}

#[test]
fn maps_merge_and_null_deletes() {
    let original = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
    let out = patched(original, json!({"metadata": {"labels": {"a": null, "c": "3"}}}), POD);
    assert_eq!(out["metadata"]["labels"], json!({"b": "2", "c": "3"}));
}

#[test]
fn retain_keys_drops_what_is_not_listed() {
    let original = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    let out = patched(original, patch, DEPLOYMENT);
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn retain_keys_refuses_a_patch_setting_an_unlisted_key() {
    let original = json!({"spec": {"strategy": {"type": "RollingUpdate"}}});
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}});
    assert!(apply(original, patch, DEPLOYMENT).is_err());
}

#[test]
fn set_element_order_orders_the_merged_list() {
    let original = pod(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "d"}],
        "containers": [{"name": "d", "image": "x"}]
    }});
    let out = patched(original, patch, POD);
    let names: Vec<&str> =
        out["spec"]["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    // c, a and d follow the order; b, only on the server, goes before c, which it preceded.
    assert_eq!(names, ["b", "c", "a", "d"]);
}

#[test]
fn new_fields_are_taken_without_nulls_or_directives() {
    let original = json!({"spec": {"containers": []}});
    let patch = json!({"spec": {"securityContext": {"runAsUser": 1, "runAsGroup": null}}});
    let out = patched(original, patch, POD);
    assert_eq!(out["spec"]["securityContext"], json!({"runAsUser": 1}));
}

#[test]
fn a_merged_list_item_needs_its_merge_key() {
    let original = pod(json!([{"name": "a"}]));
    let err = apply(original, json!({"spec": {"containers": [{"image": "x"}]}}), POD).unwrap_err();
    assert!(err.0.contains("merge key: name"), "{err:?}");
}

#[test]
fn unknown_types_merge_like_a_json_merge_patch() {
    let original = json!({"spec": {"list": [1, 2], "m": {"a": 1}}});
    let out = patched(original, json!({"spec": {"list": [3], "m": {"b": 2}}}), "io.example.Unknown");
    assert_eq!(out, json!({"spec": {"list": [3], "m": {"a": 1, "b": 2}}}));
}

#[test]
fn a_patch_must_be_an_object() {
    assert_eq!(
        apply(json!({}), json!([1]), POD),
        Err(PatchError("a strategic merge patch must be a JSON object".into()))
    );
}
