"""The PersistentVolume binder: claims bound to the smallest volume that satisfies them,
pre-bound volumes, claims waiting for a volume, one volume never bound twice, and what
happens to a volume whose claim is deleted (Retain: Released; Delete: deleted). A pod
using a bound claim is scheduled onto a simulated node."""

import json

import pytest

from conftest import wait_for
from scheduling import running_fleet


@pytest.fixture(scope="module", autouse=True)
def fleet(skiff, kubectl):
    yield from running_fleet(skiff, kubectl, 1, "pv")


def volume(name, size, policy="Retain", cls=None, claim=None, modes=("ReadWriteOnce",)):
    spec = {"capacity": {"storage": size}, "accessModes": list(modes), "hostPath": {"path": f"/tmp/{name}"},
            "persistentVolumeReclaimPolicy": policy}
    if cls is not None:
        spec["storageClassName"] = cls
    if claim:
        spec["claimRef"] = {"namespace": "default", "name": claim}
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name}, "spec": spec}


def claim(name, size, cls=None, modes=("ReadWriteOnce",)):
    spec = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if cls is not None:
        spec["storageClassName"] = cls
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def create(kubectl, *objs):
    kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def get(kubectl, kind, name):
    out = kubectl("get", kind, name, "-o", "json", "--ignore-not-found")
    return json.loads(out) if out.strip() else None


def bound_volume(kubectl, name, timeout=30):
    def check():
        c = get(kubectl, "pvc", name)
        return c["spec"].get("volumeName") if c["status"].get("phase") == "Bound" else None
    return wait_for(f"claim {name} bound", check, timeout=timeout)


def phase(kubectl, kind, name):
    obj = get(kubectl, kind, name)
    return obj and obj.get("status", {}).get("phase")


def test_a_claim_gets_the_smallest_volume_that_satisfies_it(kubectl):
    create(kubectl, volume("small-1", "1Gi", cls="std"), volume("small-5", "5Gi", cls="std"),
           volume("small-50", "50Gi", cls="std"), volume("small-rox", "2Gi", cls="std", modes=("ReadOnlyMany",)))
    create(kubectl, claim("two", "2Gi", cls="std"))
    assert bound_volume(kubectl, "two") == "small-5"
    pvc = get(kubectl, "pvc", "two")
    assert pvc["status"]["capacity"]["storage"] == "5Gi"
    assert pvc["status"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"
    pv = get(kubectl, "pv", "small-5")
    assert pv["spec"]["claimRef"]["name"] == "two" and pv["spec"]["claimRef"]["uid"] == pvc["metadata"]["uid"]
    wait_for("volume Bound", lambda: phase(kubectl, "pv", "small-5") == "Bound")
    wait_for("unclaimed volumes Available", lambda: phase(kubectl, "pv", "small-1") == "Available")
    columns = kubectl("get", "pvc", "two", "--no-headers").split()
    assert columns[1:4] == ["Bound", "small-5", "5Gi"]


def test_a_claim_waits_for_a_volume_and_one_volume_is_never_bound_twice(kubectl):
    create(kubectl, claim("wait-a", "3Gi", cls="late"), claim("wait-b", "3Gi", cls="late"))
    wait_for("FailedBinding event", lambda: "FailedBinding" in kubectl(
        "get", "events", "--field-selector", "involvedObject.name=wait-a", "-o", "jsonpath={.items[*].reason}"))
    assert phase(kubectl, "pvc", "wait-a") == "Pending"
    create(kubectl, volume("late-1", "4Gi", cls="late"))
    bound = wait_for("one claim bound", lambda: [n for n in ("wait-a", "wait-b") if phase(kubectl, "pvc", n) == "Bound"])
    assert len(bound) == 1
    waiting = "wait-b" if bound == ["wait-a"] else "wait-a"
    assert phase(kubectl, "pvc", waiting) == "Pending"
    create(kubectl, volume("late-2", "4Gi", cls="late"))
    assert bound_volume(kubectl, waiting) == "late-2"


def test_a_pre_bound_volume_goes_to_its_claim_only(kubectl):
    create(kubectl, volume("reserved", "1Gi", cls="pre", claim="mine"))
    wait_for("pre-bound volume Available", lambda: phase(kubectl, "pv", "reserved") == "Available")
    create(kubectl, claim("other", "1Gi", cls="pre"))
    create(kubectl, claim("mine", "1Gi", cls="pre"))
    assert bound_volume(kubectl, "mine") == "reserved"
    assert phase(kubectl, "pvc", "other") == "Pending"


def test_deleting_a_claim_releases_or_deletes_its_volume(kubectl):
    create(kubectl, volume("keep", "1Gi", cls="reclaim"), claim("keep-claim", "1Gi", cls="reclaim"))
    bound_volume(kubectl, "keep-claim")
    kubectl("delete", "pvc", "keep-claim")
    wait_for("Retain volume Released", lambda: phase(kubectl, "pv", "keep") == "Released")
    create(kubectl, volume("drop", "1Gi", policy="Delete", cls="reclaim-del"), claim("drop-claim", "1Gi", cls="reclaim-del"))
    bound_volume(kubectl, "drop-claim")
    kubectl("delete", "pvc", "drop-claim")
    wait_for("Delete volume deleted", lambda: get(kubectl, "pv", "drop") is None)


def test_a_pod_with_a_bound_claim_runs(kubectl):
    create(kubectl, volume("pod-vol", "1Gi", cls="pods"), claim("pod-claim", "1Gi", cls="pods"))
    bound_volume(kubectl, "pod-claim")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "with-claim", "namespace": "default"},
           "spec": {"containers": [{"name": "app", "image": "nginx", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "pod-claim"}}]}}
    create(kubectl, pod)
    wait_for("pod Running", lambda: phase(kubectl, "pod", "with-claim") == "Running")
