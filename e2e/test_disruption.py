"""PodDisruptionBudgets and the eviction API on simulated nodes, as a user meets them: the
ALLOWED DISRUPTIONS `kubectl get pdb` shows for minAvailable, maxUnavailable and
percentages (the latter against the scale of the pods' controllers); an eviction the budget
allows marks the pod DisruptionTarget and deletes it, and the ReplicaSet replaces it; an
eviction the budget forbids gets 429 with the DisruptionBudget cause, and `kubectl drain`
times out on it; unready pods under unhealthyPodEvictionPolicy; the eviction API's refusals (bad bodies, a
pod under two budgets); and stale DisruptionTarget conditions set back to False."""

import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from conftest import wait_for
from scheduling import running_fleet


@pytest.fixture(scope="module", autouse=True)
def fleet(skiff, kubectl):
    yield from running_fleet(skiff, kubectl, 3, "pdb")


def template(app):
    return {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "app", "image": "nginx:1"}]}}


def replicaset(name, replicas):
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template(name)}}


def deployment(name, replicas):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template(name)}}


def budget(name, app, **spec):
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": app}}, **spec}}


def apply(kubectl, *objects):
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def get(kubectl, kind, name):
    return json.loads(kubectl("get", kind, name, "-o", "json"))


def running_pods(kubectl, app):
    items = json.loads(kubectl("get", "pods", "-l", f"app={app}", "-o", "json"))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp") and p["status"].get("phase") == "Running"]


def allowed_column(kubectl):
    """ALLOWED DISRUPTIONS of each budget, as `kubectl get pdb` prints it."""
    lines = kubectl("get", "pdb").splitlines()
    header = lines[0]
    at = header.index("ALLOWED DISRUPTIONS")
    return {line.split()[0]: int(line[at:].split()[0]) for line in lines[1:]}


def settled(kubectl, name, allowed, healthy):
    """Waits until the budget's status shows `allowed` disruptions over `healthy` pods."""
    def check():
        status = get(kubectl, "pdb", name).get("status", {})
        return status.get("disruptionsAllowed") == allowed and status.get("currentHealthy") == healthy and status
    return wait_for(f"pdb/{name} to allow {allowed} with {healthy} healthy", check)


def evict(k8s, name, **options):
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace="default"),
                             delete_options=client.V1DeleteOptions(**options) if options else None)
    return client.CoreV1Api(k8s).create_namespaced_pod_eviction(name, "default", body)


