"""ReplicaSets and ReplicationControllers on simulated nodes, driven with kubectl as a user
drives them: pods created from the template with a controller owner reference, the status
counts, adoption of a matching orphan, release of a pod that stops matching, scaling down
by pod-deletion-cost, replacement of a deleted pod, a ReplicationController, and the
SuccessfulCreate events."""

import json
import re
import time

import pytest

from conftest import wait_for
from scheduling import running_fleet


@pytest.fixture(scope="module", autouse=True)
def fleet(skiff, kubectl):
    yield from running_fleet(skiff, kubectl, 3, "rs")


def template(app, **labels):
    return {"metadata": {"labels": {"app": app, **labels}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1"}]}}


def replicaset(name, replicas, **labels):
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": template(name, **labels)}}


def replication_controller(name, replicas):
    return {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"app": name}, "template": template(name)}}


def apply(kubectl, *objects):
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def get(kubectl, kind, name):
    return json.loads(kubectl("get", kind, name, "-o", "json"))


def pods(kubectl, selector):
    """The pods the label selector matches, not counting those being deleted."""
    items = json.loads(kubectl("get", "pods", "-l", selector, "-o", "json"))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def controller_of(pod):
    return next((r for r in pod["metadata"].get("ownerReferences", []) if r.get("controller")), None)


def wait_ready_replicas(kubectl, kind, name, n):
    wait_for(f"{kind}/{name} to have {n} ready replicas",
             lambda: get(kubectl, kind, name).get("status", {}).get("readyReplicas") == n)


def names(items):
    return sorted(p["metadata"]["name"] for p in items)


def test_a_replicaset_creates_its_pods_and_counts_them(kubectl):
    apply(kubectl, replicaset("web", 3, tier="front"))
    wait_for("the status to count 3 available replicas",
             lambda: get(kubectl, "rs", "web").get("status", {}).get("availableReplicas") == 3)
    rs = get(kubectl, "rs", "web")
    status = rs["status"]
    assert (status["replicas"], status["fullyLabeledReplicas"], status["readyReplicas"], status["availableReplicas"]) == (3, 3, 3, 3)
    assert status["observedGeneration"] == rs["metadata"]["generation"]
    web = pods(kubectl, "app=web")
    assert len(web) == 3
    for p in web:
        assert re.fullmatch(r"web-[a-z0-9]{5}", p["metadata"]["name"]), p["metadata"]["name"]
        assert p["metadata"]["labels"] == {"app": "web", "tier": "front"}
        assert p["metadata"]["ownerReferences"] == [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": rs["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True,
        }]
        assert p["spec"]["nodeName"].startswith("rs")
        assert ready(p)
    table = kubectl("get", "rs", "web").splitlines()
    assert table[0].split()[:4] == ["NAME", "DESIRED", "CURRENT", "READY"]
    assert table[1].split()[:4] == ["web", "3", "3", "3"]


def test_a_replicaset_adopts_a_matching_orphan(kubectl):
    orphan = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stray", "namespace": "default", "labels": {"app": "adopter"}},
              "spec": {"containers": [{"name": "app", "image": "nginx:1"}]}}
    apply(kubectl, orphan)
    assert controller_of(get(kubectl, "pod", "stray")) is None
    apply(kubectl, replicaset("adopter", 2))
    wait_ready_replicas(kubectl, "rs", "adopter", 2)
    uid = get(kubectl, "rs", "adopter")["metadata"]["uid"]
    ref = controller_of(get(kubectl, "pod", "stray"))
    assert ref is not None, "the orphan was adopted"
    assert (ref["kind"], ref["name"], ref["uid"], ref.get("blockOwnerDeletion")) == ("ReplicaSet", "adopter", uid, True)
    # Give the controller time to overshoot, had it created 2 pods besides the orphan.
    time.sleep(1)
    owned = pods(kubectl, "app=adopter")
    assert len(owned) == 2, names(owned)
    assert "stray" in names(owned)
    assert all(controller_of(p)["uid"] == uid for p in owned)


