"""How Jobs handle failures and early success, on simulated nodes: a podFailurePolicy that
fails the Job on an exit code or ignores pods disrupted by an eviction, backoffLimitPerIndex
with failed indexes and the failure count a replacement carries on, a successPolicy met by
one index, podReplacementPolicy Failed against TerminatingOrFailed, and the policies the API
refuses. Simulated pods here run until the test patches their run time (and exit code) in,
which the simulator reads when they finish."""

import json

import kubernetes
import pytest

from conftest import wait_for
from jobs import INDEX, condition, create, get, job, pod_of_index, pods_of, wait_condition
from scheduling import running_fleet

FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"


@pytest.fixture(scope="module", autouse=True)
def fleet(skiff, kubectl):
    yield from running_fleet(skiff, kubectl, 3, "policy")


def finish(kubectl, pod, exit_code=0):
    """Makes a running simulated pod exit now, with this code."""
    patch = {"metadata": {"annotations": {"sim.skiff.io/run-seconds": "0", "sim.skiff.io/exit-code": str(exit_code)}}}
    kubectl("patch", "pod", pod["metadata"]["name"], "--type=merge", "-p", json.dumps(patch))


def test_an_exit_code_matching_a_fail_job_rule_fails_the_job_at_once(kubectl):
    rules = [{"action": "FailJob", "onExitCodes": {"containerName": "work", "operator": "In", "values": [42]}}]
    create(kubectl, job("fatal", run_seconds=0, exit_code=42, backoffLimit=6, podFailurePolicy={"rules": rules}))
    wait_condition(kubectl, "fatal", "failed")
    j = get(kubectl, "fatal")
    [pod] = pods_of(kubectl, "fatal")
    failed = condition(j, "Failed")
    assert (failed["reason"], failed["message"]) == (
        "PodFailurePolicy", f"Container work for pod default/{pod['metadata']['name']} failed with exit code 42 matching FailJob rule at index 0")
    assert condition(j, "FailureTarget")["reason"] == "PodFailurePolicy"
    assert j["status"]["failed"] == 1
    # A podFailurePolicy implies that only failed pods are replaced.
    assert j["spec"]["podReplacementPolicy"] == "Failed"


def test_a_pod_disrupted_by_an_eviction_is_replaced_without_counting_as_a_failure(kubectl, k8s):
    rules = [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
             {"action": "FailJob", "onExitCodes": {"operator": "NotIn", "values": [0]}}]
    create(kubectl, job("tolerant", run_seconds=None, backoffLimit=0, podFailurePolicy={"rules": rules}))
    first = wait_for("a running pod", lambda: next((p for p in pods_of(kubectl, "tolerant") if p["status"].get("phase") == "Running"), None))
    body = kubernetes.client.V1Eviction(metadata=kubernetes.client.V1ObjectMeta(name=first["metadata"]["name"], namespace="default"))
    kubernetes.client.CoreV1Api(k8s).create_namespaced_pod_eviction(first["metadata"]["name"], "default", body)
    # The evicted pod ends Failed (exit code 143, which the FailJob rule would match) but
    # DisruptionTarget comes first: the Job replaces it and counts nothing.
    second = wait_for("a replacement", lambda: next((p for p in pods_of(kubectl, "tolerant")
                                                      if p["metadata"]["uid"] != first["metadata"]["uid"]
                                                      and p["status"].get("phase") == "Running"), None))
    finish(kubectl, second)
    wait_condition(kubectl, "tolerant", "complete")
    j = get(kubectl, "tolerant")
    assert j["status"]["succeeded"] == 1 and "failed" not in j["status"]


def test_an_index_past_its_backoff_limit_fails_alone_and_the_job_fails_once_every_index_is_done(kubectl):
    create(kubectl, job("per-index", run_seconds=None, completions=3, parallelism=3, completionMode="Indexed",
                        backoffLimitPerIndex=0))
    pods = [pod_of_index(kubectl, "per-index", i) for i in range(3)]
    assert all(p["metadata"]["annotations"][FAILURE_COUNT] == "0" for p in pods)
    finish(kubectl, pods[1], exit_code=1)
    wait_for("index 1 to fail", lambda: get(kubectl, "per-index")["status"].get("failedIndexes") == "1")
    # Index 1 is not run again; the others still run to the end.
    assert pods_of(kubectl, "per-index") and condition(get(kubectl, "per-index"), "Failed") is None
    finish(kubectl, pods[0])
    finish(kubectl, pods[2])
    wait_condition(kubectl, "per-index", "failed")
    j = get(kubectl, "per-index")
    assert (condition(j, "Failed")["reason"], condition(j, "Failed")["message"]) == ("FailedIndexes", "Job has failed indexes")
    assert (j["status"]["completedIndexes"], j["status"]["failedIndexes"]) == ("0,2", "1")
    assert (j["status"]["succeeded"], j["status"]["failed"]) == (2, 1)
    assert len(pods_of(kubectl, "per-index")) == 3


