"""Helpers shared by the scheduler's and the controllers' end-to-end tests: fleets of
simulated nodes (`skiff sim`) against a test's server, pods to place on them, and a census
of an app's pods as a watch sees them."""

import json
import subprocess
import threading

import kubernetes

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


class PodCensus:
    """Watches the pods of one app and records, after every event, how many exist (not
    being deleted) and how many of those are ready."""

    def __init__(self, k8s, app):
        self.live = {}
        self.counts = []
        self._watch = kubernetes.watch.Watch()
        self._api = kubernetes.client.CoreV1Api(k8s)
        self._app = app
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            self._follow()
        except Exception:  # the stream ends when the test stops the watch
            pass

    def _follow(self):
        for event in self._watch.stream(self._api.list_namespaced_pod, "default", label_selector=f"app={self._app}"):
            pod = event["object"]
            name = pod.metadata.name
            if event["type"] == "DELETED" or pod.metadata.deletion_timestamp:
                self.live.pop(name, None)
            else:
                conditions = pod.status.conditions or []
                self.live[name] = any(c.type == "Ready" and c.status == "True" for c in conditions)
            self.counts.append((len(self.live), sum(self.live.values())))

    def stop(self):
        self._watch.stop()
