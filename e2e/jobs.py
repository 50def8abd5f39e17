"""Helpers shared by the Job tests: Jobs whose pods run on simulated nodes for the seconds
of their `sim.skiff.io/run-seconds` annotation (forever when None) and exit with the code
of `sim.skiff.io/exit-code`, and what kubectl says of them."""

import json

from conftest import wait_for


def job(name, run_seconds=1, exit_code=0, sim=None, **spec):
    """A Job in `default` with `spec`; `sim` adds annotations for the simulated pods."""
    annotations = {"sim.skiff.io/exit-code": str(exit_code), **(sim or {})}
    if run_seconds is not None:
        annotations["sim.skiff.io/run-seconds"] = str(run_seconds)
    body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "default"},
            "spec": {"template": {"metadata": {"annotations": annotations},
                                  "spec": {"restartPolicy": "Never", "containers": [{"name": "work", "image": "busybox"}]}}}}
    body["spec"].update(spec)
    return body


def create(kubectl, obj):
    kubectl("create", "-f", "-", input=json.dumps(obj))


def get(kubectl, name):
    return json.loads(kubectl("get", "job", name, "-o", "json"))


def pods_of(kubectl, name):
    return json.loads(kubectl("get", "pods", "-l", f"batch.kubernetes.io/job-name={name}", "-o", "json"))["items"]


def condition(doc, type_):
    return next((c for c in doc.get("status", {}).get("conditions", []) if c["type"] == type_), None)


def wait_condition(kubectl, name, type_, timeout=60):
    kubectl("wait", f"--for=condition={type_}", f"job/{name}", f"--timeout={timeout}s", timeout=timeout + 10)


INDEX = "batch.kubernetes.io/job-completion-index"


def pod_of_index(kubectl, name, index, timeout=30):
    """The one live (not finished, not being deleted) pod of this index of an Indexed Job."""
    def live():
        pods = [p for p in pods_of(kubectl, name)
                if p["metadata"]["annotations"].get(INDEX) == str(index)
                and p["status"].get("phase") in (None, "Pending", "Running") and not p["metadata"].get("deletionTimestamp")]
        return pods[0] if len(pods) == 1 else None
    return wait_for(f"a pod for index {index} of {name}", live, timeout=timeout)
