"""`skiff sim`: simulated nodes register, report Ready with their capacity, labels and taints,
keep their Leases fresh, and run the pods bound to them: Running with an IP from the node's
range, Succeeded after a declared run time, and gone once deleted."""

import json
import subprocess
import time

import pytest

from conftest import SKIFF_BIN, wait_for

NODES = 4


@pytest.fixture(scope="module", autouse=True)
def fleet(skiff):
    proc = subprocess.Popen(
        [SKIFF_BIN, "sim", "--nodes", str(NODES), "--zones", "2",
         "--cpu", "8", "--memory", "16Gi", "--label", "pool=sim", "--taint", "sim=true:PreferNoSchedule",
         "--kubeconfig", str(skiff.kubeconfig)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    yield proc
    proc.terminate()
    proc.wait(timeout=10)



def node_list(kubectl):
    return json.loads(kubectl("get", "nodes", "-o", "json"))["items"]


def test_nodes_register_ready_with_capacity_labels_and_taints(kubectl, fleet):
    def ready():
        nodes = node_list(kubectl)
        ok = [n for n in nodes if any(c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", []))]
        return len(ok) == NODES and nodes
    nodes = {n["metadata"]["name"]: n for n in wait_for("the simulated nodes to be Ready", ready)}
    assert sorted(nodes) == [f"sim-node-{i}" for i in range(NODES)]
    node = nodes["sim-node-1"]
    assert node["status"]["capacity"]["cpu"] == "8" and node["status"]["allocatable"]["memory"] == "16Gi"
    assert node["metadata"]["labels"]["topology.kubernetes.io/zone"] == "zone-1"
    assert node["metadata"]["labels"]["pool"] == "sim"
    assert node["spec"]["taints"] == [{"key": "sim", "value": "true", "effect": "PreferNoSchedule"}]
    out = kubectl("get", "nodes")
    assert "sim-node-0" in out and "Ready" in out and "v1.37.0" in out


def test_leases_are_renewed(kubectl):
    def renew_time():
        res = kubectl("get", "lease", "sim-node-2", "-n", "kube-node-lease", "-o", "json", check=False)
        return res.returncode == 0 and json.loads(res.stdout)["spec"]["renewTime"]
    first = wait_for("the node's Lease", renew_time)
    # Each Lease is renewed every 10 s.
    wait_for("the Lease to be renewed", lambda: (renew_time() or first) != first, timeout=25)


def pod(name, node, annotations=None):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "annotations": annotations or {}},
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx"}],
                     "initContainers": [{"name": "setup", "image": "busybox"}]}}


def get_pod(kubectl, name):
    return json.loads(kubectl("get", "pod", name, "-o", "json"))


def test_a_bound_pod_runs_with_an_ip_from_its_node(kubectl):
    kubectl("create", "-f", "-", input=json.dumps(pod("web", "sim-node-1")))
    running = wait_for("the pod to run", lambda: (p := get_pod(kubectl, "web"))["status"].get("phase") == "Running" and p)
    status = running["status"]
    assert status["podIP"].startswith("10.0.1.")
    assert status["hostIP"] == "10.128.0.1"
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
    assert status["containerStatuses"][0]["ready"] is True and "running" in status["containerStatuses"][0]["state"]
    assert status["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    wide = kubectl("get", "pod", "web", "-o", "wide")
    assert "Running" in wide and "sim-node-1" in wide and status["podIP"] in wide


def test_a_pod_with_a_run_time_succeeds(kubectl):
    kubectl("create", "-f", "-", input=json.dumps(pod("batch", "sim-node-0", {"sim.skiff.io/run-seconds": "1"})))
    done = wait_for("the pod to succeed", lambda: (p := get_pod(kubectl, "batch"))["status"].get("phase") == "Succeeded" and p)
    state = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert state["exitCode"] == 0 and state["reason"] == "Completed"
    assert "Completed" in kubectl("get", "pod", "batch")


def test_a_deleted_pod_goes(kubectl):
    kubectl("create", "-f", "-", input=json.dumps(pod("doomed", "sim-node-3")))
    wait_for("the pod to run", lambda: get_pod(kubectl, "doomed")["status"].get("phase") == "Running")
    kubectl("delete", "pod", "doomed", "--wait=true", "--timeout=20s")
    res = kubectl("get", "pod", "doomed", check=False)
    assert res.returncode == 1 and "NotFound" in res.stderr


def test_pods_on_other_nodes_are_left_alone(kubectl):
    kubectl("create", "-f", "-", input=json.dumps(pod("elsewhere", "real-node")))
    time.sleep(1.5)
    assert get_pod(kubectl, "elsewhere")["status"].get("phase", "Pending") == "Pending"
