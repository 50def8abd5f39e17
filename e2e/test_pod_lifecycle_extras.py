"""What the node agent does over a pod's life beyond starting and restarting it: the
activeDeadlineSeconds that fails a pod, terminationMessagePolicy FallbackToLogsOnError, gRPC
probes against the test server's health service, the pods' process limit (--pod-max-pids),
the Events the agent records, and static pods from a manifest folder with their mirror
pods. Needs root."""

import json
import urllib.request
from pathlib import Path

from agent_pods import IMAGE, TESTSERVER, busybox, container_status, create, get, node_cleanup, phase_of, pod, testserver  # noqa: F401 (fixtures)
from conftest import wait_for

SKIFF_AGENT = True
SKIFF_ARGS = ["--pod-max-pids", "40", "--pod-manifest-path", "{root}/manifests"]


def events_of(kubectl, name):
    items = json.loads(kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json"))["items"]
    return [(e["type"], e["reason"], e["message"]) for e in items if e["source"].get("component") == "kubelet"]


def test_a_pod_past_its_active_deadline_fails_with_deadline_exceeded(kubectl):
    create(kubectl, pod("deadline", ["sleep", "3600"], activeDeadlineSeconds=4))
    p = phase_of(kubectl, "deadline", "Failed", timeout=40)
    assert p["status"]["reason"] == "DeadlineExceeded"
    assert p["status"]["message"] == "Pod was active on the node longer than the specified deadline"
    # The container was stopped, not left running.
    assert "terminated" in container_status(p)["state"], p["status"]
    reasons = [reason for _, reason, _ in events_of(kubectl, "deadline")]
    assert "DeadlineExceeded" in reasons and "Killing" in reasons, reasons


def test_fallback_to_logs_on_error_reports_the_end_of_the_log(kubectl):
    # stdout and stderr are two pipes: the pause lets the lines reach the log before the error.
    script = "for i in $(seq 1 100); do echo line $i; done; sleep 1; echo boom >&2; exit 3"
    create(kubectl, pod("fallback", ["sh", "-c", script], container={"terminationMessagePolicy": "FallbackToLogsOnError"}))
    create(kubectl, pod("file-policy", ["sh", "-c", script]))
    create(kubectl, pod("wrote-message", ["sh", "-c", "echo from-file > /dev/termination-log; echo noise; exit 1"],
                        container={"terminationMessagePolicy": "FallbackToLogsOnError"}))
    terminated = container_status(phase_of(kubectl, "fallback", "Failed"))["state"]["terminated"]
    assert terminated["exitCode"] == 3
    lines = terminated["message"].splitlines()
    # The kubelet's 80 last lines: line 22 to 100, then the error.
    assert lines == [f"line {i}" for i in range(22, 101)] + ["boom"], lines
    assert "message" not in container_status(phase_of(kubectl, "file-policy", "Failed"))["state"]["terminated"]
    # A message the container wrote wins over its log.
    wrote = container_status(phase_of(kubectl, "wrote-message", "Failed"))["state"]["terminated"]
    assert wrote["message"] == "from-file\n"


def test_grpc_probes_gate_readiness_and_restart_an_unhealthy_container(kubectl, testserver):
    grpc = {"grpc": {"port": 9090}, "periodSeconds": 1, "failureThreshold": 2}
    container = {"image": TESTSERVER, "env": [{"name": "GRPC_PORT", "value": "9090"}],
                 "readinessProbe": grpc, "livenessProbe": grpc}
    doc = pod("grpc-probed", None, restart="Always", container=container)
    del doc["spec"]["containers"][0]["command"]
    create(kubectl, doc)
    wait_for("grpc-probed ready", lambda: container_status(get(kubectl, "grpc-probed")).get("ready"), timeout=60)
    ip = get(kubectl, "grpc-probed")["status"]["podIP"]
    request = urllib.request.Request(f"http://{ip}:8080/fail-health", method="POST", data=b"")
    urllib.request.urlopen(request, timeout=3).read()
    # NOT_SERVING fails the liveness probe: the container restarts, and comes back serving.
    wait_for("grpc-probed restarted",
             lambda: container_status(get(kubectl, "grpc-probed"))["restartCount"] >= 1, timeout=60)
    wait_for("grpc-probed ready again", lambda: container_status(get(kubectl, "grpc-probed")).get("ready"), timeout=60)
    events = events_of(kubectl, "grpc-probed")
    assert ("Warning", "Unhealthy", 'Liveness probe failed: service unhealthy (responded with "NOT_SERVING")') in events, events
    assert any(reason == "Killing" and "failed liveness probe, will be restarted" in message
               for _, reason, message in events), events


def test_a_grpc_probe_against_a_closed_port_fails_readiness(kubectl, testserver):
    container = {"image": TESTSERVER, "readinessProbe": {"grpc": {"port": 9191}, "periodSeconds": 1}}
    doc = pod("grpc-closed", None, restart="Always", container=container)
    del doc["spec"]["containers"][0]["command"]
    create(kubectl, doc)
    wait_for("a failed gRPC readiness probe", lambda: any(
        reason == "Unhealthy" and message.startswith("Readiness probe failed: timeout: failed to connect service")
        for _, reason, message in events_of(kubectl, "grpc-closed")), timeout=60)
    assert not container_status(get(kubectl, "grpc-closed")).get("ready")


def test_a_pod_holds_no_more_processes_than_pod_max_pids(kubectl):
    # 60 sleepers in a pod limited to 40 processes: the shell cannot fork them all.
    # The shell gives up at the first fork that fails, so the sleepers are started by a
    # subshell; the shell itself waits on a child of its own.
    script = "sleep 3600 & (for i in $(seq 1 60); do sleep 300 & done) 2>/dev/null; echo started; wait"
    create(kubectl, pod("many", ["sh", "-c", script]))
    p = phase_of(kubectl, "many", "Running")
    uid = p["metadata"]["uid"]
    limit = Path(f"/sys/fs/cgroup/skiff/pod{uid}/pids.max")
    if not limit.exists():  # cgroup v1
        limit = Path(f"/sys/fs/cgroup/pids/skiff/pod{uid}/pids.max")
    assert limit.read_text().strip() == "40"
    wait_for("the sleepers started", lambda: kubectl("logs", "many") == "started\n")
    # Of the 62 processes asked for, the shell, its own sleeper and those the subshell forked
    # before it reached the limit (the subshell, the 40th, has ended since).
    assert int((limit.parent / "pids.current").read_text()) == 39
    kubectl("delete", "pod", "many", "--grace-period=1")


def test_the_agent_records_its_container_events(kubectl):
    create(kubectl, pod("eventful", ["sleep", "3600"]))
    phase_of(kubectl, "eventful", "Running")
    wait_for("the Started event", lambda: ("Normal", "Started", "Started container main") in events_of(kubectl, "eventful"))
    events = events_of(kubectl, "eventful")
    assert ("Normal", "Pulled", 'Container image "busybox:e2e" already present on machine') in events, events
    assert ("Normal", "Created", "Created container: main") in events, events
    kubectl("delete", "pod", "eventful", "--grace-period=1", "--wait=false")
    wait_for("the Killing event",
             lambda: ("Normal", "Killing", "Stopping container main") in events_of(kubectl, "eventful"))
    # kubectl describe tells the same story.
    create(kubectl, pod("no-such-image", ["true"], container={"image": "localhost:1/none:latest"}))
    wait_for("the pull failure's events", lambda: {"Failed", "BackOff"} <= {
        reason for _, reason, _ in events_of(kubectl, "no-such-image")}, timeout=60)
    described = kubectl("describe", "pod", "no-such-image")
    assert 'Failed to pull image "localhost:1/none:latest"' in described, described
    assert "Error: ImagePullBackOff" in described or "Error: ErrImagePull" in described, described


STATIC_POD = """apiVersion: v1
kind: Pod
metadata:
  name: static-web
  labels: {app: static-web}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: busybox:e2e
    command: ["sh", "-c", "echo MESSAGE; exec sleep 3600"]
"""


def running(kubectl, name):
    """The pod if the API has it Running, else None."""
    found = kubectl("get", "pod", name, "--ignore-not-found", "-o", "json")
    p = json.loads(found) if found.strip() else None
    return p if p and p["status"].get("phase") == "Running" else None


def test_static_pods_run_from_the_manifest_folder_with_mirror_pods(skiff, kubectl):
    manifests = skiff.data_dir.parent / "manifests"
    manifests.mkdir(exist_ok=True)
    node = kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}")
    name = f"static-web-{node}"
    (manifests / "web.yaml").write_text(STATIC_POD.replace("MESSAGE", "first"))
    p = wait_for("the mirror pod Running", lambda: running(kubectl, name), timeout=60)
    annotations = p["metadata"]["annotations"]
    assert annotations["kubernetes.io/config.source"] == "file"
    assert annotations["kubernetes.io/config.mirror"] == annotations["kubernetes.io/config.hash"]
    assert p["metadata"]["ownerReferences"][0]["kind"] == "Node" and p["spec"]["nodeName"] == node
    wait_for("the static pod's log", lambda: kubectl("logs", name) == "first\n")
    started = container_status(p)["state"]["running"]["startedAt"]
    # Deleting the mirror pod does not stop the static pod: the mirror comes back.
    kubectl("delete", "pod", name, "--wait=true", "--timeout=30s")
    back = wait_for("the mirror pod back", lambda: running(kubectl, name), timeout=30)
    assert back["metadata"]["uid"] != p["metadata"]["uid"]
    status = container_status(back)
    assert status["restartCount"] == 0 and status["state"]["running"]["startedAt"] == started
    # A changed manifest replaces the pod.
    (manifests / "web.yaml").write_text(STATIC_POD.replace("MESSAGE", "second"))
    wait_for("the replaced static pod's log",
             lambda: kubectl("logs", name, check=False).stdout == "second\n", timeout=60)
    second = wait_for("the replaced mirror pod", lambda: running(kubectl, name))["metadata"]["annotations"]
    assert second["kubernetes.io/config.hash"] != annotations["kubernetes.io/config.hash"]
    # A removed one stops it, and its mirror goes.
    (manifests / "web.yaml").unlink()
    wait_for("the mirror pod gone", lambda: not kubectl("get", "pod", name, "--ignore-not-found", "-o", "name"), timeout=60)
    pods = skiff.data_dir / "agent" / "pods"
    hashes = [a["kubernetes.io/config.hash"] for a in (annotations, second)]
    wait_for("the static pods' folders gone", lambda: not any((pods / h).exists() for h in hashes), timeout=30)
