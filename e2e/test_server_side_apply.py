"""Server-side apply with `kubectl apply --server-side` and raw PATCHes of
application/apply-patch+yaml: every applier's fields are recorded in managedFields, a
second applier that sets someone else's field to another value gets a 409 conflict until
it forces, fields an applier drops leave the object unless someone else still owns them,
`kubectl scale` and `kubectl label` show up as Update managers, and applying the same
manifest again changes nothing."""

import copy
import json

import pytest
import yaml

from conftest import status_of

NS = "ssa"
DEPLOY_PATH = f"/apis/apps/v1/namespaces/{NS}/deployments/web"
CM_PATH = f"/api/v1/namespaces/{NS}/configmaps"

# What the "kubectl" manager applies; later versions are edits of it.
BASE = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": NS, "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [{
                    "name": "app",
                    "image": "nginx:1.27",
                    "env": [{"name": "MODE", "value": "prod"}, {"name": "LEVEL", "value": "3"}],
                }],
            },
        },
    },
}
APP = 'k:{"name":"app"}'
SIDECAR = 'k:{"name":"sidecar"}'


def base_without_replicas(env=None):
    doc = copy.deepcopy(BASE)
    del doc["spec"]["replicas"]
    if env is not None:
        doc["spec"]["template"]["spec"]["containers"][0]["env"] = env
    return doc


def replicas_only(n):
    """A manifest that states nothing but the replica count (what an autoscaler would apply)."""
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": NS}, "spec": {"replicas": n}}


@pytest.fixture(scope="module", autouse=True)
def namespace(skiff):
    skiff.kubectl("create", "namespace", NS)


def live(kubectl, what="deployment/web"):
    return json.loads(kubectl("get", what, "-n", NS, "-o", "json", "--show-managed-fields"))


def entries(obj):
    """managedFields by (manager, operation)."""
    return {(m["manager"], m["operation"]): m for m in obj["metadata"].get("managedFields", [])}


def fields(obj, manager, operation="Apply"):
    found = entries(obj)
    assert (manager, operation) in found, f"no {operation} entry for {manager}: {list(found)}"
    return found[(manager, operation)]["fieldsV1"]


def container_fields(fs):
    return fs["f:spec"]["f:template"]["f:spec"]["f:containers"]


def containers(dep):
    return {c["name"]: c for c in dep["spec"]["template"]["spec"]["containers"]}


