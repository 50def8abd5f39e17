"""Pods of the project's own test server (crates/testserver, packaged as an image by the
tests): a Deployment of three that the host and other pods reach, probes on its health
endpoints, a graceful stop on SIGTERM, and its memory hog over a limit. Needs root."""

import json
import urllib.request

from agent_pods import IMAGE, TESTSERVER, busybox, container_status, create, get, node_cleanup, phase_of, pod, testserver  # noqa: F401 (fixtures)
from conftest import wait_for

SKIFF_AGENT = True


def server_pod(name, restart="Always", env=None, **container):
    spec = {"image": TESTSERVER, "env": [{"name": k, "value": v} for k, v in (env or {}).items()], **container}
    doc = pod(name, None, restart=restart, container=spec)
    del doc["spec"]["containers"][0]["command"]
    return doc


def http(ip, path, method="GET", timeout=3):
    req = urllib.request.Request(f"http://{ip}:8080{path}", method=method, data=b"" if method == "POST" else None)
    return urllib.request.urlopen(req, timeout=timeout).read().decode()


def reachable(ip):
    try:
        return http(ip, "/healthz") == "ok\n"
    except OSError:
        return False


def test_a_deployment_of_test_servers_is_available_and_reached_by_host_and_pods(kubectl, testserver):
    container = {"name": "server", "image": TESTSERVER,
                 "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1}}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "servers"},
                  "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "servers"}},
                           "template": {"metadata": {"labels": {"app": "servers"}},
                                        "spec": {"terminationGracePeriodSeconds": 2, "containers": [container]}}}}
    create(kubectl, deployment)
    kubectl("rollout", "status", "deployment/servers", "--timeout=60s", timeout=70)
    pods = json.loads(kubectl("get", "pods", "-l", "app=servers", "-o", "json"))["items"]
    by_ip = {p["status"]["podIP"]: p["metadata"]["name"] for p in pods}
    assert len(by_ip) == 3, by_ip
    for ip, name in by_ip.items():
        # Each answers from its own container, with its pod's name as its host name.
        assert http(ip, "/hostname") == f"{name}\n"
        assert http(ip, "/echo-me").startswith("GET /echo-me\n")
    # And a pod reaches each of them.
    fetch = " && ".join(f"wget -q -O - http://{ip}:8080/hostname" for ip in sorted(by_ip))
    create(kubectl, pod("caller", ["sh", "-c", fetch]))
    phase_of(kubectl, "caller", "Succeeded")
    assert sorted(kubectl("logs", "caller").split()) == sorted(by_ip.values())
    kubectl("delete", "deployment", "servers")


def test_readiness_and_liveness_follow_the_health_endpoints(kubectl, testserver):
    doc = server_pod("probed", env={"READY_AFTER": "3"},
                     readinessProbe={"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1},
                     livenessProbe={"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1,
                                    "failureThreshold": 2})
    create(kubectl, doc)
    p = phase_of(kubectl, "probed", "Running")
    assert not container_status(p, "main").get("ready"), "ready before READY_AFTER"
    wait_for("ready once /readyz answers", lambda: container_status(get(kubectl, "probed"), "main").get("ready"), timeout=20)
    http(get(kubectl, "probed")["status"]["podIP"], "/fail-health", method="POST")
    wait_for("a restart after /healthz fails",
             lambda: container_status(get(kubectl, "probed"), "main")["restartCount"] >= 1, timeout=30)


def test_sigterm_comes_first_and_the_server_stops_gracefully(skiff, kubectl, testserver):
    doc = server_pod("graceful", env={"TERM_DELAY": "2"})
    doc["spec"]["terminationGracePeriodSeconds"] = 10
    create(kubectl, doc)
    phase_of(kubectl, "graceful", "Running")
    follow = skiff.kubectl_popen("logs", "-f", "graceful")
    assert follow.stdout.readline() == "listening on 8080\n"
    kubectl("delete", "pod", "graceful", "--wait=false")
    # The server takes TERM_DELAY seconds to stop, well within the grace period, and says so
    # before its log ends.
    out, _ = follow.communicate(timeout=30)
    assert out.splitlines() == ["SIGTERM received", "exiting"], out


def test_the_memory_hog_over_its_limit_is_oom_killed(kubectl, testserver):
    create(kubectl, server_pod("hogger", restart="Never", resources={"limits": {"memory": "48Mi"}}))
    ip = phase_of(kubectl, "hogger", "Running")["status"]["podIP"]
    wait_for("the server up", lambda: reachable(ip))
    http(ip, "/alloc?mb=16", method="POST")
    try:
        http(ip, "/alloc?mb=64", method="POST", timeout=10)
    except OSError:
        pass
    p = phase_of(kubectl, "hogger", "Failed")
    state = container_status(p, "main")["state"]["terminated"]
    assert state["reason"] == "OOMKilled" and state["exitCode"] == 137, state
