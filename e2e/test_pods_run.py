"""The node agent runs real containers: `skiff server` with its agent, pods of a busybox
image built from Debian's busybox-static and imported with `skiff image import`, driven with
kubectl. Needs root (namespaces, cgroups, overlayfs, veths)."""

import json
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from agent_pods import IMAGE, busybox, node_cleanup, container_status, create, get, phase_of, pod  # noqa: F401 (busybox, node_cleanup: fixtures)
from conftest import SKIFF_BIN, wait_for

SKIFF_AGENT = True


def test_the_node_registers_with_real_capacity_and_is_ready(kubectl):
    node = wait_for("a Ready node", lambda: next(iter(json.loads(kubectl("get", "nodes", "-o", "json"))["items"]), None))
    status = node["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True", ready
    assert status["capacity"]["pods"] == "110"
    assert int(status["capacity"]["cpu"]) >= 1
    assert status["capacity"]["memory"].endswith("Ki") and int(status["capacity"]["memory"][:-2]) > 100_000
    assert status["nodeInfo"]["kernelVersion"], status["nodeInfo"]
    assert node["spec"]["podCIDR"].startswith("10.42."), node["spec"]

    def images():
        now = json.loads(kubectl("get", "node", node["metadata"]["name"], "-o", "json"))
        return [n for image in now["status"].get("images", []) for n in image["names"]]
    # The image was imported after the node registered: it shows at the next renewal.
    wait_for("the imported image in the node's status", lambda: "docker.io/library/busybox:e2e" in images(), timeout=20)
    lease = json.loads(kubectl("get", "lease", "-n", "kube-node-lease", node["metadata"]["name"], "-o", "json"))
    assert lease["spec"]["holderIdentity"] == node["metadata"]["name"]


def test_a_pod_that_echoes_shows_its_output_and_succeeds(kubectl):
    create(kubectl, pod("echo", ["sh", "-c", "echo hello from skiff; sleep 0.2; echo to stderr >&2; sleep 0.2; echo $HOSTNAME"]))
    p = phase_of(kubectl, "echo", "Succeeded")
    state = container_status(p)["state"]["terminated"]
    assert state["exitCode"] == 0 and state["reason"] == "Completed", state
    logs = kubectl("logs", "echo")
    assert logs.splitlines() == ["hello from skiff", "to stderr", "echo"], logs
    stamped = kubectl("logs", "echo", "--timestamps", "--tail=1")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z echo\n", stamped), stamped


def test_a_failing_container_reports_its_exit_code(kubectl):
    create(kubectl, pod("fails", ["sh", "-c", "echo about to fail; exit 3"]))
    p = phase_of(kubectl, "fails", "Failed")
    state = container_status(p)["state"]["terminated"]
    assert state["exitCode"] == 3 and state["reason"] == "Error", state
    ready = next(c for c in p["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "PodCompleted", ready


def test_pods_reach_each_other_and_the_host_reaches_them(kubectl):
    create(kubectl, pod("web", ["httpd", "-f", "-p", "8080", "-h", "/www"], restart="Always"))
    web = phase_of(kubectl, "web", "Running")
    ip = web["status"]["podIP"]
    assert ip.startswith("10.42."), ip

    def served():
        try:
            return urllib.request.urlopen(f"http://{ip}:8080/index.html", timeout=2).read()
        except OSError:
            return None
    assert wait_for("the pod's web server, from the host", served) == b"hello from a skiff pod\n"
    create(kubectl, pod("client", ["wget", "-q", "-O", "-", f"http://{ip}:8080/index.html"]))
    phase_of(kubectl, "client", "Succeeded")
    assert kubectl("logs", "client") == "hello from a skiff pod\n"


def test_the_environment_comes_from_fields_configmaps_and_secrets(kubectl):
    kubectl("create", "configmap", "settings", "--from-literal=color=blue")
    kubectl("create", "secret", "generic", "creds", "--from-literal=password=hunter2")
    env = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "color"}}},
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
        {"name": "GREETING", "value": "hi $(POD_NAME)"},
    ]
    create(kubectl, pod("env", ["sh", "-c", "echo $POD_NAME $COLOR $PASSWORD $GREETING; echo ip=$POD_IP"], container={"env": env}))
    p = phase_of(kubectl, "env", "Succeeded")
    lines = kubectl("logs", "env").splitlines()
    assert lines[0] == "env blue hunter2 hi env", lines
    assert lines[1] == f"ip={p['status']['podIP']}", lines