def apply_raw(skiff, path, doc, **query):
    """One PATCH with application/apply-patch+yaml; query goes into the URL as given."""
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return skiff.request_json(
        "PATCH", f"{path}?{qs}" if qs else path, yaml.safe_dump(doc),
        headers={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
    )


def test_first_apply_records_kubectl_as_the_applier(kubectl, manifest):
    out = kubectl("apply", "--server-side", "-f", manifest(BASE))
    assert out.strip() == "deployment.apps/web serverside-applied"
    dep = live(kubectl)
    assert dep["spec"]["replicas"] == 2
    [entry] = [m for m in dep["metadata"]["managedFields"] if m["manager"] == "kubectl"]
    assert entry["operation"] == "Apply"
    assert entry["apiVersion"] == "apps/v1" and entry["fieldsType"] == "FieldsV1"
    fs = entry["fieldsV1"]
    assert fs["f:spec"]["f:replicas"] == {}
    assert fs["f:metadata"]["f:labels"]["f:app"] == {}
    app = container_fields(fs)[APP]
    assert "f:image" in app and "f:name" in app
    # env is a list keyed by name too.
    assert set(app["f:env"]) == {'k:{"name":"MODE"}', 'k:{"name":"LEVEL"}'}
    # kubectl hides managedFields unless asked.
    plain = json.loads(kubectl("get", "deployment/web", "-n", NS, "-o", "json"))
    assert "managedFields" not in plain["metadata"]


def test_a_second_applier_conflicts_on_replicas(kubectl, manifest):
    before = live(kubectl)
    res = kubectl("apply", "--server-side", "--field-manager=scaler", "-f", manifest(replicas_only(5), "scale.yaml"), check=False)
    assert res.returncode != 0
    assert "conflict" in res.stderr, res.stderr
    assert 'conflict with "kubectl": .spec.replicas' in res.stderr, res.stderr
    assert "--force-conflicts" in res.stderr, res.stderr
    after = live(kubectl)
    assert after["spec"]["replicas"] == 2
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert ("scaler", "Apply") not in entries(after)


def test_forcing_takes_the_field_over(kubectl, manifest):
    out = kubectl("apply", "--server-side", "--field-manager=scaler", "--force-conflicts", "-f", manifest(replicas_only(5), "scale.yaml"))
    assert out.strip() == "deployment.apps/web serverside-applied"
    dep = live(kubectl)
    assert dep["spec"]["replicas"] == 5
    assert fields(dep, "scaler") == {"f:spec": {"f:replicas": {}}}
    mine = fields(dep, "kubectl")
    assert "f:replicas" not in mine["f:spec"]
    # kubectl keeps everything else it applied.
    assert "f:image" in container_fields(mine)[APP]


def test_first_applier_drops_replicas_without_conflict(kubectl, manifest):
    res = kubectl("apply", "--server-side", "-f", manifest(base_without_replicas()), check=False)
    assert res.returncode == 0, res.stderr
    dep = live(kubectl)
    # Still owned by scaler, so it stays.
    assert dep["spec"]["replicas"] == 5
    assert fields(dep, "scaler") == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in fields(dep, "kubectl")["f:spec"]


def test_an_env_var_dropped_from_the_manifest_leaves_the_object(kubectl, manifest):
    kubectl("apply", "--server-side", "-f", manifest(base_without_replicas(env=[{"name": "MODE", "value": "prod"}])))
    dep = live(kubectl)
    assert containers(dep)["app"]["env"] == [{"name": "MODE", "value": "prod"}]
    assert set(container_fields(fields(dep, "kubectl"))[APP]["f:env"]) == {'k:{"name":"MODE"}'}
    assert dep["spec"]["replicas"] == 5


def test_two_appliers_own_one_container_each(kubectl, manifest):
    sidecar = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": NS},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox:1.36", "command": ["sleep", "infinity"]}]}}},
    }
    res = kubectl("apply", "--server-side", "--field-manager=injector", "-f", manifest(sidecar, "sidecar.yaml"), check=False)
    assert res.returncode == 0, res.stderr
    dep = live(kubectl)
    cs = containers(dep)
    assert set(cs) == {"app", "sidecar"}
    assert cs["app"]["image"] == "nginx:1.27"
    assert cs["sidecar"]["image"] == "busybox:1.36" and cs["sidecar"]["command"] == ["sleep", "infinity"]
    assert set(container_fields(fields(dep, "injector"))) == {SIDECAR}
    assert set(container_fields(fields(dep, "kubectl"))) == {APP}
    # kubectl's manifest never named the sidecar: applying it again leaves the sidecar alone.
    kubectl("apply", "--server-side", "-f", manifest(base_without_replicas(env=[{"name": "MODE", "value": "prod"}])))
    assert set(containers(live(kubectl))) == {"app", "sidecar"}


def test_server_dry_run_changes_nothing(kubectl, manifest):
    before = live(kubectl)
    out = kubectl("apply", "--server-side", "--dry-run=server", "--field-manager=scaler", "-o", "json",
                  "-f", manifest(replicas_only(9), "scale.yaml"))
    assert json.loads(out)["spec"]["replicas"] == 9
    after = live(kubectl)
    assert after["spec"]["replicas"] == 5
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["metadata"]["managedFields"] == before["metadata"]["managedFields"]


def test_apply_creates_a_missing_configmap_and_a_repeat_changes_nothing(skiff, kubectl, manifest):
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "made-by-apply", "namespace": NS}, "data": {"a": "1"}}
    code, created = apply_raw(skiff, f"{CM_PATH}/made-by-apply", doc, fieldManager="raw")
    assert code == 201, created
    assert created["data"] == {"a": "1"} and created["metadata"]["uid"]
    [entry] = created["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"]) == ("raw", "Apply")
    assert entry["fieldsV1"] == {"f:data": {"f:a": {}}}
    code, again = apply_raw(skiff, f"{CM_PATH}/made-by-apply", doc, fieldManager="raw")
    assert code == 200, again
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

    # The same through kubectl: created, then applied again without a change.
    path = manifest({**doc, "metadata": {"name": "settings", "namespace": NS}}, "cm.yaml")
    assert kubectl("apply", "--server-side", "-f", path).strip() == "configmap/settings serverside-applied"
    rv = live(kubectl, "configmap/settings")["metadata"]["resourceVersion"]
    kubectl("apply", "--server-side", "-f", path)
    cm = live(kubectl, "configmap/settings")
    assert cm["metadata"]["resourceVersion"] == rv
    assert cm["data"] == {"a": "1"}


