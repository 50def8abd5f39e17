//! Server-side apply and managedFields, case by case as the Kubernetes documentation
//! ("Server-Side Apply") describes field management, conflicts and removal.

use super::{ApplyError, Writer, apply, record_update};
use serde_json::{Value, json};

const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";

fn writer(manager: &str) -> Writer {
    Writer {
        manager: manager.into(),
        api_version: "apps/v1".into(),
        subresource: None,
        time: "2026-11-23T00:00:00Z".into(),
        definition: DEPLOYMENT.into(),
        has_status: true,
    }
}

fn deployment(replicas: i64, containers: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}}}})
}

fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|e| (e["manager"].as_str().unwrap().to_string(), e["operation"].as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn fields_of<'a>(obj: &'a Value, manager: &str) -> &'a Value {
    let list = obj["metadata"]["managedFields"].as_array().unwrap();
    &list.iter().find(|e| e["manager"] == manager).unwrap()["fieldsV1"]
}

#[test]
fn a_first_apply_creates_and_owns_what_it_set() {
    let applied = deployment(2, json!([{"name": "app", "image": "nginx"}]));
    let out = apply(&writer("alice"), None, &applied, false).unwrap();
    assert_eq!(out["spec"]["replicas"], 2);
    assert_eq!(managers(&out), [("alice".to_string(), "Apply".to_string())]);
    let fields = fields_of(&out, "alice");
    assert_eq!(fields["f:spec"]["f:replicas"], json!({}));
    assert_eq!(
        fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"],
        json!({".": {}, "f:image": {}, "f:name": {}})
    );
    // Identity and type are nobody's.
    assert!(fields.get("f:apiVersion").is_none());
    assert!(fields["f:metadata"].get("f:name").is_none());
}

#[test]
fn another_manager_changing_an_owned_field_conflicts_unless_forced() {
    let live =
        apply(&writer("alice"), None, &deployment(2, json!([{"name": "app", "image": "nginx"}])), false).unwrap();
    let bob =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 5}});
    let Err(ApplyError::Conflicts(conflicts)) = apply(&writer("bob"), Some(&live), &bob, false) else {
        panic!("no conflict")
    };
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].manager, "\"alice\"");
    assert_eq!(conflicts[0].path, ".spec.replicas");

    let forced = apply(&writer("bob"), Some(&live), &bob, true).unwrap();
    assert_eq!(forced["spec"]["replicas"], 5);
    assert_eq!(fields_of(&forced, "bob")["f:spec"]["f:replicas"], json!({}));
    assert!(fields_of(&forced, "alice")["f:spec"].get("f:replicas").is_none());
}

#[test]
fn applying_the_same_value_shares_the_field() {
    let live =
        apply(&writer("alice"), None, &deployment(2, json!([{"name": "app", "image": "nginx"}])), false).unwrap();
    let bob =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}});
    let out = apply(&writer("bob"), Some(&live), &bob, false).unwrap();
    assert_eq!(fields_of(&out, "alice")["f:spec"]["f:replicas"], json!({}));
    assert_eq!(fields_of(&out, "bob")["f:spec"]["f:replicas"], json!({}));
}

#[test]
fn items_of_keyed_lists_from_two_managers_both_stay() {
    let live =
        apply(&writer("alice"), None, &deployment(1, json!([{"name": "app", "image": "nginx"}])), false).unwrap();
    let bob = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                     "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "envoy"}]}}}});
    let out = apply(&writer("bob"), Some(&live), &bob, false).unwrap();
    let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app", "sidecar"]);
}