def test_a_missing_configmap_is_a_config_error(kubectl):
    env = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nowhere", "key": "k"}}}]
    create(kubectl, pod("noconfig", ["true"], container={"env": env}))

    def waiting():
        s = get(kubectl, "noconfig")["status"].get("containerStatuses")
        w = s and s[0]["state"].get("waiting")
        return w if w and w.get("reason") == "CreateContainerConfigError" else None
    w = wait_for("CreateContainerConfigError", waiting)
    assert w["message"] == 'configmap "nowhere" not found', w


def test_init_containers_run_in_order_before_the_containers(kubectl, tmp_path):
    doc = pod("inits", ["sh", "-c", "cat /work/order"])
    doc["spec"]["volumes"] = [{"name": "work", "emptyDir": {}}]
    mount = [{"name": "work", "mountPath": "/work"}]
    doc["spec"]["containers"][0]["volumeMounts"] = mount
    doc["spec"]["initContainers"] = [
        {"name": f"init-{i}", "image": IMAGE, "command": ["sh", "-c", f"echo init-{i} >> /work/order"], "volumeMounts": mount}
        for i in (1, 2)
    ]
    create(kubectl, doc)
    p = phase_of(kubectl, "inits", "Succeeded")
    assert kubectl("logs", "inits") == "init-1\ninit-2\n"
    inits = {c["name"]: c["state"]["terminated"]["reason"] for c in p["status"]["initContainerStatuses"]}
    assert inits == {"init-1": "Completed", "init-2": "Completed"}
    initialized = next(c for c in p["status"]["conditions"] if c["type"] == "Initialized")
    assert initialized["status"] == "True"


def test_a_crashing_container_is_restarted_with_back_off(kubectl):
    create(kubectl, pod("crashy", ["sh", "-c", "echo run; exit 1"], restart="Always"))

    def backing_off():
        s = container_status(get(kubectl, "crashy"))
        w = s["state"].get("waiting")
        return s if s["restartCount"] >= 1 and w and w["reason"] == "CrashLoopBackOff" else None
    s = wait_for("CrashLoopBackOff after a restart", backing_off, timeout=60)
    assert "back-off 20s restarting failed container=main pod=crashy_default" in s["state"]["waiting"]["message"], s
    assert s["lastState"]["terminated"]["exitCode"] == 1, s
    assert kubectl("logs", "crashy", "--previous") == "run\n"


def test_an_unknown_image_fails_to_pull_then_backs_off(kubectl):
    doc = pod("noimage", ["true"])
    doc["spec"]["containers"][0]["image"] = "example.invalid/nothing:1"

    def reasons():
        s = get(kubectl, "noimage")["status"].get("containerStatuses")
        w = s and s[0]["state"].get("waiting")
        return w if w and w["reason"] == "ImagePullBackOff" else None
    create(kubectl, doc)
    w = wait_for("ImagePullBackOff", reasons, timeout=30)
    assert 'Back-off pulling image "example.invalid/nothing:1"' in w["message"], w


def test_a_container_over_its_memory_limit_is_oom_killed(kubectl):
    hog = ["sh", "-c", "x=0123456789; while true; do x=$x$x; done"]
    create(kubectl, pod("hog", hog, container={"resources": {"limits": {"memory": "32Mi"}}}))
    p = phase_of(kubectl, "hog", "Failed")
    state = container_status(p)["state"]["terminated"]
    assert state["reason"] == "OOMKilled" and state["exitCode"] == 137, state


def host_leftovers(uid):
    """What a pod could leave on the host: mounts, cgroups, its veth."""
    mounts = [line for line in Path("/proc/mounts").read_text().splitlines() if uid in line]
    cgroups = [str(p) for p in Path("/sys/fs/cgroup").glob(f"**/pod{uid}")]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    veth = "veth" + uid.replace("-", "")[:8]
    return mounts, cgroups, veth in links


