"""Jobs on simulated nodes (whose pods finish after the seconds of their
`sim.skiff.io/run-seconds` annotation, with the exit code of `sim.skiff.io/exit-code`):
completions with parallelism, Indexed completion, backoffLimit, activeDeadlineSeconds,
suspend and resume, and the tracking finalizer."""

import threading

import kubernetes
import pytest

from conftest import wait_for
from jobs import condition, create, get, job, pods_of, wait_condition
from scheduling import running_fleet


@pytest.fixture(scope="module", autouse=True)
def fleet(skiff, kubectl):
    yield from running_fleet(skiff, kubectl, 3, "job")


def test_completions_run_at_most_parallelism_pods_at_once(kubectl, k8s):
    running = {}
    most = [0]
    w = kubernetes.watch.Watch()

    def follow():
        try:
            for event in w.stream(kubernetes.client.CoreV1Api(k8s).list_namespaced_pod, "default",
                                  label_selector="batch.kubernetes.io/job-name=six"):
                pod = event["object"]
                if event["type"] != "DELETED" and pod.status.phase in (None, "Pending", "Running") and not pod.metadata.deletion_timestamp:
                    running[pod.metadata.name] = True
                else:
                    running.pop(pod.metadata.name, None)
                most[0] = max(most[0], len(running))
        except Exception:  # the stream ends when the test stops the watch
            pass

    threading.Thread(target=follow, daemon=True).start()
    create(kubectl, job("six", completions=6, parallelism=3))
    wait_condition(kubectl, "six", "complete")
    w.stop()
    j = get(kubectl, "six")
    assert j["status"]["succeeded"] == 6
    assert "failed" not in j["status"] and "active" not in j["status"]
    assert j["status"]["completionTime"] and j["status"]["startTime"]
    assert condition(j, "SuccessCriteriaMet")["status"] == "True"
    assert condition(j, "Complete")["reason"] == "CompletionsReached"
    assert 1 < most[0] <= 3
    pods = pods_of(kubectl, "six")
    assert len(pods) == 6 and all(p["status"]["phase"] == "Succeeded" for p in pods)
    # Counted pods give up the tracking finalizer.
    assert all("batch.kubernetes.io/job-tracking" not in p["metadata"].get("finalizers", []) for p in pods)


def test_an_indexed_job_completes_every_index(kubectl):
    create(kubectl, job("indexed", completions=4, parallelism=2, completionMode="Indexed"))
    wait_condition(kubectl, "indexed", "complete")
    j = get(kubectl, "indexed")
    assert j["status"]["completedIndexes"] == "0-3"
    assert j["status"]["succeeded"] == 4
    pods = pods_of(kubectl, "indexed")
    indexes = sorted(int(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]) for p in pods)
    assert indexes == [0, 1, 2, 3]
    for p in pods:
        i = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        assert p["metadata"]["name"].startswith(f"indexed-{i}-")
        assert p["spec"]["hostname"] == f"indexed-{i}"
        env = p["spec"]["containers"][0]["env"]
        assert {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                "fieldPath": "metadata.labels['batch.kubernetes.io/job-completion-index']"}}} in env


def test_a_failing_job_stops_at_its_backoff_limit(kubectl):
    create(kubectl, job("doomed", run_seconds=0, exit_code=1, backoffLimit=1))
    wait_condition(kubectl, "doomed", "failed", timeout=90)
    j = get(kubectl, "doomed")
    assert j["status"]["failed"] == 2
    assert condition(j, "Failed")["reason"] == "BackoffLimitExceeded"
    assert condition(j, "Failed")["message"] == "Job has reached the specified backoff limit"
    assert condition(j, "FailureTarget")["status"] == "True"
    pods = pods_of(kubectl, "doomed")
    assert len(pods) == 2 and all(p["status"]["phase"] == "Failed" for p in pods)
    # The replacement waited out the back-off after the first failure.
    started = sorted(p["metadata"]["creationTimestamp"] for p in pods)
    assert started[0] != started[1]


def test_a_job_past_its_deadline_fails_and_its_pods_go(kubectl):
    create(kubectl, job("late", run_seconds=600, parallelism=2, completions=2, activeDeadlineSeconds=2))
    wait_condition(kubectl, "late", "failed", timeout=30)
    assert condition(get(kubectl, "late"), "Failed")["reason"] == "DeadlineExceeded"
    # Its running pods were deleted (counted as failed), and once counted they are gone.
    wait_for("the pods to go", lambda: not pods_of(kubectl, "late"))
    wait_for("both counted as failed", lambda: get(kubectl, "late")["status"].get("failed") == 2)


def test_a_suspended_job_runs_nothing_until_resumed(kubectl):
    create(kubectl, job("paused", completions=2, suspend=True))
    wait_for("the Suspended condition", lambda: (condition(get(kubectl, "paused"), "Suspended") or {}).get("status") == "True")
    assert pods_of(kubectl, "paused") == []
    assert "startTime" not in get(kubectl, "paused")["status"]
    kubectl("patch", "job", "paused", "--type=merge", "-p", '{"spec":{"suspend":false}}')
    wait_condition(kubectl, "paused", "complete")
    j = get(kubectl, "paused")
    assert condition(j, "Suspended")["status"] == "False" and condition(j, "Suspended")["reason"] == "JobResumed"
    assert j["status"]["succeeded"] == 2


def test_a_finished_job_with_a_ttl_is_deleted_with_its_pods(kubectl):
    create(kubectl, job("brief", ttlSecondsAfterFinished=2))
    wait_condition(kubectl, "brief", "complete")
    assert pods_of(kubectl, "brief")
    wait_for("the Job to go", lambda: not kubectl("get", "job", "brief", "--ignore-not-found", "-o", "name").strip(), timeout=30)
    # Deleted in the foreground, as Kubernetes deletes it: its pods went first.
    assert not pods_of(kubectl, "brief")


def test_deleting_a_running_job_removes_its_pods(kubectl):
    create(kubectl, job("dropped", run_seconds=600, parallelism=2, completions=2))
    wait_for("2 running pods", lambda: [p["status"].get("phase") for p in pods_of(kubectl, "dropped")] == ["Running", "Running"])
    kubectl("delete", "job", "dropped")
    # The pods hold the tracking finalizer; with no Job left to count them, it is removed.
    wait_for("the pods to go", lambda: not pods_of(kubectl, "dropped"), timeout=30)


def test_a_work_queue_job_lets_its_workers_finish(kubectl):
    create(kubectl, job("queue", run_seconds=1, parallelism=3))
    wait_condition(kubectl, "queue", "complete")
    j = get(kubectl, "queue")
    assert j["status"]["succeeded"] == 3
    assert "failed" not in j["status"]