def refusal(err):
    assert err.status == 429, err
    status = json.loads(err.body)
    assert status["reason"] == "TooManyRequests"
    assert status["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    return status["details"]["causes"][0]


def test_kubectl_shows_allowed_disruptions(kubectl):
    apply(kubectl, replicaset("min", 3), replicaset("max", 4), deployment("pct", 4),
          budget("min", "min", minAvailable=2), budget("max", "max", maxUnavailable=1),
          budget("pct-min", "pct", minAvailable="50%"), budget("pct-max", "pct", maxUnavailable="25%"))
    status = settled(kubectl, "min", 1, 3)
    assert (status["desiredHealthy"], status["expectedPods"]) == (2, 3)
    assert status["observedGeneration"] == get(kubectl, "pdb", "min")["metadata"]["generation"]
    condition = next(c for c in status["conditions"] if c["type"] == "DisruptionAllowed")
    assert (condition["status"], condition["reason"]) == ("True", "SufficientPods")
    status = settled(kubectl, "max", 1, 4)
    assert (status["desiredHealthy"], status["expectedPods"]) == (3, 4)
    # Percentages are of the Deployment's replicas, rounded up: 50% of 4 must stay, 25% may go.
    status = settled(kubectl, "pct-min", 2, 4)
    assert (status["desiredHealthy"], status["expectedPods"]) == (2, 4)
    status = settled(kubectl, "pct-max", 1, 4)
    assert (status["desiredHealthy"], status["expectedPods"]) == (3, 4)
    assert {k: v for k, v in allowed_column(kubectl).items() if k in ("min", "max", "pct-min", "pct-max")} == \
        {"min": 1, "max": 1, "pct-min": 2, "pct-max": 1}
    # Scaling the Deployment moves what the percentages are of.
    kubectl("scale", "deployment/pct", "--replicas=8")
    status = settled(kubectl, "pct-min", 4, 8)
    assert (status["desiredHealthy"], status["expectedPods"]) == (4, 8)
    settled(kubectl, "pct-max", 2, 8)


def test_a_budget_matching_no_pods_allows_nothing(kubectl):
    apply(kubectl, budget("nobody", "nobody", maxUnavailable=1))
    status = settled(kubectl, "nobody", 0, 0)
    assert (status["desiredHealthy"], status["expectedPods"]) == (0, 0)
    condition = next(c for c in status["conditions"] if c["type"] == "DisruptionAllowed")
    assert (condition["status"], condition["reason"]) == ("False", "InsufficientPods")
    assert allowed_column(kubectl)["nobody"] == 0


def test_an_allowed_eviction_deletes_the_pod_and_the_replicaset_replaces_it(kubectl, k8s):
    apply(kubectl, replicaset("evictable", 3), budget("evictable", "evictable", minAvailable=2))
    settled(kubectl, "evictable", 1, 3)
    victim = running_pods(kubectl, "evictable")[0]["metadata"]["name"]
    # A finalizer holds the pod after its deletion, so that what the eviction did shows.
    kubectl("patch", "pod", victim, "--type=merge", "-p", '{"metadata":{"finalizers":["e2e.skiff.io/hold"]}}')
    evict(k8s, victim)
    pod = get(kubectl, "pod", victim)
    assert pod["metadata"].get("deletionTimestamp")
    target = next(c for c in pod["status"]["conditions"] if c["type"] == "DisruptionTarget")
    assert (target["status"], target["reason"], target["message"]) == ("True", "EvictionByEvictionAPI", "Eviction API: evicting")
    # The ReplicaSet replaces it, and the budget allows one disruption again.
    wait_for("a replacement pod", lambda: len(running_pods(kubectl, "evictable")) == 3)
    status = settled(kubectl, "evictable", 1, 3)
    assert victim not in status.get("disruptedPods", {})
    kubectl("patch", "pod", victim, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    wait_for(f"{victim} to be gone", lambda: victim not in kubectl("get", "pods", "-o", "name"))


def test_each_eviction_spends_a_disruption(kubectl, k8s):
    # Bare pods: nothing replaces the evicted ones, so the count is the same whether or not
    # the controller has caught up with the evictions.
    solo = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"solo-{i}", "namespace": "default", "labels": {"app": "solo"}},
             "spec": {"containers": [{"name": "app", "image": "nginx:1"}]}} for i in range(3)]
    apply(kubectl, *solo, budget("solo", "solo", minAvailable=1))
    settled(kubectl, "solo", 2, 3)
    evict(k8s, "solo-0")
    evict(k8s, "solo-1")
    with pytest.raises(ApiException) as err:
        evict(k8s, "solo-2")
    assert refusal(err.value)["reason"] == "DisruptionBudget"
    status = settled(kubectl, "solo", 0, 1)
    assert (status["desiredHealthy"], status["expectedPods"]) == (1, 1)
    assert "disruptedPods" not in status


def test_an_eviction_the_budget_forbids_gets_429_and_drain_times_out(kubectl, k8s):
    apply(kubectl, replicaset("guarded", 2), budget("guarded", "guarded", minAvailable=2))
    settled(kubectl, "guarded", 0, 2)
    victim = running_pods(kubectl, "guarded")[0]
    with pytest.raises(ApiException) as err:
        evict(k8s, victim["metadata"]["name"])
    cause = refusal(err.value)
    assert cause == {"reason": "DisruptionBudget", "message": "The disruption budget guarded needs 2 healthy pods and has 2 currently"}
    assert get(kubectl, "pod", victim["metadata"]["name"])["metadata"].get("deletionTimestamp") is None
    node = victim["spec"]["nodeName"]
    try:
        res = kubectl("drain", node, "--pod-selector=app=guarded", "--timeout=8s", check=False, timeout=60)
        assert res.returncode != 0, res.stdout
        assert "Cannot evict pod as it would violate the pod's disruption budget." in res.stderr, res.stderr
        assert "global timeout reached: 8s" in res.stderr, res.stderr
        assert get(kubectl, "node", node)["spec"].get("unschedulable") is True
    finally:
        kubectl("uncordon", node)
    assert len(running_pods(kubectl, "guarded")) == 2