#[test]
fn a_field_dropped_from_the_applied_config_is_removed_when_nobody_else_owns_it() {
    let first = deployment(
        1,
        json!([{"name": "app", "image": "nginx", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]),
    );
    let live = apply(&writer("alice"), None, &first, false).unwrap();
    let second = deployment(1, json!([{"name": "app", "image": "nginx", "env": [{"name": "A", "value": "1"}]}]));
    let out = apply(&writer("alice"), Some(&live), &second, false).unwrap();
    assert_eq!(out["spec"]["template"]["spec"]["containers"][0]["env"], json!([{"name": "A", "value": "1"}]));
}

#[test]
fn a_field_dropped_by_one_manager_but_owned_by_another_stays() {
    let live =
        apply(&writer("alice"), None, &deployment(3, json!([{"name": "app", "image": "nginx"}])), false).unwrap();
    let bob =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 3}});
    let live = apply(&writer("bob"), Some(&live), &bob, false).unwrap();
    let mut without_replicas = deployment(3, json!([{"name": "app", "image": "nginx"}]));
    without_replicas["spec"].as_object_mut().unwrap().remove("replicas");
    let out = apply(&writer("alice"), Some(&live), &without_replicas, false).unwrap();
    assert_eq!(out["spec"]["replicas"], 3);
    assert!(fields_of(&out, "alice")["f:spec"].get("f:replicas").is_none());
}

