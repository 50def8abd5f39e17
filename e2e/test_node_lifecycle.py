"""Node lifecycle on simulated nodes, with a short --node-monitor-grace-period: a `skiff sim`
process killed with SIGKILL leaves its node's Lease stale, the node goes Ready=Unknown and is
tainted unreachable, its pods are marked not Ready and evicted once their
tolerationSeconds have passed, and their ReplicaSet replaces them on the other node;
restarting the process makes the node healthy and clears the taints. Pods get the default
not-ready and unreachable tolerations of the DefaultTolerationSeconds admission plugin.
PodGC has its own module, test_pod_gc.py."""

import json
import time

import pytest

from conftest import wait_for
from scheduling import start_fleet

GRACE_SECONDS = 20
SKIFF_ARGS = ["--node-monitor-grace-period", f"{GRACE_SECONDS}s", "--node-monitor-period", "2s"]
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"


def start(skiff, prefix):
    return start_fleet(skiff, "--nodes", "1", "--prefix", prefix)


@pytest.fixture(scope="module")
def fleets(skiff, kubectl):
    """One simulated node per `skiff sim` process: alpha-0 and beta-0."""
    procs = {"alpha": start(skiff, "alpha"), "beta": start(skiff, "beta")}
    wait_for("both nodes Ready", lambda: all(ready_status(kubectl, f"{p}-0") == "True" for p in procs))
    yield procs
    for proc in procs.values():
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


def get(kubectl, *what):
    return json.loads(kubectl("get", *what, "-o", "json"))


def node(kubectl, name):
    res = kubectl("get", "node", name, "-o", "json", check=False)
    return json.loads(res.stdout) if res.returncode == 0 else None


def condition(doc, type_):
    return next((c for c in (doc.get("status") or {}).get("conditions") or [] if c["type"] == type_), None)


def ready_status(kubectl, name):
    n = node(kubectl, name)
    c = n and condition(n, "Ready")
    return c and c["status"]


def taints(kubectl, name):
    return {(t["key"], t["effect"]): t for t in node(kubectl, name)["spec"].get("taints", [])}


def renew_time(kubectl, name):
    return get(kubectl, "lease", "-n", "kube-node-lease", name)["spec"]["renewTime"]


def pods(kubectl, app):
    return get(kubectl, "pods", "-l", f"app={app}")["items"]


def events_for(kubectl, pod_name):
    return [e for e in get(kubectl, "events", "-n", "default")["items"] if e["involvedObject"]["name"] == pod_name]