def test_drain_evicts_what_the_budget_allows(kubectl):
    apply(kubectl, replicaset("drained", 3), budget("drained", "drained", maxUnavailable=1))
    settled(kubectl, "drained", 1, 3)
    node = running_pods(kubectl, "drained")[0]["spec"]["nodeName"]
    try:
        out = kubectl("drain", node, "--pod-selector=app=drained", "--timeout=60s", timeout=90)
        assert "evicted" in out and "drained" in out, out
        wait_for("no drained pod on the node",
                 lambda: all(p["spec"].get("nodeName") != node for p in running_pods(kubectl, "drained")))
    finally:
        kubectl("uncordon", node)
    settled(kubectl, "drained", 1, 3)


def make_unready(kubectl, pod):
    """Makes the pod's readiness probe fail: its simulated kubelet reports it not Ready."""
    kubectl("annotate", "pod", pod, "sim.skiff.io/ready=false")


def test_unhealthy_pod_eviction_policy(kubectl, k8s):
    apply(kubectl, replicaset("always", 3), replicaset("ifhealthy", 3),
          budget("always", "always", minAvailable=3, unhealthyPodEvictionPolicy="AlwaysAllow"),
          budget("ifhealthy", "ifhealthy", minAvailable=3))
    settled(kubectl, "always", 0, 3)
    settled(kubectl, "ifhealthy", 0, 3)
    sick_always = running_pods(kubectl, "always")[0]["metadata"]["name"]
    sick_default = running_pods(kubectl, "ifhealthy")[0]["metadata"]["name"]
    make_unready(kubectl, sick_always)
    make_unready(kubectl, sick_default)
    settled(kubectl, "always", 0, 2)
    settled(kubectl, "ifhealthy", 0, 2)
    # AlwaysAllow: an unready pod may go although the budget is short.
    evict(k8s, sick_always)
    wait_for(f"{sick_always} to be gone", lambda: sick_always not in kubectl("get", "pods", "-o", "name"))
    # IfHealthyBudget (the default): only while the budget is met, which it is not.
    with pytest.raises(ApiException) as err:
        evict(k8s, sick_default)
    assert refusal(err.value)["message"] == "The disruption budget ifhealthy needs 3 healthy pods and has 2 currently"
    # Ready pods stay protected under either policy.
    healthy = next(p["metadata"]["name"] for p in running_pods(kubectl, "always") if p["metadata"]["name"] != sick_always)
    with pytest.raises(ApiException) as err:
        evict(k8s, healthy)
    refusal(err.value)


def test_an_unready_pod_goes_while_the_budget_is_met(kubectl, k8s):
    apply(kubectl, replicaset("spare", 3), budget("spare", "spare", minAvailable=2))
    settled(kubectl, "spare", 1, 3)
    sick = running_pods(kubectl, "spare")[0]["metadata"]["name"]
    make_unready(kubectl, sick)
    status = settled(kubectl, "spare", 0, 2)
    assert status["desiredHealthy"] == 2
    evict(k8s, sick)
    wait_for(f"{sick} to be gone", lambda: sick not in kubectl("get", "pods", "-o", "name"))


def test_pods_without_a_budget_and_finished_pods_are_evicted(kubectl, k8s, skiff):
    apply(kubectl, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "loner", "namespace": "default"},
                    "spec": {"containers": [{"name": "app", "image": "nginx:1"}]}})
    wait_for("loner to run", lambda: get(kubectl, "pod", "loner")["status"].get("phase") == "Running")
    status, doc = skiff.request_json("POST", "/api/v1/namespaces/default/pods/loner/eviction",
                                     {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "loner"}})
    assert (status, doc) == (201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
    wait_for("loner to be gone", lambda: "pod/loner" not in kubectl("get", "pods", "-o", "name"))
    # A pod that finished disrupts nothing: its budget, which allows nothing, is not asked.
    apply(kubectl, budget("done", "done", minAvailable=5),
          {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "done", "namespace": "default", "labels": {"app": "done"},
                                                           "annotations": {"sim.skiff.io/run-seconds": "0"}},
           "spec": {"restartPolicy": "Never", "containers": [{"name": "app", "image": "nginx:1"}]}})
    wait_for("done to succeed", lambda: get(kubectl, "pod", "done")["status"].get("phase") == "Succeeded")
    evict(k8s, "done")
    wait_for("done to be gone", lambda: "pod/done" not in kubectl("get", "pods", "-o", "name"))


