"""Deleting with kubectl: by name, by label, --all, and `kubectl wait --for=delete` on an
object held by a finalizer until something removes it."""

import json
import subprocess
import threading
import time

import pytest

# The API server's behaviour alone: without controllers, a namespace holds only what these
# tests put in it (no kube-root-ca.crt ConfigMap or default ServiceAccount).
SKIFF_ARGS = ["--disable-controller-manager"]

NS = "deleting"


@pytest.fixture(scope="module", autouse=True)
def namespace(skiff):
    skiff.kubectl("create", "-f", "-",
                  input=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))


def make_configmaps(kubectl, names, labels=None, finalizers=None):
    items = [{
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": n, "namespace": NS, "labels": labels or {}, **({"finalizers": finalizers} if finalizers else {})},
        "data": {"name": n},
    } for n in names]
    kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))


def names(kubectl, *selector):
    return sorted(kubectl("get", "configmaps", "-n", NS, *selector, "-o", "jsonpath={.items[*].metadata.name}").split())


def test_delete_by_name(kubectl):
    make_configmaps(kubectl, ["one", "two"])
    out = kubectl("delete", "configmap", "one", "-n", NS)
    assert out.strip() == f'configmap "one" deleted from {NS} namespace'
    assert names(kubectl) == ["two"]
    res = kubectl("get", "configmap", "one", "-n", NS, check=False)
    assert res.returncode != 0 and 'configmaps "one" not found' in res.stderr
    # Deleting it again is NotFound, unless --ignore-not-found.
    res = kubectl("delete", "configmap", "one", "-n", NS, check=False)
    assert res.returncode != 0 and "NotFound" in res.stderr
    assert kubectl("delete", "configmap", "one", "-n", NS, "--ignore-not-found") == ""
    kubectl("delete", "configmap", "two", "-n", NS)


def test_delete_by_label(kubectl):
    make_configmaps(kubectl, ["red-1", "red-2"], labels={"color": "red"})
    make_configmaps(kubectl, ["blue-1"], labels={"color": "blue"})
    out = kubectl("delete", "configmaps", "-n", NS, "-l", "color=red")
    assert sorted(out.strip().splitlines()) == [
        f'configmap "red-1" deleted from {NS} namespace', f'configmap "red-2" deleted from {NS} namespace']
    assert names(kubectl) == ["blue-1"]


def test_delete_all(kubectl):
    make_configmaps(kubectl, ["a", "b", "c"])
    kubectl("delete", "configmaps", "--all", "-n", NS)
    assert names(kubectl) == []
    # Only that namespace's objects went.
    assert "kubernetes" in kubectl("get", "services", "-n", "default", "-o", "name")


def test_delete_a_deployment(kubectl):
    kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "gone", "namespace": NS},
        "spec": {"selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}))
    out = kubectl("delete", "deployment", "gone", "-n", NS)
    assert out.strip() == f'deployment.apps "gone" deleted from {NS} namespace'
    assert kubectl("get", "deployments", "-n", NS, "-o", "name") == ""


def test_wait_for_delete_returns_when_the_finalizer_is_removed(skiff, kubectl):
    make_configmaps(kubectl, ["held"], finalizers=["example.com/hold"])
    kubectl("delete", "configmap", "held", "-n", NS, "--wait=false")
    # Still there, marked for deletion.
    obj = json.loads(kubectl("get", "configmap", "held", "-n", NS, "-o", "json"))
    assert obj["metadata"]["deletionTimestamp"]
    assert obj["metadata"]["finalizers"] == ["example.com/hold"]

    waiter = skiff.kubectl_popen("wait", "--for=delete", "configmap/held", "-n", NS, "--timeout=30s")
    try:
        # kubectl wait must keep waiting while the finalizer holds the object.
        with pytest.raises(subprocess.TimeoutExpired):
            waiter.wait(timeout=1.5)

        def release():
            time.sleep(0.5)
            kubectl("patch", "configmap", "held", "-n", NS, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')

        t = threading.Thread(target=release)
        started = time.monotonic()
        t.start()
        out, err = waiter.communicate(timeout=20)
        t.join(timeout=10)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait(timeout=5)
    assert waiter.returncode == 0, err
    assert out.strip() == "configmap/held condition met"
    assert time.monotonic() - started < 10
    res = kubectl("get", "configmap", "held", "-n", NS, check=False)
    assert res.returncode != 0 and "not found" in res.stderr