def test_deleting_a_pod_stops_it_gracefully_and_leaves_nothing_behind(kubectl):
    script = "trap 'echo got TERM; exit 0' TERM; echo up; while true; do sleep 0.1; done"
    create(kubectl, pod("sleeper", ["sh", "-c", script], restart="Always", terminationGracePeriodSeconds=30))
    p = phase_of(kubectl, "sleeper", "Running")
    uid = p["metadata"]["uid"]
    mounts, cgroups, veth = host_leftovers(uid)
    assert mounts and cgroups and veth, (mounts, cgroups, veth)
    started = time.monotonic()
    kubectl("delete", "pod", "sleeper", "--wait=true", "--timeout=60s")
    # The container handled SIGTERM, so it did not wait out its 30 s for SIGKILL.
    assert time.monotonic() - started < 20
    assert host_leftovers(uid) == ([], [], False)


def test_restarting_the_agent_leaves_containers_running(skiff, kubectl):
    create(kubectl, pod("steady", ["sh", "-c", "while true; do sleep 1; done"], restart="Always"))
    before = phase_of(kubectl, "steady", "Running")
    started = container_status(before)["state"]["running"]["startedAt"]
    skiff.kill9()
    skiff.start()
    time.sleep(3)
    after = get(kubectl, "steady")
    s = container_status(after)
    assert s["restartCount"] == 0 and s["state"]["running"]["startedAt"] == started, s
    assert after["status"]["podIP"] == before["status"]["podIP"]


def ready_condition(p):
    return next((c["status"] for c in p["status"].get("conditions", []) if c["type"] == "Ready"), None)


def test_a_readiness_probe_gates_ready(kubectl):
    script = "httpd -p 8080 -h /www; sleep 4; echo ok > /www/ready.html; while true; do sleep 1; done"
    probe = {"httpGet": {"path": "/ready.html", "port": 8080}, "periodSeconds": 1}
    create(kubectl, pod("gated", ["sh", "-c", script], restart="Always", container={"readinessProbe": probe}))
    p = phase_of(kubectl, "gated", "Running")
    assert ready_condition(p) == "False" and container_status(p)["ready"] is False, p["status"]
    p = wait_for("Ready once the probe passes", lambda: (lambda p: p if ready_condition(p) == "True" else None)(get(kubectl, "gated")), timeout=20)
    assert container_status(p)["ready"] is True and container_status(p)["restartCount"] == 0


def test_a_failing_liveness_probe_restarts_the_container(kubectl):
    probe = {"tcpSocket": {"port": 9999}, "periodSeconds": 1, "failureThreshold": 2}
    create(kubectl, pod("unlive", ["sh", "-c", "echo started; while true; do sleep 1; done"], restart="Always",
                        container={"livenessProbe": probe}))

    def restarted():
        s = container_status(get(kubectl, "unlive"))
        return s if s["restartCount"] >= 1 else None
    s = wait_for("a restart by the liveness probe", restarted, timeout=40)
    # sh as PID 1 ignores SIGTERM, so the grace period ends with SIGKILL.
    assert s["lastState"]["terminated"]["exitCode"] == 137, s


def test_a_startup_probe_holds_off_the_liveness_probe(kubectl):
    script = "sleep 5; httpd -f -p 8080 -h /www"
    startup = {"tcpSocket": {"port": 8080}, "periodSeconds": 1, "failureThreshold": 30}
    liveness = {"tcpSocket": {"port": 8080}, "periodSeconds": 1, "failureThreshold": 1}
    create(kubectl, pod("slowstart", ["sh", "-c", script], restart="Always",
                        container={"startupProbe": startup, "livenessProbe": liveness}))
    p = phase_of(kubectl, "slowstart", "Running")
    assert container_status(p)["started"] is False, container_status(p)
    p = wait_for("started and Ready", lambda: (lambda p: p if ready_condition(p) == "True" else None)(get(kubectl, "slowstart")), timeout=30)
    s = container_status(p)
    assert s["started"] is True and s["restartCount"] == 0, s


