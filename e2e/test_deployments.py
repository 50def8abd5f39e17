"""Deployments on simulated nodes, driven with kubectl as a user drives them: a rollout to
20 replicas, a rolling update whose every step a watch checks against maxSurge and
maxUnavailable, `rollout undo` back to the old template, `rollout history`, pause and
resume, scaling, Recreate, minReadySeconds and the progress deadline."""

import json
import threading

import kubernetes
import pytest

from conftest import wait_for
from scheduling import PodCensus, running_fleet


@pytest.fixture(scope="module", autouse=True)
def fleet(skiff, kubectl):
    yield from running_fleet(skiff, kubectl, 5, "dep")


def deployment(name, replicas, image="nginx:1", strategy=None, **spec):
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}}}
    if strategy:
        body["spec"]["strategy"] = strategy
    body["spec"].update(spec)
    return body


def apply(kubectl, *objects):
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def get(kubectl, kind, name):
    return json.loads(kubectl("get", kind, name, "-o", "json"))


def rollout_status(kubectl, name, timeout="60s"):
    return kubectl("rollout", "status", f"deployment/{name}", f"--timeout={timeout}")


def replicasets(kubectl, app):
    items = json.loads(kubectl("get", "rs", "-l", f"app={app}", "-o", "json"))["items"]
    return {rs["metadata"]["name"]: rs for rs in items}


def pods(kubectl, app):
    return json.loads(kubectl("get", "pods", "-l", f"app={app}", "-o", "json"))["items"]


def condition(doc, type_):
    return next((c for c in doc["status"].get("conditions", []) if c["type"] == type_), None)


def ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def test_a_deployment_rolls_out_20_replicas(kubectl):
    apply(kubectl, deployment("web", 20))
    out = rollout_status(kubectl, "web")
    assert 'deployment "web" successfully rolled out' in out
    d = get(kubectl, "deployment", "web")
    status = d["status"]
    assert (status["replicas"], status["updatedReplicas"], status["readyReplicas"], status["availableReplicas"]) == (20, 20, 20, 20)
    assert status["observedGeneration"] == d["metadata"]["generation"]
    assert condition(d, "Available")["status"] == "True"
    assert condition(d, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    [(name, rs)] = replicasets(kubectl, "web").items()
    hash_ = rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"]
    assert name == f"web-{hash_}"
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert rs["status"]["readyReplicas"] == 20
    web = pods(kubectl, "web")
    assert len(web) == 20
    assert all(p["metadata"]["name"].startswith(f"{name}-") for p in web)
    assert all(p["metadata"]["ownerReferences"][0]["name"] == name for p in web)
    assert all(p["metadata"]["labels"]["pod-template-hash"] == hash_ for p in web)


def test_a_rolling_update_stays_within_max_surge_and_max_unavailable(kubectl, k8s):
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    apply(kubectl, deployment("web", 20, strategy=strategy))
    census = PodCensus(k8s, "web")
    wait_for("the census to see the 20 pods", lambda: census.counts and census.counts[-1] == (20, 20))
    start = len(census.counts)
    kubectl("set", "image", "deployment/web", "app=nginx:2")
    rollout_status(kubectl, "web", "90s")
    wait_for("the old pods to go", lambda: census.counts[-1] == (20, 20))
    census.stop()
    steps = census.counts[start:]
    # 25% of 20: at most 25 pods, at least 15 of them ready, at every step.
    assert max(total for total, _ in steps) <= 25
    assert min(ready_ for _, ready_ in steps) >= 15
    assert max(total for total, _ in steps) > 20, "the update surged"
    images = {p["spec"]["containers"][0]["image"] for p in pods(kubectl, "web")}
    assert images == {"nginx:2"}
    sets = replicasets(kubectl, "web")
    sizes = sorted((rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"], rs["spec"]["replicas"]) for rs in sets.values())
    assert sizes == [("1", 0), ("2", 20)]
    events = kubectl("get", "events", "--field-selector", "involvedObject.name=web,reason=ScalingReplicaSet", "-o", "json")
    assert json.loads(events)["items"], "ScalingReplicaSet events are recorded"


def test_rollout_undo_returns_to_the_old_template(kubectl):
    before = {rs["spec"]["template"]["spec"]["containers"][0]["image"]: name for name, rs in replicasets(kubectl, "web").items()}
    kubectl("rollout", "undo", "deployment/web")
    rollout_status(kubectl, "web")
    d = get(kubectl, "deployment", "web")
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1"
    assert {p["spec"]["containers"][0]["image"] for p in pods(kubectl, "web")} == {"nginx:1"}
    # The first ReplicaSet is the new one again, at revision 3, remembering revision 1.
    old = get(kubectl, "rs", before["nginx:1"])
    assert old["spec"]["replicas"] == 20
    assert old["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert old["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    history = kubectl("rollout", "history", "deployment/web")
    revisions = [line.split()[0] for line in history.splitlines()[2:] if line.strip()]
    assert revisions == ["2", "3"]


def test_a_paused_deployment_scales_but_does_not_roll_out(kubectl):
    kubectl("rollout", "pause", "deployment/web")
    kubectl("set", "image", "deployment/web", "app=nginx:3")
    wait_for("the paused condition", lambda: (condition(get(kubectl, "deployment", "web"), "Progressing") or {}).get("reason") == "DeploymentPaused")
    kubectl("scale", "deployment/web", "--replicas=24")
    wait_for("24 available replicas", lambda: get(kubectl, "deployment", "web")["status"].get("availableReplicas") == 24)
    assert {p["spec"]["containers"][0]["image"] for p in pods(kubectl, "web")} == {"nginx:1"}
    assert len(replicasets(kubectl, "web")) == 2
    kubectl("rollout", "resume", "deployment/web")
    rollout_status(kubectl, "web", "90s")
    assert {p["spec"]["containers"][0]["image"] for p in pods(kubectl, "web")} == {"nginx:3"}
    assert len(pods(kubectl, "web")) == 24


def test_recreate_stops_every_old_pod_before_starting_new_ones(kubectl, k8s):
    apply(kubectl, deployment("batch", 4, strategy={"type": "Recreate"}))
    rollout_status(kubectl, "batch")
    old_hash = pods(kubectl, "batch")[0]["metadata"]["labels"]["pod-template-hash"]
    census = PodCensus(k8s, "batch")
    wait_for("the census to see the 4 pods", lambda: census.counts and census.counts[-1] == (4, 4))
    start = len(census.counts)
    seen = []
    watch = kubernetes.watch.Watch()

    def record():
        try:
            for event in watch.stream(kubernetes.client.CoreV1Api(k8s).list_namespaced_pod, "default", label_selector="app=batch"):
                seen.append((event["type"], event["object"].metadata.labels["pod-template-hash"]))
        except Exception:  # the stream ends when the test stops the watch
            pass

    threading.Thread(target=record, daemon=True).start()
    kubectl("set", "image", "deployment/batch", "app=nginx:2")
    rollout_status(kubectl, "batch")
    watch.stop()
    census.stop()
    new_events = [i for i, (_, h) in enumerate(seen) if h != old_hash]
    old_deletions = [i for i, (t, h) in enumerate(seen) if h == old_hash and t == "DELETED"]
    assert len(old_deletions) == 4 and new_events
    assert max(old_deletions) < min(new_events), "a new pod appeared before every old one was gone"
    assert max(total for total, _ in census.counts[start:]) <= 4


def test_min_ready_seconds_delays_availability(kubectl):
    apply(kubectl, deployment("slow", 2, minReadySeconds=4))
    wait_for("ready replicas", lambda: get(kubectl, "deployment", "slow")["status"].get("readyReplicas") == 2)
    d = get(kubectl, "deployment", "slow")
    assert d["status"].get("availableReplicas", 0) < 2
    assert condition(d, "Available")["status"] == "False"
    rollout_status(kubectl, "slow")
    assert get(kubectl, "deployment", "slow")["status"]["availableReplicas"] == 2


def test_a_stuck_rollout_exceeds_its_progress_deadline(kubectl):
    stuck = deployment("stuck", 2, progressDeadlineSeconds=3)
    stuck["spec"]["template"]["spec"]["nodeSelector"] = {"no-such": "node"}
    apply(kubectl, stuck)
    wait_for("ProgressDeadlineExceeded",
             lambda: (condition(get(kubectl, "deployment", "stuck"), "Progressing") or {}).get("reason") == "ProgressDeadlineExceeded",
             timeout=30)
    result = kubectl("rollout", "status", "deployment/stuck", "--timeout=20s", check=False)
    assert result.returncode != 0
    assert 'deployment "stuck" exceeded its progress deadline' in result.stderr
