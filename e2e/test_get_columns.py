"""`kubectl get` columns for nodes, jobs, cronjobs and events, as Kubernetes prints them
(the server sends the Table; kubectl only lays it out). Columns are split on runs of two or
more spaces, since some headers (LAST SEEN, LAST SCHEDULE) and cells hold one space."""

import json
import re

import pytest

# The API server's behaviour alone: without controllers, the workloads created here start no
# pods, and the events listed are only the test's own.
SKIFF_ARGS = ["--disable-controller-manager"]


def table(text):
    lines = [line for line in text.splitlines() if line.strip()]
    split = lambda line: re.split(r"\s{2,}", line.strip())
    return split(lines[0]), [split(line) for line in lines[1:]]


@pytest.fixture(scope="module", autouse=True)
def objects(kubectl):
    kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-1", "labels": {"node-role.kubernetes.io/worker": ""}}},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once", "namespace": "default"},
         "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly", "namespace": "default"},
         "spec": {"schedule": "0 3 * * *", "timeZone": "Etc/UTC", "jobTemplate": {"spec": {"template": {"spec": {
             "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}},
        {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "once.1", "namespace": "default"},
         "involvedObject": {"kind": "Job", "name": "once", "namespace": "default"}, "reason": "Started",
         "message": "the job began", "type": "Normal", "count": 1,
         "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z"},
    ]}))
    # What a node agent reports, through the status subresource.
    kubectl("patch", "node/worker-1", "--subresource=status", "--type=merge", "-p", json.dumps({"status": {
        "nodeInfo": {"kubeletVersion": "v1.37.0"}, "conditions": [{"type": "Ready", "status": "True"}]}}))


def test_nodes(kubectl):
    header, rows = table(kubectl("get", "nodes"))
    assert header == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert rows[0][:3] == ["worker-1", "Ready", "worker"] and rows[0][4] == "v1.37.0"
    header, _ = table(kubectl("get", "nodes", "-o", "wide"))
    assert header == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE",
                      "KERNEL-VERSION", "CONTAINER-RUNTIME"]


def test_jobs(kubectl):
    header, rows = table(kubectl("get", "jobs"))
    assert header == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert rows[0][0] == "once" and rows[0][2] == "0/1"
    header, _ = table(kubectl("get", "jobs", "-o", "wide"))
    assert header == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]


def test_cronjobs(kubectl):
    header, rows = table(kubectl("get", "cronjobs"))
    assert header == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"]
    assert rows[0][:6] == ["nightly", "0 3 * * *", "Etc/UTC", "False", "0", "<none>"]
    header, _ = table(kubectl("get", "cronjobs", "-o", "wide"))
    assert header == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE", "CONTAINERS",
                      "IMAGES", "SELECTOR"]


def test_events(kubectl):
    header, rows = table(kubectl("get", "events"))
    assert header == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert rows[0][1:] == ["Normal", "Started", "job/once", "the job began"]
    header, _ = table(kubectl("get", "events", "-o", "wide"))
    assert header == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE", "FIRST SEEN",
                      "COUNT", "NAME"]
