"""The scheduler in `skiff server`, placing real pods on simulated nodes (`skiff sim`): a
spread of 200 pods over 50 nodes, taints and tolerations, node selectors and required node
affinity, resource fit counting init containers, host ports, and a pod that fits nowhere
getting kube-scheduler's FailedScheduling message until a fitting node arrives."""

import json
from collections import Counter

import pytest

from conftest import wait_for
from scheduling import create, get, node_of, pod, start_fleet


@pytest.fixture(scope="module", autouse=True)
def fleets(skiff, kubectl):
    procs = [
        start_fleet(skiff, "--nodes", "50", "--cpu", "4", "--memory", "8Gi", "--label", "pool=plain"),
        start_fleet(skiff, "--nodes", "2", "--prefix", "gpu", "--label", "pool=gpu", "--taint", "dedicated=gpu:NoSchedule"),
        start_fleet(skiff, "--nodes", "1", "--prefix", "ports", "--label", "pool=ports", "--cpu", "2"),
    ]
    wait_for("53 nodes", lambda: len(json.loads(kubectl("get", "nodes", "-o", "json"))["items"]) == 53)
    yield procs
    for p in procs:
        p.terminate()
        p.wait(timeout=10)


def test_two_hundred_pods_run_on_fifty_nodes(kubectl):
    create(kubectl, *[pod(f"spread-{i}", nodeSelector={"pool": "plain"}) for i in range(200)])

    def all_running():
        pods = json.loads(kubectl("get", "pods", "-o", "json"))["items"]
        spread = [p for p in pods if p["metadata"]["name"].startswith("spread-")]
        return len(spread) == 200 and all(p["status"].get("phase") == "Running" for p in spread) and spread
    spread = wait_for("200 running pods", all_running, timeout=60)
    per_node = Counter(p["spec"]["nodeName"] for p in spread)
    # The emptiest nodes are preferred: every node of the pool gets its share.
    assert set(per_node) == {f"sim-node-{i}" for i in range(50)}
    assert max(per_node.values()) - min(per_node.values()) <= 1
    wide = kubectl("get", "pods", "-o", "wide")
    assert wide.splitlines()[0].split()[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert "spread-0" in wide and "sim-node-" in wide


def test_taints_keep_away_pods_that_do_not_tolerate_them(kubectl):
    create(kubectl,
           pod("wants-gpu", nodeSelector={"pool": "gpu"}),
           pod("tolerates-gpu", nodeSelector={"pool": "gpu"},
               tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]))
    assert node_of(kubectl, "tolerates-gpu").startswith("gpu-")
    message = wait_for("the untolerated pod's condition", lambda: next(
        (c.get("message") for c in get(kubectl, "wants-gpu")["status"].get("conditions", []) if c["type"] == "PodScheduled"), None))
    assert "2 node(s) had untolerated taint {dedicated: gpu}" in message
    assert "51 node(s) didn't match Pod's node affinity/selector" in message


def test_required_node_affinity(kubectl):
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["sim-node-7", "sim-node-8"]}]}]}}}
    create(kubectl, pod("picky", affinity=affinity))
    assert node_of(kubectl, "picky") in ("sim-node-7", "sim-node-8")


def test_init_containers_count_toward_fit(kubectl):
    big_init = [{"name": "setup", "image": "busybox", "resources": {"requests": {"cpu": "3500m"}}}]
    create(kubectl, pod("init-too-big", initContainers=big_init + [{"name": "more", "image": "busybox",
                                                                     "resources": {"requests": {"cpu": "5"}}}]))
    message = wait_for("the FailedScheduling event", lambda: next(
        (e["message"] for e in json.loads(kubectl("get", "events", "-o", "json"))["items"]
         if e["involvedObject"]["name"] == "init-too-big" and e["reason"] == "FailedScheduling"), None))
    assert message.startswith("0/53 nodes are available:")
    assert "Insufficient cpu" in message


def test_host_ports_are_held_once_per_node(kubectl):
    port = [{"name": "app", "image": "nginx", "ports": [{"containerPort": 80, "hostPort": 8080}]}]
    create(kubectl, pod("port-a", nodeSelector={"pool": "ports"}, containers=port))
    assert node_of(kubectl, "port-a") == "ports-0"
    create(kubectl, pod("port-b", nodeSelector={"pool": "ports"}, containers=port))
    message = wait_for("port-b's condition", lambda: next(
        (c.get("message") for c in get(kubectl, "port-b")["status"].get("conditions", []) if c["type"] == "PodScheduled"), None))
    assert "1 node(s) didn't have free ports for the requested pod ports" in message


def test_an_unschedulable_pod_is_placed_once_a_fitting_node_arrives(skiff, kubectl, fleets):
    create(kubectl, pod("needs-late", nodeSelector={"pool": "late"}))
    wait_for("the pod to be reported unschedulable", lambda: any(
        c["type"] == "PodScheduled" and c["status"] == "False" for c in get(kubectl, "needs-late")["status"].get("conditions", [])))
    events = kubectl("get", "events", "--field-selector", "reason=FailedScheduling")
    assert "needs-late" in events
    fleets.append(start_fleet(skiff, "--nodes", "1", "--prefix", "late", "--label", "pool=late"))
    assert node_of(kubectl, "needs-late") == "late-0"
    wait_for("the pod to run", lambda: get(kubectl, "needs-late")["status"].get("phase") == "Running")
