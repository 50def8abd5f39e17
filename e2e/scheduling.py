"""Helpers shared by the scheduler's end-to-end tests: fleets of simulated nodes
(`skiff sim`) against a test's server, and pods to place on them."""

import json
import subprocess

from conftest import SKIFF_BIN, wait_for


def start_fleet(skiff, *args):
    """Starts `skiff sim` with these arguments against the server; the caller stops it."""
    return subprocess.Popen([SKIFF_BIN, "sim", "--kubeconfig", str(skiff.kubeconfig), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def running_fleet(skiff, kubectl, nodes, prefix):
    """A generator for a module fixture: `nodes` simulated nodes named `<prefix>-<i>`, ready
    before the tests start and stopped after them."""
    proc = start_fleet(skiff, "--nodes", str(nodes), "--prefix", prefix)
    wait_for(f"{nodes} nodes", lambda: len(json.loads(kubectl("get", "nodes", "-o", "json"))["items"]) == nodes)
    yield proc
    proc.terminate()
    proc.wait(timeout=10)


def pod(name, cpu="100m", memory=None, labels=None, **spec):
    """A pod in `default` with one container requesting `cpu` (and `memory`), plus `spec`."""
    requests = {"cpu": cpu, **({"memory": memory} if memory else {})}
    body = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": dict(labels or {})},
            "spec": {"containers": [{"name": "app", "image": "nginx", "resources": {"requests": requests}}]}}
    body["spec"].update(spec)
    return body


def create(kubectl, *pods):
    kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(pods)}))


def get(kubectl, name):
    return json.loads(kubectl("get", "pod", name, "-o", "json"))


def node_of(kubectl, name, timeout=30):
    return wait_for(f"{name} to be scheduled", lambda: get(kubectl, name)["spec"].get("nodeName"), timeout=timeout)
