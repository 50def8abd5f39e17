"""StatefulSets on simulated nodes, driven with kubectl as a user drives them: pods created
strictly one after another in ordinal order (a watch checks each waits for its predecessor to
be Ready), with their stable names, labels and hostnames; scaling down in reverse order; a
deleted or finished pod back under its name; Parallel pod management; a rolling update held
at a partition, `rollout status`, `rollout history` and `rollout undo`; a claim per pod from
volumeClaimTemplates, deleted with scaled-down pods under whenScaled=Delete, kept under
Retain, and deleted with the set under whenDeleted=Delete."""

import json
import threading
import time

import kubernetes
import pytest

from conftest import wait_for
from scheduling import running_fleet


@pytest.fixture(scope="module", autouse=True)
def fleet(skiff, kubectl):
    yield from running_fleet(skiff, kubectl, 3, "sts")


def statefulset(name, replicas, image="nginx:1", claims=(), **spec):
    body = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}}}
    if claims:
        body["spec"]["volumeClaimTemplates"] = [
            {"metadata": {"name": claim, "labels": {"claim": claim}},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
            for claim in claims]
    body["spec"].update(spec)
    return body


def headless_service(name):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"clusterIP": "None", "selector": {"app": name}, "ports": [{"port": 80}]}}


def apply(kubectl, *objects):
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def get(kubectl, kind, name):
    return json.loads(kubectl("get", kind, name, "-o", "json"))


def pods(kubectl, app):
    items = json.loads(kubectl("get", "pods", "-l", f"app={app}", "-o", "json"))["items"]
    return {p["metadata"]["name"]: p for p in items}


def ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def settled(kubectl, name, replicas):
    """The set reports `replicas` ready pods, all at one revision, for its latest spec."""
    def check():
        sts = get(kubectl, "statefulset", name)
        status = sts["status"]
        return (status.get("observedGeneration") == sts["metadata"]["generation"]
                and status.get("readyReplicas", 0) == replicas and status["replicas"] == replicas
                and status.get("currentRevision") == status.get("updateRevision")
                and len(pods(kubectl, name)) == replicas) and sts
    return wait_for(f"{name} to settle at {replicas} ready pods", check, timeout=60)


class PodLog:
    """Watches the pods of one app and records, in order, (event, pod name, ready) where
    event is ADDED, READY, DELETING or DELETED."""

    def __init__(self, k8s, app):
        self.events = []
        self._ready = set()
        self._deleting = set()
        self._watch = kubernetes.watch.Watch()
        self._api = kubernetes.client.CoreV1Api(k8s)
        self._app = app
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        try:
            for event in self._watch.stream(self._api.list_namespaced_pod, "default", label_selector=f"app={self._app}"):
                self._record(event["type"], event["object"])
        except Exception:  # the stream ends when the test stops the watch
            pass

    def _record(self, kind, pod):
        name = pod.metadata.name
        if kind == "ADDED":
            self.events.append(("ADDED", name))
        if kind == "DELETED":
            self.events.append(("DELETED", name))
            self._ready.discard(name)
            self._deleting.discard(name)
            return
        if pod.metadata.deletion_timestamp and name not in self._deleting:
            self._deleting.add(name)
            self.events.append(("DELETING", name))
        is_ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
        if is_ready and name not in self._ready:
            self._ready.add(name)
            self.events.append(("READY", name))

    def index(self, kind, name):
        return self.events.index((kind, name))

    def stop(self):
        self._watch.stop()


