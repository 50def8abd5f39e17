"""The garbage collector, driven with kubectl: cascading deletion in the three modes
(background, foreground, orphan), dangling dependents removed, and owners of the other
scope: a cluster-scoped owner of a namespaced object, and a namespaced owner that is not
in its dependent's namespace (treated as absent)."""

import json
import uuid

import pytest

from conftest import wait_for
from scheduling import running_fleet


@pytest.fixture(scope="module", autouse=True)
def fleet(skiff, kubectl):
    yield from running_fleet(skiff, kubectl, 2, "gc")


def apply(kubectl, *objects):
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def deployment(name, replicas=3):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}}


def names(kubectl, kind, app):
    return json.loads(kubectl("get", kind, "-l", f"app={app}", "-o", "json"))["items"]


def exists(kubectl, kind, name, namespace="default"):
    return bool(kubectl("get", kind, name, "-n", namespace, "--ignore-not-found", "-o", "name").strip())


def rolled_out(kubectl, name):
    kubectl("rollout", "status", f"deployment/{name}", "--timeout=60s")


def owner_ref(obj, kind, api_version="v1"):
    return {"apiVersion": api_version, "kind": kind, "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"]}


def configmap(name, owners, namespace="default"):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "ownerReferences": owners}}


def get(kubectl, kind, name, namespace="default"):
    return json.loads(kubectl("get", kind, name, "-n", namespace, "-o", "json"))


def test_background_deletion_removes_replicasets_and_pods(kubectl):
    apply(kubectl, deployment("bg"))
    rolled_out(kubectl, "bg")
    assert len(names(kubectl, "rs", "bg")) == 1 and len(names(kubectl, "pods", "bg")) == 3
    kubectl("delete", "deployment", "bg")
    wait_for("the ReplicaSet and pods to go", lambda: not names(kubectl, "rs", "bg") and not names(kubectl, "pods", "bg"))


def test_foreground_deletion_waits_for_the_dependents(kubectl):
    apply(kubectl, deployment("fg"))
    rolled_out(kubectl, "fg")
    out = kubectl("delete", "deployment", "fg", "--cascade=foreground")
    assert 'deployment.apps "fg" deleted' in out
    # kubectl waits for the Deployment itself, which goes only after its dependents.
    assert not exists(kubectl, "deployment", "fg")
    assert not names(kubectl, "rs", "fg")
    wait_for("the pods to go", lambda: not names(kubectl, "pods", "fg"))


def test_orphan_deletion_keeps_the_dependents_without_their_owner(kubectl):
    apply(kubectl, deployment("or", replicas=2))
    rolled_out(kubectl, "or")
    [rs] = names(kubectl, "rs", "or")
    kubectl("delete", "deployment", "or", "--cascade=orphan")
    wait_for("the Deployment to go", lambda: not exists(kubectl, "deployment", "or"))
    rs = get(kubectl, "rs", rs["metadata"]["name"])
    assert not rs["metadata"].get("ownerReferences")
    assert "orphan" not in rs["metadata"].get("finalizers", [])
    # The orphaned ReplicaSet still keeps its pods.
    pods = names(kubectl, "pods", "or")
    assert len(pods) == 2 and all(p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet" for p in pods)
    kubectl("delete", "rs", rs["metadata"]["name"], "--cascade=orphan")
    wait_for("the pods to lose their owner",
             lambda: all(not p["metadata"].get("ownerReferences") for p in names(kubectl, "pods", "or")))
    assert len(names(kubectl, "pods", "or")) == 2


def test_dependents_of_missing_owners_are_removed(kubectl):
    apply(kubectl, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner", "namespace": "default"}})
    owner = get(kubectl, "configmap", "owner")
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": str(uuid.uuid4())}
    apply(kubectl, configmap("dangling", [ghost]), configmap("owned", [owner_ref(owner, "ConfigMap")]),
          configmap("half-owned", [ghost, owner_ref(owner, "ConfigMap")]))
    wait_for("the dangling dependent to go", lambda: not exists(kubectl, "configmap", "dangling"))
    # With one live owner left, only the reference to the missing one is dropped.
    wait_for("the missing owner's reference to go",
             lambda: [r["name"] for r in get(kubectl, "configmap", "half-owned")["metadata"]["ownerReferences"]] == ["owner"])
    assert exists(kubectl, "configmap", "owned")
    kubectl("delete", "configmap", "owner")
    wait_for("the owner's dependents to go",
             lambda: not exists(kubectl, "configmap", "owned") and not exists(kubectl, "configmap", "half-owned"))


def test_owners_of_the_other_scope(kubectl):
    kubectl("create", "namespace", "elsewhere")
    apply(kubectl, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "gc-owner"}},
          {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "far-owner", "namespace": "elsewhere"}})
    role = get(kubectl, "clusterrole", "gc-owner")
    far = get(kubectl, "configmap", "far-owner", "elsewhere")
    apply(kubectl, configmap("owned-by-cluster", [owner_ref(role, "ClusterRole", "rbac.authorization.k8s.io/v1")]),
          configmap("owned-across", [owner_ref(far, "ConfigMap")]))
    # A namespaced owner counts only in the dependent's own namespace.
    wait_for("the cross-namespace dependent to go", lambda: not exists(kubectl, "configmap", "owned-across"))
    assert exists(kubectl, "configmap", "far-owner", "elsewhere")
    assert exists(kubectl, "configmap", "owned-by-cluster")
    kubectl("delete", "clusterrole", "gc-owner")
    wait_for("the cluster-scoped owner's dependent to go", lambda: not exists(kubectl, "configmap", "owned-by-cluster"))