def test_apply_without_a_field_manager_is_refused_as_invalid_patch_options(skiff):
    # As Kubernetes' ValidatePatchOptions: 422 Invalid for the PatchOptions, not a 400.
    code, doc = apply_raw(skiff, DEPLOY_PATH, replicas_only(3))
    assert code == 422, doc
    status_of(doc, 422, "Invalid")
    assert doc["message"] == 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch', doc
    assert doc["details"]["kind"] == "PatchOptions" and doc["details"]["group"] == "meta.k8s.io", doc
    [cause] = doc["details"]["causes"]
    assert (cause["reason"], cause["field"]) == ("FieldValueRequired", "fieldManager"), doc


def test_force_on_a_merge_patch_is_refused_as_invalid_patch_options(skiff):
    code, doc = skiff.request_json(
        "PATCH", f"{DEPLOY_PATH}?force=true", '{"spec":{"replicas":3}}',
        headers={"Content-Type": "application/merge-patch+json", "Accept": "application/json"},
    )
    assert code == 422, doc
    status_of(doc, 422, "Invalid")
    assert doc["message"] == 'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch', doc
    code, dep = skiff.request_json("GET", DEPLOY_PATH)
    assert dep["spec"]["replicas"] == 5


def test_an_applied_config_carrying_managed_fields_is_400(skiff):
    # What a user gets by applying an object they fetched: Kubernetes refuses it outright.
    code, current = skiff.request_json("GET", f"{CM_PATH}/made-by-apply")
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"b": "2"},
           "metadata": {"name": "made-by-apply", "managedFields": current["metadata"]["managedFields"]}}
    code, status = apply_raw(skiff, f"{CM_PATH}/made-by-apply", doc, fieldManager="raw")
    assert code == 400, status
    status_of(status, 400, "BadRequest")
    assert status["message"] == "metadata.managedFields must be nil", status
    code, after = skiff.request_json("GET", f"{CM_PATH}/made-by-apply")
    assert after["data"] == {"a": "1"}
    assert after["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]


def test_a_conflict_is_a_409_status_with_causes(skiff):
    code, doc = apply_raw(skiff, DEPLOY_PATH, replicas_only(3), fieldManager="raw")
    assert code == 409, doc
    status_of(doc, 409, "Conflict")
    assert doc["message"].startswith('Apply failed with 1 conflict: conflict with "scaler": .spec.replicas'), doc
    [cause] = doc["details"]["causes"]
    assert cause["reason"] == "FieldManagerConflict"
    assert cause["field"] == ".spec.replicas"
    assert cause["message"] == 'conflict with "scaler"'
    code, dep = skiff.request_json("GET", DEPLOY_PATH)
    assert dep["spec"]["replicas"] == 5


def test_kubectl_scale_becomes_the_owner_and_conflicts_with_appliers(kubectl, manifest):
    kubectl("scale", "deployment/web", "-n", NS, "--replicas=4")
    dep = live(kubectl)
    assert dep["spec"]["replicas"] == 4
    # kubectl scale sends no fieldManager: the manager is the User-Agent's "kubectl", an
    # Update through the scale subresource, and it took replicas from scaler (now empty).
    [entry] = [m for m in dep["metadata"]["managedFields"] if m.get("subresource") == "scale"]
    assert (entry["manager"], entry["operation"]) == ("kubectl", "Update")
    assert entry["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert ("scaler", "Apply") not in entries(dep)

    res = kubectl("apply", "--server-side", "--field-manager=scaler", "-f", manifest(replicas_only(6), "scale.yaml"), check=False)
    assert res.returncode != 0
    assert 'conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas' in res.stderr, res.stderr
    assert live(kubectl)["spec"]["replicas"] == 4


def test_kubectl_label_is_an_update_manager(kubectl, manifest):
    kubectl("label", "deployment/web", "-n", NS, "team=blue")
    dep = live(kubectl)
    assert dep["metadata"]["labels"] == {"app": "web", "team": "blue"}
    label = fields(dep, "kubectl-label", "Update")
    assert "f:team" in label["f:metadata"]["f:labels"]
    assert "f:app" not in label["f:metadata"]["f:labels"]
    assert "f:team" not in fields(dep, "kubectl").get("f:metadata", {}).get("f:labels", {})
    # The applier never named the label, so a repeat apply keeps it.
    kubectl("apply", "--server-side", "-f", manifest(base_without_replicas(env=[{"name": "MODE", "value": "prod"}])))
    assert live(kubectl)["metadata"]["labels"] == {"app": "web", "team": "blue"}