#[test]
fn a_removed_item_goes_but_an_item_another_manager_touched_keeps_its_key() {
    let live = apply(
        &writer("alice"),
        None,
        &deployment(1, json!([{"name": "app", "image": "nginx"}, {"name": "log", "image": "busybox"}])),
        false,
    )
    .unwrap();
    // bob updates (not applies) the log container's image: he now owns that field.
    let mut edited = live.clone();
    edited["spec"]["template"]["spec"]["containers"][1]["image"] = json!("busybox:2");
    record_update(&writer("bob"), Some(&live), &mut edited);
    let out = apply(&writer("alice"), Some(&edited), &deployment(1, json!([{"name": "app", "image": "nginx"}])), false)
        .unwrap();
    let containers = &out["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers, &json!([{"name": "app", "image": "nginx"}, {"name": "log", "image": "busybox:2"}]));
}

#[test]
fn an_update_takes_the_fields_it_changes_and_then_an_apply_conflicts_with_it() {
    let live =
        apply(&writer("alice"), None, &deployment(2, json!([{"name": "app", "image": "nginx"}])), false).unwrap();
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(4);
    record_update(&writer("kubectl-scale"), Some(&live), &mut scaled);
    assert_eq!(managers(&scaled), [("alice".into(), "Apply".into()), ("kubectl-scale".into(), "Update".into())]);
    assert!(fields_of(&scaled, "alice")["f:spec"].get("f:replicas").is_none());
    let Err(ApplyError::Conflicts(c)) =
        apply(&writer("alice"), Some(&scaled), &deployment(2, json!([{"name": "app", "image": "nginx"}])), false)
    else {
        panic!("no conflict")
    };
    assert_eq!(c[0].manager, "\"kubectl-scale\" using apps/v1");
    assert_eq!(c[0].path, ".spec.replicas");
}

#[test]
fn a_create_records_an_update_entry_with_maps_owned_as_themselves() {
    let mut created = deployment(1, json!([{"name": "app", "image": "nginx"}]));
    record_update(&writer("kubectl-create"), None, &mut created);
    let fields = fields_of(&created, "kubectl-create");
    assert_eq!(fields["f:spec"]["f:selector"], json!({}));
    assert_eq!(fields["f:spec"]["f:template"]["f:metadata"]["f:labels"], json!({".": {}, "f:app": {}}));
}

#[test]
fn an_update_that_changes_nothing_leaves_managed_fields_alone() {
    let mut created = deployment(1, json!([{"name": "app", "image": "nginx"}]));
    record_update(&writer("a"), None, &mut created);
    let mut again = created.clone();
    record_update(&writer("b"), Some(&created), &mut again);
    assert_eq!(again, created);
}

#[test]
fn an_applied_port_without_protocol_is_the_live_tcp_port() {
    let applied = deployment(1, json!([{"name": "app", "image": "nginx", "ports": [{"containerPort": 80}]}]));
    let mut live = apply(&writer("alice"), None, &applied, false).unwrap();
    live["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = json!("TCP");
    let out = apply(&writer("alice"), Some(&live), &applied, false).unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
}

#[test]
fn a_keyed_item_without_its_key_is_refused() {
    let applied = deployment(1, json!([{"image": "nginx"}]));
    let Err(ApplyError::Invalid(msg)) = apply(&writer("alice"), None, &applied, false) else { panic!("accepted") };
    assert!(msg.contains("omits key field \"name\""), "{msg}");
}

#[test]
fn a_status_write_owns_what_it_changed_in_status_and_removed_fields_leave_every_owner() {
    let status_writer = Writer { subresource: Some("status".into()), ..writer("controller") };
    let mut created = deployment(1, json!([{"name": "app", "image": "nginx"}]));
    created["status"] = json!({"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]});
    record_update(&status_writer, None, &mut created);
    let mut spec_written = created.clone();
    spec_written["spec"]["replicas"] = json!(3);
    spec_written["metadata"]["labels"] = json!({"tier": "web"});
    record_update(&writer("kubectl"), Some(&created), &mut spec_written);

    // The status writer changes one field and drops the conditions; it owns nothing outside
    // status, whatever else differs.
    let mut next = spec_written.clone();
    next["status"] = json!({"replicas": 3});
    next["spec"]["paused"] = json!(true);
    record_update(&status_writer, Some(&spec_written), &mut next);
    assert_eq!(fields_of(&next, "controller"), &json!({"f:status": {"f:replicas": {}}}));
    assert_eq!(fields_of(&next, "kubectl")["f:spec"], json!({"f:replicas": {}}));

    // A label removed by an update leaves its owner's entry, which goes once it is empty.
    let mut unlabelled = next.clone();
    unlabelled["metadata"].as_object_mut().unwrap().remove("labels");
    unlabelled["spec"].as_object_mut().unwrap().remove("replicas");
    record_update(&writer("editor"), Some(&next), &mut unlabelled);
    let owners: Vec<String> = managers(&unlabelled).into_iter().map(|(m, _)| m).collect();
    assert!(!owners.contains(&"kubectl".to_string()), "{owners:?}");
}

#[test]
fn an_update_keeps_the_entries_it_does_not_change_and_rewrites_those_it_does() {
    let mut live = deployment(2, json!([{"name": "app", "image": "nginx"}]));
    record_update(&writer("alice"), None, &mut live);
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(3);
    record_update(&writer("bob"), Some(&live), &mut scaled);
    let alice = fields_of(&live, "alice").clone();
    assert_eq!(managers(&scaled), [("alice".into(), "Update".into()), ("bob".into(), "Update".into())]);
    assert!(fields_of(&scaled, "alice")["f:spec"].get("f:replicas").is_none());

    // bob's write of another field leaves alice's entry as it was, to the byte.
    let mut relabeled = scaled.clone();
    relabeled["metadata"]["labels"] = json!({"team": "b"});
    record_update(&writer("bob"), Some(&scaled), &mut relabeled);
    assert_eq!(relabeled["metadata"]["managedFields"][0], scaled["metadata"]["managedFields"][0]);
    assert_eq!(fields_of(&relabeled, "bob")["f:metadata"]["f:labels"], json!({".": {}, "f:team": {}}));
    assert_eq!(fields_of(&relabeled, "bob")["f:spec"]["f:replicas"], json!({}));

    // Removing a field alice owns takes it out of her entry.
    let mut no_image = relabeled.clone();
    no_image["spec"]["template"]["spec"]["containers"][0].as_object_mut().unwrap().remove("image");
    record_update(&writer("bob"), Some(&relabeled), &mut no_image);
    let containers = &fields_of(&no_image, "alice")["f:spec"]["f:template"]["f:spec"]["f:containers"];
    assert!(containers["k:{\"name\":\"app\"}"].get("f:image").is_none());
    assert_ne!(fields_of(&no_image, "alice"), &alice);
}