def test_a_configmap_volume_updates_in_place_after_kubectl_edit(kubectl):
    import os
    kubectl("create", "configmap", "palette", "--from-literal=color=blue")
    doc = pod("reader", ["sh", "-c", "while true; do cat /config/color; echo; sleep 1; done"], restart="Always",
              volumes=[{"name": "config", "configMap": {"name": "palette"}}])
    doc["spec"]["containers"][0]["volumeMounts"] = [{"name": "config", "mountPath": "/config"}]
    create(kubectl, doc)
    phase_of(kubectl, "reader", "Running")
    wait_for("the first value", lambda: kubectl("logs", "reader", "--tail=1").strip() == "blue")
    kubectl("edit", "configmap", "palette", env={**os.environ, "EDITOR": "sed -i s/color:\\ blue/color:\\ green/"})
    # Kubernetes promises the new value within about a minute; skiff refreshes every 10 s.
    wait_for("the edited value, in place", lambda: kubectl("logs", "reader", "--tail=1").strip() == "green", timeout=40)
    assert container_status(get(kubectl, "reader"))["restartCount"] == 0


def test_a_sidecar_keeps_running_beside_the_containers(kubectl):
    doc = pod("withsidecar", ["sh", "-c", "echo main; while true; do sleep 1; done"], restart="Always")
    doc["spec"]["initContainers"] = [
        {"name": "setup", "image": IMAGE, "command": ["sh", "-c", "echo setup done"]},
        {"name": "sidecar", "image": IMAGE, "restartPolicy": "Always", "command": ["sh", "-c", "while true; do sleep 1; done"]},
    ]
    create(kubectl, doc)
    p = phase_of(kubectl, "withsidecar", "Running")
    time.sleep(2)
    p = get(kubectl, "withsidecar")
    inits = {c["name"]: c for c in p["status"]["initContainerStatuses"]}
    assert inits["setup"]["state"]["terminated"]["reason"] == "Completed", inits
    assert "running" in inits["sidecar"]["state"] and inits["sidecar"]["restartCount"] == 0, inits
    assert "running" in container_status(p)["state"]


def test_an_exec_liveness_probe_runs_in_the_container(kubectl):
    script = "touch /tmp/healthy; sleep 4; rm /tmp/healthy; while true; do sleep 1; done"
    probe = {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 1, "failureThreshold": 1}
    create(kubectl, pod("execlive", ["sh", "-c", script], restart="Always", container={"livenessProbe": probe}))
    p = phase_of(kubectl, "execlive", "Running")
    assert container_status(p)["restartCount"] == 0
    s = wait_for("a restart once /tmp/healthy is gone", lambda: (lambda s: s if s["restartCount"] >= 1 else None)(
        container_status(get(kubectl, "execlive"))), timeout=40)
    assert s["lastState"]["terminated"]["exitCode"] == 137, s


def test_hooks_run_and_sigterm_comes_after_prestop(kubectl, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    script = "trap 'echo TERM >> /shared/log; exit 0' TERM; while true; do sleep 0.1; done"
    container = {
        "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
        "lifecycle": {
            "postStart": {"exec": {"command": ["sh", "-c", "echo postStart >> /shared/log"]}},
            "preStop": {"exec": {"command": ["sh", "-c", "echo preStop >> /shared/log"]}},
        },
    }
    create(kubectl, pod("hooked", ["sh", "-c", script], restart="Always", terminationGracePeriodSeconds=30,
                        container=container, volumes=[{"name": "shared", "hostPath": {"path": str(shared)}}]))
    phase_of(kubectl, "hooked", "Running")
    wait_for("postStart", lambda: (shared / "log").exists() and "postStart" in (shared / "log").read_text())
    started = time.monotonic()
    kubectl("delete", "pod", "hooked", "--wait=true", "--timeout=60s")
    assert time.monotonic() - started < 20
    assert (shared / "log").read_text().split() == ["postStart", "preStop", "TERM"]