def test_bad_evictions(kubectl, k8s, skiff):
    apply(kubectl, replicaset("twice", 2), budget("twice-a", "twice", maxUnavailable=1), budget("twice-b", "twice", maxUnavailable=1))
    settled(kubectl, "twice-a", 1, 2)
    name = running_pods(kubectl, "twice")[0]["metadata"]["name"]
    path = f"/api/v1/namespaces/default/pods/{name}/eviction"
    status, doc = skiff.request_json("POST", path, {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}})
    assert status == 500, doc
    assert doc["message"] == "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    assert doc["code"] == 500
    status, doc = skiff.request_json("POST", path, {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "other"}})
    assert (status, doc["reason"], doc["message"]) == (400, "BadRequest", "name in URL does not match name in Eviction object")
    status, doc = skiff.request_json("POST", path, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}})
    assert (status, doc["reason"]) == (400, "BadRequest"), doc
    assert skiff.request("POST", path, b"{not json", headers={"Content-Type": "application/json"})[0] == 400
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "missing"}}
    status, doc = skiff.request_json("POST", "/api/v1/namespaces/default/pods/missing/eviction", body)
    assert (status, doc["reason"]) == (404, "NotFound"), doc
    # A dry run changes nothing.
    kubectl("delete", "pdb", "twice-b")
    settled(kubectl, "twice-a", 1, 2)
    evict(k8s, name, dry_run=["All"])
    assert get(kubectl, "pod", name)["metadata"].get("deletionTimestamp") is None
    assert get(kubectl, "pdb", "twice-a")["status"]["disruptionsAllowed"] == 1
    # A uid precondition that does not hold is a conflict.
    with pytest.raises(ApiException) as err:
        evict(k8s, name, preconditions=client.V1Preconditions(uid="not-the-uid"))
    assert err.value.status == 409


def disruption_target(kubectl, pod):
    conditions = get(kubectl, "pod", pod)["status"].get("conditions", [])
    return next((c for c in conditions if c["type"] == "DisruptionTarget"), None)


def test_a_stale_disruption_target_is_reset(kubectl):
    """A pod marked DisruptionTarget but not deleted within two minutes was not disrupted:
    the disruption controller sets the condition False; the kubelet's own mark stays."""
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
             "spec": {"containers": [{"name": "app", "image": "nginx:1"}]}} for name in ("stale", "by-kubelet")]
    apply(kubectl, *pods)
    for name in ("stale", "by-kubelet"):
        wait_for(f"{name} to run", lambda: get(kubectl, "pod", name)["status"].get("phase") == "Running")
    marks = {"stale": "EvictionByEvictionAPI", "by-kubelet": "TerminationByKubelet"}
    for name, reason in marks.items():
        condition = {"type": "DisruptionTarget", "status": "True", "reason": reason,
                     "message": "marked by the test", "lastTransitionTime": "2026-01-01T00:00:00Z"}
        kubectl("patch", "pod", name, "--subresource=status", "--type=strategic",
                "-p", json.dumps({"status": {"conditions": [condition]}}))
    reset = wait_for("the stale condition to be reset",
                     lambda: (c := disruption_target(kubectl, "stale")) and c["status"] == "False" and c)
    assert "reason" not in reset and "message" not in reset, reset
    assert disruption_target(kubectl, "by-kubelet")["status"] == "True"
    kubectl("delete", "pod", "stale", "by-kubelet", "--grace-period=0", "--force")


def test_discovery_names_the_eviction_subresource(kubectl):
    resources = json.loads(kubectl("get", "--raw", "/api/v1"))["resources"]
    eviction = next(r for r in resources if r["name"] == "pods/eviction")
    assert (eviction["group"], eviction["version"], eviction["kind"], eviction["verbs"]) == ("policy", "v1", "Eviction", ["create"])