def test_pods_are_created_one_at_a_time_in_ordinal_order(kubectl, k8s):
    log = PodLog(k8s, "web")
    apply(kubectl, headless_service("web"), statefulset("web", 3))
    sts = settled(kubectl, "web", 3)
    wait_for("the watch to see web-2 ready", lambda: ("READY", "web-2") in log.events)
    log.stop()
    created = [name for kind, name in log.events if kind == "ADDED"]
    assert created == ["web-0", "web-1", "web-2"]
    for i in (1, 2):
        assert log.index("READY", f"web-{i - 1}") < log.index("ADDED", f"web-{i}"), log.events

    status = sts["status"]
    revision = status["updateRevision"]
    assert revision.startswith("web-")
    assert (status["replicas"], status["readyReplicas"], status["currentReplicas"], status["updatedReplicas"],
            status["availableReplicas"], status["collisionCount"]) == (3, 3, 3, 3, 3, 0)
    assert status["currentRevision"] == revision
    for name, pod in pods(kubectl, "web").items():
        ordinal = name.rsplit("-", 1)[1]
        labels = pod["metadata"]["labels"]
        assert labels["statefulset.kubernetes.io/pod-name"] == name
        assert labels["apps.kubernetes.io/pod-index"] == ordinal
        assert labels["controller-revision-hash"] == revision
        assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == (name, "web")
        [owner] = pod["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["controller"]) == ("StatefulSet", "web", True)
    [cr] = json.loads(kubectl("get", "controllerrevisions", "-l", "app=web", "-o", "json"))["items"]
    assert (cr["metadata"]["name"], cr["revision"]) == (revision, 1)
    assert cr["metadata"]["ownerReferences"][0]["name"] == "web"
    events = json.loads(kubectl("get", "events", "--field-selector", "involvedObject.name=web,reason=SuccessfulCreate", "-o", "json"))
    messages = {e["message"] for e in events["items"]}
    assert {f"create Pod web-{i} in StatefulSet web successful" for i in range(3)} <= messages


def test_a_deleted_pod_comes_back_under_its_name(kubectl):
    old_uid = get(kubectl, "pod", "web-1")["metadata"]["uid"]
    kubectl("delete", "pod", "web-1", "--wait=false")

    def recreated():
        pod = pods(kubectl, "web").get("web-1")
        return pod if pod and pod["metadata"]["uid"] != old_uid else None

    back = wait_for("web-1 to be recreated", recreated)
    assert back["spec"]["hostname"] == "web-1"
    settled(kubectl, "web", 3)


def test_scaling_down_deletes_pods_in_reverse_order(kubectl, k8s):
    log = PodLog(k8s, "web")
    wait_for("the watch to list the pods", lambda: len(log.events) >= 3)
    kubectl("scale", "statefulset/web", "--replicas=1")
    settled(kubectl, "web", 1)
    wait_for("the watch to see web-1 go", lambda: ("DELETED", "web-1") in log.events)
    log.stop()
    assert log.index("DELETED", "web-2") < log.index("DELETING", "web-1"), log.events
    assert set(pods(kubectl, "web")) == {"web-0"}
    events = json.loads(kubectl("get", "events", "--field-selector", "involvedObject.name=web,reason=SuccessfulDelete", "-o", "json"))
    assert "delete Pod web-2 in StatefulSet web successful" in {e["message"] for e in events["items"]}
    kubectl("scale", "statefulset/web", "--replicas=3")
    settled(kubectl, "web", 3)


def test_finished_pods_are_replaced_under_the_same_name(kubectl):
    body = statefulset("batch", 1)
    body["spec"]["template"]["metadata"]["annotations"] = {"sim.skiff.io/run-seconds": "1", "sim.skiff.io/exit-code": "1"}
    apply(kubectl, body)
    first = wait_for("batch-0", lambda: pods(kubectl, "batch").get("batch-0"))
    uids = {first["metadata"]["uid"]}

    def another():
        pod = pods(kubectl, "batch").get("batch-0")
        if pod:
            uids.add(pod["metadata"]["uid"])
        return len(uids) >= 3

    wait_for("batch-0 to fail and be recreated twice", another, timeout=60)
    kubectl("delete", "statefulset", "batch")


def test_parallel_creates_and_deletes_all_pods_at_once(kubectl):
    # Pods that no node can take stay Pending: OrderedReady creates only the first,
    # Parallel all of them.
    unschedulable = {"template": {"metadata": {"labels": {"app": "ordered"}},
                                  "spec": {"nodeSelector": {"no": "such-node"}, "containers": [{"name": "app", "image": "nginx"}]}}}
    apply(kubectl, statefulset("ordered", 3, **unschedulable))
    parallel = {"template": {**unschedulable["template"], "metadata": {"labels": {"app": "par"}}}}
    apply(kubectl, statefulset("par", 4, podManagementPolicy="Parallel", **parallel))
    wait_for("4 parallel pods", lambda: len(pods(kubectl, "par")) == 4)
    time.sleep(2)
    assert set(pods(kubectl, "ordered")) == {"ordered-0"}
    assert get(kubectl, "statefulset", "par")["status"]["replicas"] == 4
    # Parallel scales down without waiting for pods to be ready.
    kubectl("scale", "statefulset/par", "--replicas=1")
    wait_for("parallel pods deleted", lambda: set(pods(kubectl, "par")) == {"par-0"})
    # OrderedReady does not delete past a pod that is not ready.
    kubectl("scale", "statefulset/ordered", "--replicas=0")
    wait_for("ordered-0 deleted: the first unhealthy pod may go", lambda: not pods(kubectl, "ordered"))
    kubectl("delete", "statefulset", "ordered", "par")


def images(kubectl, app):
    return {name: p["spec"]["containers"][0]["image"] for name, p in pods(kubectl, app).items()}


def test_a_rolling_update_stops_at_the_partition(kubectl):
    before = get(kubectl, "statefulset", "web")["status"]["currentRevision"]
    kubectl("patch", "statefulset/web", "-p", json.dumps({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 1}}}}))
    kubectl("annotate", "statefulset/web", "kubernetes.io/change-cause=nginx 2")
    kubectl("set", "image", "statefulset/web", "app=nginx:2")
    out = kubectl("rollout", "status", "statefulset/web", "--timeout=60s")
    assert "partitioned roll out complete: 2 new pods have been updated" in out
    wait_for("web-2 and web-1 updated", lambda: images(kubectl, "web") == {"web-0": "nginx:1", "web-1": "nginx:2", "web-2": "nginx:2"})
    status = get(kubectl, "statefulset", "web")["status"]
    assert status["currentRevision"] == before != status["updateRevision"]
    assert (status["currentReplicas"], status["updatedReplicas"]) == (1, 2)
    pod_revisions = {n: p["metadata"]["labels"]["controller-revision-hash"] for n, p in pods(kubectl, "web").items()}
    assert pod_revisions == {"web-0": before, "web-1": status["updateRevision"], "web-2": status["updateRevision"]}

    kubectl("patch", "statefulset/web", "-p", json.dumps({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}}))
    kubectl("rollout", "status", "statefulset/web", "--timeout=60s")
    sts = settled(kubectl, "web", 3)
    assert set(images(kubectl, "web").values()) == {"nginx:2"}
    assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"] != before


