"""A rollout survives its server: the server (API, store, scheduler and controllers) is
restarted in the middle of a rolling update, and the controllers, converging from what the
API says, finish it correctly: every pod on the new template, the old ReplicaSet at zero,
no pod too many."""

import json

import pytest

from conftest import wait_for
from scheduling import running_fleet


@pytest.fixture(scope="module", autouse=True)
def fleet(skiff, kubectl):
    yield from running_fleet(skiff, kubectl, 3, "restart")


def deployment(image):
    # One pod at a time, each counted available a second after it is ready: a rollout slow
    # enough to be interrupted half-way.
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "slow", "namespace": "default"},
            "spec": {"replicas": 6, "minReadySeconds": 1, "selector": {"matchLabels": {"app": "slow"}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": "slow"}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}}}


def status(kubectl):
    return json.loads(kubectl("get", "deployment", "slow", "-o", "json"))["status"]


def test_a_server_restarted_mid_rollout_finishes_the_rollout(skiff, kubectl):
    kubectl("apply", "-f", "-", input=json.dumps(deployment("nginx:1")))
    kubectl("rollout", "status", "deployment/slow", "--timeout=40s", timeout=50)
    kubectl("set", "image", "deployment/slow", "app=nginx:2")
    wait_for("the rollout to be under way", lambda: 1 <= status(kubectl).get("updatedReplicas", 0) < 5, timeout=40)
    skiff.restart()
    skiff.wait_ready()
    kubectl("rollout", "status", "deployment/slow", "--timeout=80s", timeout=90)
    final = status(kubectl)
    assert (final["replicas"], final["updatedReplicas"], final["availableReplicas"]) == (6, 6, 6)
    wait_for("old pods to go", lambda: len(json.loads(kubectl("get", "pods", "-l", "app=slow", "-o", "json"))["items"]) == 6)
    pods = json.loads(kubectl("get", "pods", "-l", "app=slow", "-o", "json"))["items"]
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:2"}
    sets = json.loads(kubectl("get", "rs", "-l", "app=slow", "-o", "json"))["items"]
    sizes = sorted((rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"], rs["spec"]["replicas"]) for rs in sets)
    assert sizes == [("1", 0), ("2", 6)]
