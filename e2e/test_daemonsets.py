"""DaemonSets on simulated nodes, driven with kubectl as a user drives them: a pod on every
node, one for a node that joins later, tainted nodes skipped unless tolerated, nodeSelector
(and a node that stops matching it), failed pods replaced, a rolling update that a watch
checks against maxUnavailable, and `rollout history` and `rollout undo`."""

import json

import pytest

from conftest import wait_for
from scheduling import PodCensus, start_fleet

PLAIN, SSD, TAINTED = ["ds-0", "ds-1"], "ds-ssd-0", "ds-tainted-0"
TOLERATE_INFRA = [{"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}]


@pytest.fixture(scope="module", autouse=True)
def fleet(skiff, kubectl):
    fleets = [start_fleet(skiff, "--nodes", "2", "--prefix", "ds"),
              start_fleet(skiff, "--nodes", "1", "--prefix", "ds-ssd", "--label", "disk=ssd"),
              start_fleet(skiff, "--nodes", "1", "--prefix", "ds-tainted", "--taint", "dedicated=infra:NoSchedule")]
    wait_for("4 nodes", lambda: len(json.loads(kubectl("get", "nodes", "-o", "json"))["items"]) == 4)
    yield
    for proc in fleets:
        proc.terminate()
        proc.wait(timeout=10)


def daemonset(name, image="nginx:1", annotations=None, strategy=None, **pod_spec):
    body = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}, "annotations": dict(annotations or {})},
                                  "spec": {"containers": [{"name": "app", "image": image}], **pod_spec}}}}
    if strategy:
        body["spec"]["updateStrategy"] = strategy
    return body


def apply(kubectl, obj):
    kubectl("apply", "-f", "-", input=json.dumps(obj))


def get(kubectl, name):
    return json.loads(kubectl("get", "daemonset", name, "-o", "json"))


def pods(kubectl, app):
    items = json.loads(kubectl("get", "pods", "-l", f"app={app}", "-o", "json"))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def placement(kubectl, app):
    """The nodes the app's pods are bound to, sorted."""
    return sorted(p["spec"].get("nodeName", "") for p in pods(kubectl, app))


def rollout_status(kubectl, name, timeout="60s"):
    return kubectl("rollout", "status", f"daemonset/{name}", f"--timeout={timeout}")


def events(kubectl, name, reason):
    out = kubectl("get", "events", "--field-selector", f"involvedObject.name={name},reason={reason}", "-o", "json")
    return [e["message"] for e in json.loads(out)["items"]]


def test_a_daemonset_runs_one_pod_on_every_node_it_may_use(kubectl):
    apply(kubectl, daemonset("agent"))
    out = rollout_status(kubectl, "agent")
    assert 'daemon set "agent" successfully rolled out' in out
    # The tainted node is skipped: the pod does not tolerate dedicated=infra:NoSchedule.
    assert placement(kubectl, "agent") == sorted(PLAIN + [SSD])
    ds = get(kubectl, "agent")
    status = ds["status"]
    assert (status["desiredNumberScheduled"], status["currentNumberScheduled"], status["numberReady"],
            status["numberAvailable"], status["updatedNumberScheduled"], status["numberMisscheduled"]) == (3, 3, 3, 3, 3, 0)
    assert "numberUnavailable" not in status
    assert status["observedGeneration"] == ds["metadata"]["generation"]
    [revision] = json.loads(kubectl("get", "controllerrevisions", "-l", "app=agent", "-o", "json"))["items"]
    hash_ = revision["metadata"]["labels"]["controller-revision-hash"]
    assert revision["metadata"]["name"] == f"agent-{hash_}"
    assert revision["revision"] == 1
    for pod in pods(kubectl, "agent"):
        assert pod["metadata"]["labels"]["controller-revision-hash"] == hash_
        assert pod["metadata"]["labels"]["pod-template-generation"] == str(ds["metadata"]["generation"])
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
        # Placed by the scheduler, pinned by a required node affinity on the node's name.
        terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [pod["spec"]["nodeName"]]}]}]
        tolerated = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
        assert ("node.kubernetes.io/not-ready", "NoExecute") in tolerated
        assert ("node.kubernetes.io/unschedulable", "NoSchedule") in tolerated
        assert ("node.kubernetes.io/network-unavailable", "NoSchedule") not in tolerated
    assert len(events(kubectl, "agent", "SuccessfulCreate")) == 3


def test_a_tolerated_taint_lets_the_pods_onto_the_node(kubectl):
    apply(kubectl, daemonset("tolerant", tolerations=TOLERATE_INFRA))
    rollout_status(kubectl, "tolerant")
    assert placement(kubectl, "tolerant") == sorted(PLAIN + [SSD, TAINTED])
    assert get(kubectl, "tolerant")["status"]["desiredNumberScheduled"] == 4