def test_a_replacement_within_the_per_index_limit_carries_the_failure_count(kubectl):
    create(kubectl, job("retry", run_seconds=None, completions=2, parallelism=2, completionMode="Indexed",
                        backoffLimitPerIndex=1))
    first = pod_of_index(kubectl, "retry", 1)
    finish(kubectl, first, exit_code=1)
    # The replacement waits out the 10 s backoff of the index's first failure.
    second = pod_of_index(kubectl, "retry", 1, timeout=40)
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    assert second["metadata"]["annotations"][FAILURE_COUNT] == "1"
    finish(kubectl, second)
    finish(kubectl, pod_of_index(kubectl, "retry", 0))
    wait_condition(kubectl, "retry", "complete")
    j = get(kubectl, "retry")
    assert (j["status"]["completedIndexes"], j["status"]["failed"]) == ("0,1", 1)
    assert "failedIndexes" not in j["status"]


def test_a_met_success_policy_completes_the_job_and_stops_the_other_indexes(kubectl):
    create(kubectl, job("leader", run_seconds=None, completions=3, parallelism=3, completionMode="Indexed",
                        successPolicy={"rules": [{"succeededIndexes": "0"}]}))
    pods = [pod_of_index(kubectl, "leader", i) for i in range(3)]
    finish(kubectl, pods[0])
    wait_condition(kubectl, "leader", "complete")
    j = get(kubectl, "leader")
    for type_ in ("SuccessCriteriaMet", "Complete"):
        assert (condition(j, type_)["reason"], condition(j, type_)["message"]) == ("SuccessPolicy", "Matched rules at index 0")
    assert (j["status"]["completedIndexes"], j["status"]["succeeded"]) == ("0", 1)
    # The other indexes were stopped.
    wait_for("the other pods to go", lambda: [p["metadata"]["annotations"][INDEX] for p in pods_of(kubectl, "leader")] == ["0"])


def live_pods(kubectl, name):
    return [p for p in pods_of(kubectl, name) if not p["metadata"].get("deletionTimestamp")]


@pytest.mark.parametrize("policy", ["Failed", "TerminatingOrFailed"])
def test_a_deleted_pod_is_replaced_by_the_replacement_policy(kubectl, policy):
    name = f"replace-{policy.lower()}"
    # Its pods take 5 s to stop once deleted.
    create(kubectl, job(name, run_seconds=None, parallelism=2, completions=2, podReplacementPolicy=policy,
                        sim={"sim.skiff.io/stop-seconds": "5"}))
    wait_for("2 running pods", lambda: len([p for p in live_pods(kubectl, name) if p["status"].get("phase") == "Running"]) == 2)
    victim = live_pods(kubectl, name)[0]["metadata"]["name"]
    kubectl("delete", "pod", victim, "--wait=false")
    wait_for("the Job to see it terminating", lambda: get(kubectl, name)["status"].get("terminating") == 1)
    stopping = next(p for p in pods_of(kubectl, name) if p["metadata"]["name"] == victim)
    assert stopping["status"]["phase"] == "Running"
    if policy == "Failed":
        # No replacement while it stops; one once it has failed.
        assert len(live_pods(kubectl, name)) == 1
        wait_for("the victim to go", lambda: victim not in [p["metadata"]["name"] for p in pods_of(kubectl, name)], timeout=20)
        wait_for("a replacement", lambda: len(live_pods(kubectl, name)) == 2)
    else:
        wait_for("a replacement while it stops", lambda: len(live_pods(kubectl, name)) == 2 and
                 victim in [p["metadata"]["name"] for p in pods_of(kubectl, name)], timeout=4)
    kubectl("delete", "job", name)


def test_the_api_refuses_policies_kubernetes_refuses(kubectl):
    bad = job("bad", podFailurePolicy={"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [1]}}]})
    bad["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    out = kubectl("create", "-f", "-", input=json.dumps(bad), check=False)
    assert out.returncode != 0
    assert 'spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is supported when podFailurePolicy is specified' in out.stderr
    assert 'spec.podFailurePolicy.rules[0].action: Invalid value: "FailIndex": requires the backoffLimitPerIndex to be set' in out.stderr
    out = kubectl("create", "-f", "-", input=json.dumps(job("bad", successPolicy={"rules": [{"succeededCount": 1}]})), check=False)
    assert 'spec.successPolicy: Invalid value: "": requires indexed completion mode' in out.stderr
