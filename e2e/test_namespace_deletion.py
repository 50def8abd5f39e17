"""The namespace controller: deleting a namespace deletes everything in it, its status
conditions say what is left while objects wait on finalizers, and the namespace goes once it
is empty."""

import json

from conftest import wait_for


def namespace(kubectl, name):
    res = kubectl("get", "namespace", name, "-o", "json", check=False)
    return json.loads(res.stdout) if res.returncode == 0 else None


def condition(ns, type_):
    return next((c for c in ns["status"].get("conditions", []) if c["type"] == type_), None)


def test_a_namespace_holding_500_objects_is_emptied_and_removed(kubectl):
    kubectl("create", "namespace", "crowded")
    items = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}", "namespace": "crowded"}, "data": {"i": str(i)}}
             for i in range(400)]
    items += [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"s-{i}", "namespace": "crowded"}} for i in range(50)]
    items += [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"svc-{i}", "namespace": "crowded"},
               "spec": {"ports": [{"port": 80}]}} for i in range(50)]
    kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}), timeout=120)
    assert len(json.loads(kubectl("get", "configmaps,secrets,services", "-n", "crowded", "-o", "json"))["items"]) >= 500
    kubectl("delete", "namespace", "crowded", "--timeout=60s")
    assert namespace(kubectl, "crowded") is None


def test_objects_with_finalizers_hold_the_namespace_and_its_conditions_say_so(kubectl):
    kubectl("create", "namespace", "held")
    kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "keeper", "namespace": "held", "finalizers": ["example.com/hold"]}}))
    kubectl("delete", "namespace", "held", "--wait=false")
    wait_for("the finalizer condition", lambda: (condition(namespace(kubectl, "held"), "NamespaceFinalizersRemaining") or {}).get("status") == "True")
    ns = namespace(kubectl, "held")
    assert ns["status"]["phase"] == "Terminating"
    assert condition(ns, "NamespaceFinalizersRemaining")["message"] == \
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
    assert condition(ns, "NamespaceContentRemaining")["message"] == "Some resources are remaining: configmaps has 1 resource instances"
    assert condition(ns, "NamespaceDeletionContentFailure")["status"] == "False"
    kubectl("patch", "configmap", "keeper", "-n", "held", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    wait_for("the namespace to go", lambda: namespace(kubectl, "held") is None)
