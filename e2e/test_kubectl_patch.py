"""`kubectl patch` in its three forms. A strategic merge patch (the default) merges lists by
their merge key (containers and env by name, ports by containerPort, finalizers as a set),
replaces lists that have none (tolerations), and understands $patch, $retainKeys and
$deleteFromPrimitiveList; a merge patch replaces lists wholesale; a JSON patch edits them
by index."""

import json

import pytest

NS = "patching"

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "PLACEHOLDER", "namespace": NS},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [{
                    "name": "nginx",
                    "image": "nginx:1.27",
                    "ports": [{"containerPort": 80}],
                    "env": [{"name": "MODE", "value": "prod"}, {"name": "COLOR", "value": "blue"}],
                }],
                "tolerations": [
                    {"key": "dedicated", "operator": "Exists"},
                    {"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
                ],
            },
        },
    },
}


@pytest.fixture(scope="module", autouse=True)
def namespace(skiff):
    skiff.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))


def make_deployment(kubectl, name):
    doc = json.loads(json.dumps(DEPLOYMENT))
    doc["metadata"]["name"] = name
    kubectl("create", "-f", "-", input=json.dumps(doc))


def get(kubectl, what):
    return json.loads(kubectl("get", what, "-n", NS, "-o", "json"))


def pod_spec(kubectl, name):
    return get(kubectl, f"deployment/{name}")["spec"]["template"]["spec"]


def by_name(items):
    return {item["name"]: item for item in items}


def patch(kubectl, name, body, *flags, check=True):
    return kubectl("patch", f"deployment/{name}", "-n", NS, *flags, "-p", json.dumps(body), check=check)


def containers_patch(*containers):
    return {"spec": {"template": {"spec": {"containers": list(containers)}}}}


def test_strategic_patch_adds_a_container_and_changes_one_in_place(kubectl):
    make_deployment(kubectl, "two-containers")
    before = by_name(pod_spec(kubectl, "two-containers")["containers"])["nginx"]
    out = patch(kubectl, "two-containers", containers_patch({"name": "sidecar", "image": "busybox:1.36", "command": ["sleep", "1d"]}))
    assert out.strip() == "deployment.apps/two-containers patched"
    cs = pod_spec(kubectl, "two-containers")["containers"]
    # As in Kubernetes, an item the patch brings in comes before the ones only the server had.
    assert [c["name"] for c in cs] == ["sidecar", "nginx"]
    assert by_name(cs)["nginx"] == before
    assert by_name(cs)["sidecar"]["command"] == ["sleep", "1d"]
    assert by_name(cs)["sidecar"]["imagePullPolicy"] == "IfNotPresent"

    patch(kubectl, "two-containers", containers_patch({"name": "nginx", "image": "nginx:1.28"}), "--type", "strategic")
    cs = by_name(pod_spec(kubectl, "two-containers")["containers"])
    assert set(cs) == {"sidecar", "nginx"}
    assert cs["nginx"] == dict(before, image="nginx:1.28")
    assert cs["sidecar"]["image"] == "busybox:1.36" and cs["sidecar"]["command"] == ["sleep", "1d"]


def test_strategic_patch_of_env_merges_by_name(kubectl):
    make_deployment(kubectl, "env")
    patch(kubectl, "env", containers_patch({"name": "nginx", "env": [{"name": "LEVEL", "value": "3"}]}))
    env = pod_spec(kubectl, "env")["containers"][0]["env"]
    assert by_name(env) == {
        "MODE": {"name": "MODE", "value": "prod"},
        "COLOR": {"name": "COLOR", "value": "blue"},
        "LEVEL": {"name": "LEVEL", "value": "3"},
    }
    # Changing one var by name leaves the others alone.
    patch(kubectl, "env", containers_patch({"name": "nginx", "env": [{"name": "COLOR", "value": "red"}]}))
    env = by_name(pod_spec(kubectl, "env")["containers"][0]["env"])
    assert env["COLOR"]["value"] == "red" and env["MODE"]["value"] == "prod" and env["LEVEL"]["value"] == "3"
    # $patch: delete removes exactly the named item.
    patch(kubectl, "env", containers_patch({"name": "nginx", "env": [{"name": "MODE", "$patch": "delete"}]}))
    c = pod_spec(kubectl, "env")["containers"][0]
    assert sorted(e["name"] for e in c["env"]) == ["COLOR", "LEVEL"]
    assert c["image"] == "nginx:1.27" and c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]


