"""PodGC on a simulated node: deleting a Node makes PodGC, after its quarantine, mark the pods
bound to it Failed with the DisruptionTarget condition (reason DeletionByPodGC) and delete
them."""

import json
import threading

import kubernetes
import pytest

from conftest import wait_for
from scheduling import start_fleet


@pytest.fixture(scope="module")
def fleet(skiff, kubectl):
    proc = start_fleet(skiff, "--nodes", "1", "--prefix", "alpha")
    wait_for("the node", lambda: kubectl("get", "node", "alpha-0", check=False).returncode == 0)
    yield proc
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=10)


def get(kubectl, *what):
    return json.loads(kubectl("get", *what, "-o", "json"))


def test_deleting_a_node_makes_podgc_delete_its_pods(kubectl, k8s, fleet):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pinned", "namespace": "default"},
           "spec": {"nodeName": "alpha-0", "containers": [{"name": "app", "image": "nginx"}]}}
    kubectl("create", "-f", "-", input=json.dumps(pod))
    wait_for("pinned to run", lambda: get(kubectl, "pod", "pinned")["status"].get("phase") == "Running")
    # No kubelet is left to register the node again or to finish the pod.
    fleet.kill()
    fleet.wait(timeout=10)

    last = {}
    w = kubernetes.watch.Watch()

    def follow():
        try:
            for event in w.stream(kubernetes.client.CoreV1Api(k8s).list_namespaced_pod, "default", field_selector="metadata.name=pinned"):
                last[event["type"]] = event["object"]
        except Exception:  # the stream ends when the test stops the watch
            pass

    threading.Thread(target=follow, daemon=True).start()
    kubectl("delete", "node", "alpha-0")
    # Seen missing at a 20 s pass, quarantined for 40 s, deleted at the pass after that.
    wait_for("PodGC to delete the pod", lambda: "DELETED" in last, timeout=120)
    w.stop()
    final = last["DELETED"]
    assert final.status.phase == "Failed"
    target = next(c for c in final.status.conditions if c.type == "DisruptionTarget")
    assert (target.status, target.reason, target.message) == ("True", "DeletionByPodGC", "PodGC: node no longer exists")
    assert kubectl("get", "pod", "pinned", check=False).returncode != 0
