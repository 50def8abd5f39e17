"""`kubectl get -w` streams changes as they happen: a user leaves it running, changes
objects from another terminal, and sees each change appear."""

import json
import queue
import threading
import time

import pytest

# The API server's behaviour alone: without controllers, a namespace holds only what these
# tests put in it (no kube-root-ca.crt ConfigMap or default ServiceAccount).
SKIFF_ARGS = ["--disable-controller-manager"]

NS = "watched"


class Watcher:
    """A running `kubectl get -w`, its stdout read line by line on a thread."""

    def __init__(self, skiff, *args):
        self.proc = skiff.kubectl_popen(*args)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, predicate, timeout=10.0, what="a line"):
        """Reads lines until predicate(line) is true; returns that line."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                err = self.proc.stderr.read()
                raise AssertionError(f"kubectl -w ended before {what}; stdout so far {self.seen}; stderr: {err}")
            self.seen.append(line)
            if predicate(line):
                return line
        raise AssertionError(f"no {what} within {timeout}s; kubectl printed: {self.seen}")

    def stop(self):
        self.proc.kill()
        self.proc.wait(timeout=5)


@pytest.fixture
def watch(skiff):
    started = []

    def start(*args):
        w = Watcher(skiff, *args)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


@pytest.fixture(scope="module", autouse=True)
def namespace(skiff):
    skiff.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
    for name in ("first", "second"):
        skiff.kubectl("create", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS}, "data": {"k": name}}))


def create_configmap(kubectl, name, labels=None):
    kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS, "labels": labels or {}}, "data": {"k": name}}))


def test_watch_events_as_json(skiff, kubectl, watch):
    w = watch("get", "configmaps", "-n", NS, "-w", "--output-watch-events", "-o", "json")
    events = []

    def event(line):
        events.append(json.loads(line))
        return True

    # First the current state, as ADDED events.
    for _ in range(2):
        w.wait_for(event, what="an initial event")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "first"), ("ADDED", "second")]

    kubectl("label", "configmap", "first", "-n", NS, "color=green")
    line = w.wait_for(lambda l: '"MODIFIED"' in l, what="the MODIFIED event")
    ev = json.loads(line)
    assert ev["object"]["metadata"]["name"] == "first"
    assert ev["object"]["metadata"]["labels"] == {"color": "green"}
    assert int(ev["object"]["metadata"]["resourceVersion"]) > int(events[-1]["object"]["metadata"]["resourceVersion"])

    kubectl("delete", "configmap", "first", "-n", NS)
    ev = json.loads(w.wait_for(lambda l: '"DELETED"' in l, what="the DELETED event"))
    assert ev["object"]["metadata"]["name"] == "first"
    assert ev["object"]["kind"] == "ConfigMap"


def test_watch_by_name_prints_new_objects(skiff, kubectl, watch):
    w = watch("get", "configmaps", "-n", NS, "-w", "-o", "name")
    w.wait_for(lambda l: l == "configmap/second", what="the existing configmap")
    create_configmap(kubectl, "third")
    w.wait_for(lambda l: l == "configmap/third", what="the created configmap")


def test_watch_table_shows_event_types(skiff, kubectl, watch):
    w = watch("get", "configmaps", "-n", NS, "-w", "--output-watch-events")
    header = w.wait_for(lambda l: l.split()[:1] == ["EVENT"], what="the table header")
    assert header.split()[:2] == ["EVENT", "NAME"]
    w.wait_for(lambda l: l.split()[:2] == ["ADDED", "second"], what="the existing configmap")
    kubectl("annotate", "configmap", "second", "-n", NS, "note=changed")
    w.wait_for(lambda l: l.split()[:2] == ["MODIFIED", "second"], what="MODIFIED second")
    create_configmap(kubectl, "fourth")
    w.wait_for(lambda l: l.split()[:2] == ["ADDED", "fourth"], what="ADDED fourth")


def test_watch_with_label_selector_sees_objects_enter_and_leave(skiff, kubectl, watch):
    create_configmap(kubectl, "late")
    w = watch("get", "configmaps", "-n", NS, "-l", "tier=gold", "-w", "--output-watch-events", "-o", "json")
    # Nothing matches yet: the next thing printed must be "late" moving into the selection.
    kubectl("label", "configmap", "late", "-n", NS, "tier=gold")
    ev = json.loads(w.wait_for(lambda l: True, what="late entering the selection"))
    assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "late")
    # An object that stops matching leaves it as DELETED.
    kubectl("label", "configmap", "late", "-n", NS, "tier=silver", "--overwrite")
    ev = json.loads(w.wait_for(lambda l: True, what="late leaving the selection"))
    assert (ev["type"], ev["object"]["metadata"]["name"]) == ("DELETED", "late")