def test_rollout_history_and_undo(kubectl):
    history = kubectl("rollout", "history", "statefulset/web")
    lines = [line.split() for line in history.strip().splitlines()[2:]]
    assert [line[0] for line in lines] == ["1", "2"]
    assert " ".join(lines[1][1:]) == "nginx 2"
    first = json.loads(kubectl("get", "controllerrevisions", "-l", "app=web", "-o", "json"))["items"]
    first = next(r["metadata"]["name"] for r in first if r["revision"] == 1)
    out = kubectl("rollout", "undo", "statefulset/web")
    assert "rolled back" in out
    kubectl("rollout", "status", "statefulset/web", "--timeout=60s")
    sts = settled(kubectl, "web", 3)
    assert set(images(kubectl, "web").values()) == {"nginx:1"}
    # The old revision is the update revision again, renumbered as the latest.
    assert sts["status"]["updateRevision"] == first
    history = kubectl("rollout", "history", "statefulset/web")
    assert [line.split()[0] for line in history.strip().splitlines()[2:]] == ["2", "3"]
    assert get(kubectl, "controllerrevision", first)["revision"] == 3


def claims(kubectl, app):
    items = json.loads(kubectl("get", "pvc", "-l", f"app={app}", "-o", "json"))["items"]
    return {c["metadata"]["name"]: c for c in items}


def test_claims_follow_the_retention_policy(kubectl):
    # Parallel: the pods need not start (their claims stay unbound) for the set to scale.
    policy = {"whenScaled": "Delete", "whenDeleted": "Delete"}
    apply(kubectl, statefulset("db", 3, claims=["data"], podManagementPolicy="Parallel", persistentVolumeClaimRetentionPolicy=policy))
    wait_for("a claim per pod", lambda: set(claims(kubectl, "db")) == {"data-db-0", "data-db-1", "data-db-2"})
    uid = get(kubectl, "statefulset", "db")["metadata"]["uid"]
    for claim in claims(kubectl, "db").values():
        assert claim["metadata"]["labels"] == {"app": "db", "claim": "data"}
    wait_for("the set to own its claims (whenDeleted=Delete)", lambda: all(
        [(r["kind"], r["uid"], r["controller"]) for r in c["metadata"].get("ownerReferences", [])] == [("StatefulSet", uid, True)]
        for c in claims(kubectl, "db").values()))
    for name, pod in pods(kubectl, "db").items():
        [volume] = [v for v in pod["spec"]["volumes"] if v["name"] == "data"]
        assert volume["persistentVolumeClaim"]["claimName"] == f"data-{name}"
    events = json.loads(kubectl("get", "events", "--field-selector", "involvedObject.name=db,reason=SuccessfulCreate", "-o", "json"))
    assert "create Claim data-db-0 Pod db-0 in StatefulSet db success" in {e["message"] for e in events["items"]}

    # whenScaled=Delete: the claims of the pods scaled away go with them.
    kubectl("scale", "statefulset/db", "--replicas=1")
    wait_for("the claims of db-1 and db-2 to go", lambda: set(claims(kubectl, "db")) == {"data-db-0"}, timeout=60)
    assert set(pods(kubectl, "db")) == {"db-0"}

    # whenScaled=Retain: they stay, owned by nothing that would delete them.
    retain = {"whenScaled": "Retain", "whenDeleted": "Retain"}
    apply(kubectl, statefulset("keep", 2, claims=["data"], podManagementPolicy="Parallel", persistentVolumeClaimRetentionPolicy=retain))
    wait_for("the claims of keep", lambda: set(claims(kubectl, "keep")) == {"data-keep-0", "data-keep-1"})
    kubectl("scale", "statefulset/keep", "--replicas=1")
    wait_for("keep-1 to go", lambda: set(pods(kubectl, "keep")) == {"keep-0"})
    time.sleep(2)
    kept = claims(kubectl, "keep")
    assert set(kept) == {"data-keep-0", "data-keep-1"}
    assert not any(c["metadata"].get("ownerReferences") for c in kept.values())

    # whenDeleted=Delete: the set's claims go with the set.
    kubectl("delete", "statefulset", "db", "keep")
    wait_for("the claims of db to go with it", lambda: not claims(kubectl, "db"), timeout=60)
    assert set(claims(kubectl, "keep")) == {"data-keep-0", "data-keep-1"}
