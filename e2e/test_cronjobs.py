"""CronJobs on simulated nodes (whose pods finish after the seconds of their
`sim.skiff.io/run-seconds` annotation, with the exit code of `sim.skiff.io/exit-code`):
Jobs every minute named after their scheduled time, Forbid and Replace with long-running
Jobs, history limits, suspend and resume, `kubectl create job --from`, time zones, and
the schedules and zones the API refuses. The scheduled CronJobs are created together when
the module starts, so that their tests share the same two minute ticks."""

import calendar
import json
import time

import pytest

from conftest import wait_for
from scheduling import running_fleet

SCHEDULED = "batch.kubernetes.io/cronjob-scheduled-timestamp"


def cronjob(name, schedule="*/1 * * * *", run_seconds=1, exit_code=0, **spec):
    annotations = {"sim.skiff.io/run-seconds": str(run_seconds), "sim.skiff.io/exit-code": str(exit_code)}
    job_spec = {"backoffLimit": 0,
                "template": {"metadata": {"annotations": annotations},
                             "spec": {"restartPolicy": "Never", "containers": [{"name": "work", "image": "busybox"}]}}}
    body = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": "default"},
            "spec": {"schedule": schedule,
                     "jobTemplate": {"metadata": {"labels": {"cron": name}, "annotations": {"from": name}},
                                     "spec": job_spec}}}
    body["spec"].update(spec)
    return body


def create(kubectl, *objects):
    kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def get(kubectl, kind, name):
    return json.loads(kubectl("get", kind, name, "-o", "json"))


def jobs_of(kubectl, name):
    """The Jobs a CronJob scheduled (named `<cronjob>-<minutes>`), oldest first."""
    items = json.loads(kubectl("get", "jobs", "-l", f"cron={name}", "-o", "json"))["items"]
    return sorted((j for j in items if j["metadata"]["name"].removeprefix(f"{name}-").isdigit()),
                  key=lambda j: j["metadata"]["name"])


def finished(job, type_="Complete"):
    return any(c["type"] == type_ and c["status"] == "True" for c in job.get("status", {}).get("conditions", []))


def reasons(kubectl, name):
    items = json.loads(kubectl("get", "events", "-o", "json"))["items"]
    return [e["reason"] for e in items if e["involvedObject"]["kind"] == "CronJob" and e["involvedObject"]["name"] == name]


class Ticks:
    """The minute boundaries after the scheduled CronJobs were created: the first is the
    first whole minute after their creationTimestamp, as the controller counts."""

    def __init__(self, created):
        self.first = (created // 60 + 1) * 60

    def wait(self, n, slack=3):
        """Sleeps until `slack` seconds after the n-th tick (1-based)."""
        time.sleep(max(0.0, self.first + 60 * (n - 1) + slack - time.time()))


@pytest.fixture(scope="module", autouse=True)
def fleet(skiff, kubectl):
    yield from running_fleet(skiff, kubectl, 3, "cron")


@pytest.fixture(scope="module")
def ticks(fleet, kubectl):
    # All in the same minute, so that they share their ticks.
    if time.time() % 60 > 55:
        time.sleep(60 - time.time() % 60)
    create(kubectl,
           cronjob("every", successfulJobsHistoryLimit=1),
           cronjob("failing", exit_code=1, failedJobsHistoryLimit=1),
           cronjob("forbid", run_seconds=300, concurrencyPolicy="Forbid", timeZone="Asia/Kolkata"),
           cronjob("replace", run_seconds=300, concurrencyPolicy="Replace"),
           cronjob("paused", suspend=True))
    created = get(kubectl, "cronjob", "every")["metadata"]["creationTimestamp"]
    return Ticks(calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ")))


def test_invalid_schedules_and_time_zones_are_rejected(kubectl):
    cases = [
        ({"schedule": "* * *"}, 'spec.schedule: Invalid value: "* * *": expected exactly 5 fields, found 3: [* * *]'),
        ({"schedule": "61 * * * *"}, 'spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61'),
        ({"schedule": "@fortnightly"}, 'spec.schedule: Invalid value: "@fortnightly": unrecognized descriptor: @fortnightly'),
        ({"schedule": "TZ=UTC 0 * * * *"},
         'spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead'),
        ({"timeZone": "Mars/Olympus"}, 'spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus'),
    ]
    for spec, message in cases:
        res = kubectl("create", "-f", "-", check=False, input=json.dumps(cronjob("bad", **spec)))
        assert res.returncode != 0, spec
        assert 'The CronJob "bad" is invalid' in res.stderr and message in res.stderr, res.stderr
    long_name = "x" * 53
    res = kubectl("create", "-f", "-", check=False, input=json.dumps(cronjob(long_name)))
    assert f'metadata.name: Invalid value: "{long_name}": must be no more than 52 characters' in res.stderr
    # The descriptors, @every and a known zone are accepted.
    create(kubectl, *(cronjob(f"ok-{i}", schedule=s, suspend=True, timeZone="Europe/Berlin")
                      for i, s in enumerate(["@hourly", "@weekly", "@every 90m", "0 9 * jan-mar mon-fri"])))


def test_create_job_from_a_cronjob(kubectl):
    create(kubectl, cronjob("yearly", schedule="0 0 1 1 *"))
    kubectl("create", "job", "by-hand", "--from=cronjob/yearly")
    job = get(kubectl, "job", "by-hand")
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["metadata"]["labels"]["cron"] == "yearly"
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("CronJob", "yearly", get(kubectl, "cronjob", "yearly")["metadata"]["uid"])
    kubectl("wait", "--for=condition=complete", "job/by-hand", "--timeout=60s", timeout=70)


def test_a_job_every_minute(kubectl, ticks):
    created = wait_for("the first Job", lambda: jobs_of(kubectl, "every"), timeout=70)
    job = created[0]
    # Named after its scheduled time in minutes since the epoch.
    assert job["metadata"]["name"] == f"every-{ticks.first // 60}"
    assert job["metadata"]["annotations"][SCHEDULED] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ticks.first))
    assert job["metadata"]["annotations"]["from"] == "every"
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("CronJob", "every", True)
    wait_for("the Job to complete", lambda: finished(get(kubectl, "job", job["metadata"]["name"])), timeout=30)
    status = wait_for("the last successful time",
                      lambda: (s := get(kubectl, "cronjob", "every").get("status", {})).get("lastSuccessfulTime") and s)
    assert status["lastScheduleTime"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ticks.first))
    assert "active" not in status
    assert {"SuccessfulCreate", "SawCompletedJob"} <= set(reasons(kubectl, "every"))
    assert "every" in kubectl("get", "cronjobs")