def test_a_pod_that_stops_matching_is_released_and_replaced(kubectl):
    apply(kubectl, replicaset("keeper", 2, role="worker"))
    wait_ready_replicas(kubectl, "rs", "keeper", 2)
    before = names(pods(kubectl, "app=keeper"))
    released = before[0]
    kubectl("label", "pod", released, "app-")
    wait_for(f"{released} to lose its controller reference", lambda: controller_of(get(kubectl, "pod", released)) is None)
    pod = get(kubectl, "pod", released)
    assert not pod["metadata"].get("deletionTimestamp"), "the released pod keeps running"
    assert pod["metadata"]["labels"] == {"role": "worker"}
    wait_for("a replacement pod", lambda: len(pods(kubectl, "app=keeper")) == 2 and released not in names(pods(kubectl, "app=keeper")))
    wait_ready_replicas(kubectl, "rs", "keeper", 2)
    now = pods(kubectl, "app=keeper")
    assert before[1] in names(now)
    uid = get(kubectl, "rs", "keeper")["metadata"]["uid"]
    assert all(controller_of(p)["uid"] == uid for p in now)
    # Still there a moment later: releasing is not deleting.
    time.sleep(1)
    assert released in names(pods(kubectl, "role=worker"))


def test_scaling_down_keeps_the_pod_with_the_highest_deletion_cost(kubectl):
    apply(kubectl, replicaset("costly", 4))
    wait_ready_replicas(kubectl, "rs", "costly", 4)
    all_pods = names(pods(kubectl, "app=costly"))
    precious = all_pods[1]
    kubectl("annotate", "pod", precious, "controller.kubernetes.io/pod-deletion-cost=1000")
    # Let the controller's pod cache see the annotation before it ranks the pods.
    time.sleep(1)
    kubectl("scale", "rs/costly", "--replicas=1")
    wait_for("the surplus pods to be gone",
             lambda: names(json.loads(kubectl("get", "pods", "-l", "app=costly", "-o", "json"))["items"]) == [precious])
    wait_for("the status to count 1 replica", lambda: get(kubectl, "rs", "costly")["status"].get("replicas") == 1)
    status = get(kubectl, "rs", "costly")["status"]
    assert (status["replicas"], status["readyReplicas"], status["availableReplicas"]) == (1, 1, 1)
    assert len(all_pods) == 4
    for gone in set(all_pods) - {precious}:
        result = kubectl("get", "pod", gone, check=False)
        assert result.returncode != 0 and "NotFound" in result.stderr, result.stderr


def test_a_deleted_pod_is_replaced(kubectl):
    apply(kubectl, replicaset("phoenix", 2))
    wait_ready_replicas(kubectl, "rs", "phoenix", 2)
    before = names(pods(kubectl, "app=phoenix"))
    kubectl("delete", "pod", before[0], "--wait=false")
    wait_for("a replacement pod",
             lambda: (lambda now: len(now) == 2 and before[0] not in now)(names(pods(kubectl, "app=phoenix"))))
    wait_ready_replicas(kubectl, "rs", "phoenix", 2)
    now = names(pods(kubectl, "app=phoenix"))
    assert before[1] in now
    [new] = set(now) - {before[1]}
    assert re.fullmatch(r"phoenix-[a-z0-9]{5}", new)


def test_a_replication_controller_runs_its_pods(kubectl):
    apply(kubectl, replication_controller("legacy", 2))
    wait_ready_replicas(kubectl, "rc", "legacy", 2)
    rc = get(kubectl, "rc", "legacy")
    assert rc["status"]["replicas"] == 2
    assert rc["status"]["observedGeneration"] == rc["metadata"]["generation"]
    owned = pods(kubectl, "app=legacy")
    assert len(owned) == 2
    for p in owned:
        assert p["metadata"]["name"].startswith("legacy-")
        ref = controller_of(p)
        assert (ref["apiVersion"], ref["kind"], ref["name"], ref["uid"]) == ("v1", "ReplicationController", "legacy", rc["metadata"]["uid"])
        assert ready(p)


def test_creating_pods_records_successful_create_events(kubectl):
    apply(kubectl, replicaset("noted", 2))
    wait_ready_replicas(kubectl, "rs", "noted", 2)
    expected = {f"Created pod: {n}" for n in names(pods(kubectl, "app=noted"))}

    def messages():
        out = kubectl("get", "events", "--field-selector", "involvedObject.name=noted,reason=SuccessfulCreate", "-o", "json")
        return json.loads(out)["items"]

    events = wait_for("2 SuccessfulCreate events", lambda: (lambda items: items if len(items) >= 2 else None)(messages()))
    assert {e["message"] for e in events} == expected
    for e in events:
        assert e["type"] == "Normal"
        assert (e["involvedObject"]["kind"], e["involvedObject"]["name"]) == ("ReplicaSet", "noted")