def test_node_selector_picks_the_nodes_and_a_node_that_stops_matching_loses_its_pod(kubectl):
    apply(kubectl, daemonset("ssd-only", nodeSelector={"disk": "ssd"}))
    rollout_status(kubectl, "ssd-only")
    assert placement(kubectl, "ssd-only") == [SSD]
    kubectl("label", "node", PLAIN[0], "disk=ssd")
    wait_for("a pod on the newly labelled node", lambda: placement(kubectl, "ssd-only") == sorted([PLAIN[0], SSD]))
    kubectl("label", "node", PLAIN[0], "disk-")
    wait_for("the pod to leave the unlabelled node", lambda: placement(kubectl, "ssd-only") == [SSD])
    wait_for("the status to count one node",
             lambda: get(kubectl, "ssd-only")["status"]["desiredNumberScheduled"] == 1
             and get(kubectl, "ssd-only")["status"]["currentNumberScheduled"] == 1)


def test_failed_daemon_pods_are_deleted_and_replaced(kubectl):
    annotations = {"sim.skiff.io/run-seconds": "1", "sim.skiff.io/exit-code": "3"}
    apply(kubectl, daemonset("crashy", annotations=annotations, nodeSelector={"disk": "ssd"}))
    first = wait_for("the first pod", lambda: [p["metadata"]["name"] for p in pods(kubectl, "crashy")])[0]
    message = f"Found failed daemon pod default/{first} on node {SSD}, will try to kill it"
    wait_for("a FailedDaemonPod event", lambda: message in events(kubectl, "crashy", "FailedDaemonPod"))
    wait_for("a replacement pod", lambda: any(p["metadata"]["name"] != first for p in pods(kubectl, "crashy")))
    kubectl("delete", "daemonset", "crashy")


def test_a_rolling_update_stays_within_max_unavailable_and_undo_restores_the_template(kubectl, k8s):
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    apply(kubectl, daemonset("web", strategy=strategy, tolerations=TOLERATE_INFRA))
    rollout_status(kubectl, "web")
    census = PodCensus(k8s, "web")
    wait_for("the census to see the 4 pods", lambda: census.counts and census.counts[-1] == (4, 4))
    start = len(census.counts)
    kubectl("set", "image", "daemonset/web", "app=nginx:2")
    rollout_status(kubectl, "web", "90s")
    wait_for("every pod to be ready", lambda: census.counts[-1] == (4, 4))
    census.stop()
    steps = census.counts[start:]
    # One node at a time: never more than four pods, never fewer than three of them ready.
    assert max(total for total, _ in steps) <= 4
    assert min(ready for _, ready in steps) >= 3
    assert {p["spec"]["containers"][0]["image"] for p in pods(kubectl, "web")} == {"nginx:2"}
    assert get(kubectl, "web")["status"]["updatedNumberScheduled"] == 4

    history = kubectl("rollout", "history", "daemonset/web")
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    assert "nginx:1" in kubectl("rollout", "history", "daemonset/web", "--revision=1")
    assert "rolled back" in kubectl("rollout", "undo", "daemonset/web")
    rollout_status(kubectl, "web", "90s")
    ds = get(kubectl, "web")
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1"
    wait_for("the pods to run nginx:1 again",
             lambda: {p["spec"]["containers"][0]["image"] for p in pods(kubectl, "web")} == {"nginx:1"})
    # The restored template's revision is renumbered as the newest.
    revisions = json.loads(kubectl("get", "controllerrevisions", "-l", "app=web", "-o", "json"))["items"]
    numbers = {r["data"]["spec"]["template"]["spec"]["containers"][0]["image"]: r["revision"] for r in revisions}
    assert numbers == {"nginx:2": 2, "nginx:1": 3}


def test_a_node_that_joins_later_gets_its_pod(skiff, kubectl):
    apply(kubectl, daemonset("late", tolerations=TOLERATE_INFRA))
    rollout_status(kubectl, "late")
    joined = start_fleet(skiff, "--nodes", "1", "--prefix", "ds-late")
    try:
        wait_for("a pod on the new node", lambda: "ds-late-0" in placement(kubectl, "late"))
        wait_for("the status to count five nodes", lambda: get(kubectl, "late")["status"].get("numberReady") == 5)
        assert get(kubectl, "late")["status"]["desiredNumberScheduled"] == 5
    finally:
        joined.terminate()
        joined.wait(timeout=10)
    kubectl("delete", "node", "ds-late-0")
    wait_for("the status to count four nodes", lambda: get(kubectl, "late")["status"]["desiredNumberScheduled"] == 4)