def test_a_suspended_cronjob_runs_nothing_until_resumed(kubectl, ticks):
    ticks.wait(1, slack=5)
    assert jobs_of(kubectl, "paused") == []
    assert "lastScheduleTime" not in get(kubectl, "cronjob", "paused").get("status", {})
    kubectl("patch", "cronjob", "paused", "--type=merge", "-p", '{"spec":{"suspend":false}}')
    # The time missed while suspended runs at once.
    jobs = wait_for("a Job after resuming", lambda: jobs_of(kubectl, "paused"), timeout=15)
    assert jobs[0]["metadata"]["name"].startswith("paused-")


def test_forbid_never_runs_two_at_once(kubectl, ticks):
    first = wait_for("the first Job", lambda: jobs_of(kubectl, "forbid"), timeout=70)[0]
    # Scheduled at the tick, shown in the CronJob's time zone (India is 5:30 ahead of UTC).
    assert first["metadata"]["annotations"][SCHEDULED] == time.strftime(
        "%Y-%m-%dT%H:%M:%S+05:30", time.gmtime(ticks.first + 5 * 3600 + 30 * 60))
    ticks.wait(2)
    wait_for("the second tick to be skipped", lambda: "JobAlreadyActive" in reasons(kubectl, "forbid"))
    jobs = jobs_of(kubectl, "forbid")
    assert [j["metadata"]["name"] for j in jobs] == [first["metadata"]["name"]]
    status = get(kubectl, "cronjob", "forbid")["status"]
    assert [a["name"] for a in status["active"]] == [first["metadata"]["name"]]
    assert status["lastScheduleTime"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ticks.first))


def test_replace_deletes_the_running_job(kubectl, ticks):
    ticks.wait(2)
    second = f"replace-{ticks.first // 60 + 1}"

    def replaced():
        status = get(kubectl, "cronjob", "replace").get("status", {})
        return [a["name"] for a in status.get("active", [])] == [second]

    wait_for("the second Job to replace the first", replaced)
    wait_for("the first Job to go", lambda: [j["metadata"]["name"] for j in jobs_of(kubectl, "replace")] == [second])
    assert "SuccessfulDelete" in reasons(kubectl, "replace")


def test_history_limits_keep_the_newest_finished_jobs(kubectl, ticks):
    ticks.wait(2)
    second_tick = ticks.first // 60 + 1

    def only_the_second(name, type_):
        jobs = jobs_of(kubectl, name)
        return [j["metadata"]["name"] for j in jobs] == [f"{name}-{second_tick}"] and finished(jobs[0], type_)

    wait_for("one successful Job kept", lambda: only_the_second("every", "Complete"), timeout=40)
    wait_for("one failed Job kept", lambda: only_the_second("failing", "Failed"), timeout=40)
    assert "SuccessfulDelete" in reasons(kubectl, "every")
    assert "SuccessfulDelete" in reasons(kubectl, "failing")