def test_strategic_patch_of_ports_merges_by_container_port(kubectl):
    make_deployment(kubectl, "ports")
    patch(kubectl, "ports", containers_patch(
        {"name": "nginx", "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443, "name": "https"}]}))
    ports = pod_spec(kubectl, "ports")["containers"][0]["ports"]
    assert sorted(ports, key=lambda p: p["containerPort"]) == [
        {"containerPort": 80, "name": "http", "protocol": "TCP"},
        {"containerPort": 443, "name": "https", "protocol": "TCP"},
    ]
    patch(kubectl, "ports", containers_patch({"name": "nginx", "ports": [{"containerPort": 80, "$patch": "delete"}]}))
    assert pod_spec(kubectl, "ports")["containers"][0]["ports"] == [{"containerPort": 443, "name": "https", "protocol": "TCP"}]


def test_strategic_patch_replaces_a_list_without_merge_key(kubectl):
    make_deployment(kubectl, "tolerations")
    patch(kubectl, "tolerations", {"spec": {"template": {"spec": {"tolerations": [{"key": "spot", "operator": "Exists"}]}}}})
    spec = pod_spec(kubectl, "tolerations")
    assert spec["tolerations"] == [{"key": "spot", "operator": "Exists"}]
    assert [c["name"] for c in spec["containers"]] == ["nginx"]


def test_merge_patch_replaces_the_containers_list(kubectl):
    make_deployment(kubectl, "merge")
    patch(kubectl, "merge", containers_patch({"name": "redis", "image": "redis:7"}), "--type", "merge")
    [c] = pod_spec(kubectl, "merge")["containers"]
    assert c["name"] == "redis" and c["image"] == "redis:7"
    # Nothing of the old container survives; the new one gets the usual defaults.
    assert "env" not in c and "ports" not in c
    assert c["terminationMessagePath"] == "/dev/termination-log"


def test_json_patch_edits_lists_by_index(kubectl):
    make_deployment(kubectl, "jsonpatch")
    base = "/spec/template/spec/containers"
    ops = [
        {"op": "add", "path": f"{base}/-", "value": {"name": "sidecar", "image": "busybox:1.36"}},
        {"op": "add", "path": f"{base}/0/env/-", "value": {"name": "LEVEL", "value": "3"}},
        {"op": "remove", "path": f"{base}/0/env/0"},
        {"op": "replace", "path": f"{base}/0/ports/0/containerPort", "value": 8080},
        {"op": "add", "path": f"{base}/0/ports/-", "value": {"containerPort": 9090, "name": "metrics"}},
    ]
    patch(kubectl, "jsonpatch", ops, "--type", "json")
    app, sidecar = pod_spec(kubectl, "jsonpatch")["containers"]
    assert sidecar["name"] == "sidecar" and sidecar["image"] == "busybox:1.36"
    assert app["env"] == [{"name": "COLOR", "value": "blue"}, {"name": "LEVEL", "value": "3"}]
    assert app["ports"] == [{"containerPort": 8080, "protocol": "TCP"}, {"containerPort": 9090, "name": "metrics", "protocol": "TCP"}]
    # An op on a path that is not there fails and leaves the object as it was.
    rv = get(kubectl, "deployment/jsonpatch")["metadata"]["resourceVersion"]
    res = patch(kubectl, "jsonpatch", [{"op": "replace", "path": f"{base}/5/image", "value": "x"}], "--type", "json", check=False)
    assert res.returncode != 0
    assert get(kubectl, "deployment/jsonpatch")["metadata"]["resourceVersion"] == rv


def test_retain_keys_switches_the_strategy(kubectl):
    make_deployment(kubectl, "strategy")
    before = get(kubectl, "deployment/strategy")["spec"]["strategy"]
    assert before == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    patch(kubectl, "strategy", {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}})
    assert get(kubectl, "deployment/strategy")["spec"]["strategy"] == {"type": "Recreate"}
    # Back to RollingUpdate: its parameters are defaulted again.
    patch(kubectl, "strategy", {"spec": {"strategy": {"$retainKeys": ["type"], "type": "RollingUpdate"}}})
    assert get(kubectl, "deployment/strategy")["spec"]["strategy"] == before


def test_recreate_with_rolling_update_parameters_is_invalid(kubectl):
    """Why $retainKeys exists: without it the merge keeps rollingUpdate, which Kubernetes'
    validation forbids next to type Recreate."""
    make_deployment(kubectl, "no-retain")
    res = patch(kubectl, "no-retain", {"spec": {"strategy": {"type": "Recreate"}}}, check=False)
    assert res.returncode != 0
    assert "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'" in res.stderr, res.stderr
    assert get(kubectl, "deployment/no-retain")["spec"]["strategy"]["type"] == "RollingUpdate"


def test_finalizers_merge_as_a_set(kubectl):
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "held", "namespace": NS, "finalizers": ["example.com/a", "example.com/b"]}}
    kubectl("create", "-f", "-", input=json.dumps(cm))

    def finalizers():
        return get(kubectl, "configmap/held")["metadata"].get("finalizers")

    def patch_cm(body):
        kubectl("patch", "configmap/held", "-n", NS, "-p", json.dumps(body))

    try:
        patch_cm({"metadata": {"finalizers": ["example.com/c", "example.com/a"]}})
        assert sorted(finalizers()) == ["example.com/a", "example.com/b", "example.com/c"]
        patch_cm({"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/b"]}})
        assert sorted(finalizers()) == ["example.com/a", "example.com/c"]
        patch_cm({"metadata": {"$setElementOrder/finalizers": ["example.com/a", "example.com/c"]}})
        assert finalizers() == ["example.com/a", "example.com/c"]
    finally:
        patch_cm({"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a", "example.com/b", "example.com/c"]}})
    meta = get(kubectl, "configmap/held")["metadata"]
    kubectl("delete", "configmap/held", "-n", NS)
    res = kubectl("get", "configmap/held", "-n", NS, check=False)
    assert res.returncode != 0 and "not found" in res.stderr
    # With none left the field is gone, as Kubernetes omits an empty finalizers list.
    assert "finalizers" not in meta, meta


def test_an_item_without_its_merge_key_is_a_bad_request(skiff, kubectl):
    make_deployment(kubectl, "malformed")
    rv = get(kubectl, "deployment/malformed")["metadata"]["resourceVersion"]
    status, doc = skiff.request_json(
        "PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/malformed",
        json.dumps(containers_patch({"image": "nginx:1.28"})),
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert status == 400, doc
    assert doc["kind"] == "Status" and doc["code"] == 400 and doc["reason"] == "BadRequest", doc
    assert "does not contain declared merge key: name" in doc["message"], doc
    res = patch(kubectl, "malformed", containers_patch({"image": "nginx:1.28"}), check=False)
    assert res.returncode != 0 and "does not contain declared merge key: name" in res.stderr, res.stderr
    assert get(kubectl, "deployment/malformed")["metadata"]["resourceVersion"] == rv