def deployment(name, replicas, toleration_seconds):
    toleration = {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": toleration_seconds}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"tolerations": [toleration], "containers": [{"name": "web", "image": "nginx"}]}}}}


def test_pods_get_the_default_tolerations_they_lack(kubectl):
    kubectl("run", "plain", "--image=nginx", "--restart=Never")
    tolerations = {t["key"]: t for t in get(kubectl, "pod", "plain")["spec"]["tolerations"]}
    for key in (NOT_READY, UNREACHABLE):
        assert tolerations[key] == {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
    kubectl("create", "-f", "-", input=json.dumps(deployment("own", 1, 7)))
    pod = wait_for("the pod of deployment own", lambda: pods(kubectl, "own"))[0]
    tolerations = {t["key"]: t.get("tolerationSeconds") for t in pod["spec"]["tolerations"]}
    assert tolerations == {UNREACHABLE: 7, NOT_READY: 300}
    kubectl("delete", "deployment/own", "pod/plain", "--wait=false")


def test_a_killed_node_goes_unknown_and_its_pods_are_evicted_to_the_other(kubectl, fleets):
    # Everything starts on alpha: beta takes no pods until the Deployment is placed.
    kubectl("taint", "nodes", "beta-0", "hold=on:NoSchedule")
    kubectl("create", "-f", "-", input=json.dumps(deployment("web", 2, 5)))
    kubectl("rollout", "status", "deployment/web", "--timeout=60s")
    on_alpha = {p["metadata"]["name"] for p in pods(kubectl, "web")}
    assert len(on_alpha) == 2 and all(p["spec"]["nodeName"] == "alpha-0" for p in pods(kubectl, "web"))
    kubectl("taint", "nodes", "beta-0", "hold-")

    fleets["alpha"].kill()
    fleets["alpha"].wait(timeout=10)
    killed_at = time.monotonic()
    alpha_renewed, beta_renewed = renew_time(kubectl, "alpha-0"), renew_time(kubectl, "beta-0")

    # Nothing renews alpha's Lease any more; beta's keeps moving.
    wait_for("beta's Lease to be renewed", lambda: renew_time(kubectl, "beta-0") != beta_renewed, timeout=15)
    assert renew_time(kubectl, "alpha-0") == alpha_renewed

    wait_for("alpha to go Unknown", lambda: ready_status(kubectl, "alpha-0") == "Unknown", timeout=GRACE_SECONDS + 30)
    assert time.monotonic() - killed_at > GRACE_SECONDS - 10 - 1
    ready = condition(node(kubectl, "alpha-0"), "Ready")
    assert ready["reason"] == "NodeStatusUnknown" and ready["message"] == "Kubelet stopped posting node status."
    for type_ in ("MemoryPressure", "DiskPressure", "PIDPressure"):
        assert condition(node(kubectl, "alpha-0"), type_)["status"] == "Unknown"
    assert ready_status(kubectl, "beta-0") == "True"

    tainted = wait_for("the unreachable taints", lambda: (lambda t: (UNREACHABLE, "NoExecute") in t and (UNREACHABLE, "NoSchedule") in t and t)(taints(kubectl, "alpha-0")), timeout=20)
    assert tainted[(UNREACHABLE, "NoExecute")].get("timeAdded")
    assert not any(key == UNREACHABLE for key, _ in taints(kubectl, "beta-0"))

    # The pods were marked not Ready when the node went, and evicted 5 s after the taint.
    def evicted():
        gone = [p for p in pods(kubectl, "web") if p["metadata"]["name"] in on_alpha and p["metadata"].get("deletionTimestamp")]
        return len(gone) == 2 and gone
    gone = wait_for("the pods on alpha to be evicted", evicted, timeout=30)
    for pod in gone:
        target = condition(pod, "DisruptionTarget")
        assert target["status"] == "True" and target["reason"] == "DeletionByTaintManager"
        assert target["message"] == "Taint manager: deleting due to NoExecute taint"
        assert condition(pod, "Ready")["status"] == "False"
        name = pod["metadata"]["name"]
        reasons = {(e["reason"], e["message"]) for e in events_for(kubectl, name)}
        assert ("TaintManagerEviction", f"Marking for deletion Pod default/{name}") in reasons
        assert ("NodeNotReady", "Node is not ready") in reasons

    # Their ReplicaSet replaced them on beta; the evicted ones stay Terminating, as no
    # kubelet is left to finish them.
    kubectl("rollout", "status", "deployment/web", "--timeout=60s")
    running = [p for p in pods(kubectl, "web") if not p["metadata"].get("deletionTimestamp")]
    assert len(running) == 2 and all(p["spec"]["nodeName"] == "beta-0" for p in running)
    assert {p["metadata"]["name"] for p in pods(kubectl, "web")} >= on_alpha


def test_restarting_the_node_makes_it_healthy_and_clears_the_taints(skiff, kubectl, fleets):
    before = renew_time(kubectl, "alpha-0")
    fleets["alpha"] = start(skiff, "alpha")
    wait_for("alpha's Lease to be renewed", lambda: renew_time(kubectl, "alpha-0") != before, timeout=15)
    wait_for("alpha to be Ready", lambda: ready_status(kubectl, "alpha-0") == "True", timeout=15)
    wait_for("the taints to go", lambda: not any(key in (UNREACHABLE, NOT_READY) for key, _ in taints(kubectl, "alpha-0")), timeout=15)
    # Back, its kubelet finishes the pods that were evicted from it.
    wait_for("the evicted pods to go", lambda: len(pods(kubectl, "web")) == 2, timeout=30)
    assert all(p["spec"]["nodeName"] == "beta-0" for p in pods(kubectl, "web"))
    # And it stays healthy past the grace period.
    time.sleep(GRACE_SECONDS + 5)
    assert ready_status(kubectl, "alpha-0") == "True"
    assert not any(key in (UNREACHABLE, NOT_READY) for key, _ in taints(kubectl, "alpha-0"))
