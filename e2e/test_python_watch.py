"""Watching with the official Python client: live ADDED, MODIFIED, DELETED in order;
resuming from a resourceVersion; and 410 Gone for one that compaction has removed.

The server keeps one second of history (--history-seconds 1). Background compaction runs
every 60 s (there is no flag for the interval) and compacts at the revision current
`history` ago, so after a restart the first compaction, 60 s later, removes the history
written before the restart. The 410 test therefore waits about a minute."""

import queue
import threading
import time

import kubernetes
import pytest
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

SKIFF_ARGS = ["--history-seconds", "1"]
NS = "default"
COMPACTION_INTERVAL = 60


def cm(name, **data):
    return {"metadata": {"name": name}, "data": data}


# Strategic merge patch (the Python client's default for patches) is not implemented yet.
MERGE = {"_content_type": "application/merge-patch+json"}


@pytest.fixture(scope="module")
def history(skiff):
    """Writes some history, notes an early resourceVersion, then restarts the server so that
    its first background compaction (60 s later) covers that history."""
    core = kubernetes.client.CoreV1Api(skiff.client())
    old = core.create_namespaced_config_map(NS, cm("ancient", v="1")).metadata.resource_version
    core.patch_namespaced_config_map("ancient", NS, {"data": {"v": "2"}}, **MERGE)
    core.create_namespaced_config_map(NS, cm("ancient-2"))
    core.api_client.close()
    skiff.restart()
    return {"old": old, "restarted": time.monotonic()}


@pytest.fixture(scope="module")
def core(skiff, history):
    api = skiff.client()  # made after the restart
    yield kubernetes.client.CoreV1Api(api)
    api.close()


def stream_in_background(core, **kwargs):
    """Streams configmap events on a thread into a queue (None when the stream ends)."""
    events = queue.Queue()
    w = watch.Watch()

    def run():
        try:
            for ev in w.stream(core.list_namespaced_config_map, NS, _request_timeout=30, **kwargs):
                events.put(ev)
        except Exception as e:  # surfaced to the test through the queue
            events.put(e)
        events.put(None)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return w, events


def next_event(events, timeout=10):
    try:
        ev = events.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no watch event within {timeout}s")
    if isinstance(ev, Exception):
        raise ev
    return ev


def test_live_events_in_order(core):
    rv = core.list_namespaced_config_map(NS).metadata.resource_version
    w, events = stream_in_background(core, resource_version=rv, timeout_seconds=20)
    time.sleep(0.3)  # let the watch start; events after rv are delivered either way
    created = core.create_namespaced_config_map(NS, cm("watched", step="1"))
    modified = core.patch_namespaced_config_map("watched", NS, {"data": {"step": "2"}}, **MERGE)
    core.delete_namespaced_config_map("watched", NS)

    seen = []
    while len(seen) < 3:
        ev = next_event(events)
        assert ev is not None, f"watch ended early after {seen}"
        if ev["object"].metadata.name == "watched":
            seen.append(ev)
    w.stop()
    assert [e["type"] for e in seen] == ["ADDED", "MODIFIED", "DELETED"]
    assert seen[0]["object"].data == {"step": "1"}
    assert seen[0]["object"].metadata.resource_version == created.metadata.resource_version
    assert seen[1]["object"].data == {"step": "2"}
    assert seen[1]["object"].metadata.resource_version == modified.metadata.resource_version
    assert seen[2]["object"].metadata.uid == created.metadata.uid
    rvs = [int(e["object"].metadata.resource_version) for e in seen]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3, rvs
    # The typed objects are real models, as with any Kubernetes server.
    assert isinstance(seen[0]["object"], kubernetes.client.V1ConfigMap)


def test_resume_from_a_resource_version_gets_only_later_events(core):
    core.create_namespaced_config_map(NS, cm("before"))
    mark = core.patch_namespaced_config_map("before", NS, {"data": {"x": "1"}}, **MERGE).metadata.resource_version
    core.create_namespaced_config_map(NS, cm("after-1", n="1"))
    core.patch_namespaced_config_map("before", NS, {"data": {"x": "2"}}, **MERGE)
    core.delete_namespaced_config_map("after-1", NS)

    got = []
    for ev in watch.Watch().stream(core.list_namespaced_config_map, NS, resource_version=mark,
                                   timeout_seconds=2, _request_timeout=15):
        got.append((ev["type"], ev["object"].metadata.name, ev["object"].data))
    assert got == [
        ("ADDED", "after-1", {"n": "1"}),
        ("MODIFIED", "before", {"x": "2"}),
        ("DELETED", "after-1", {"n": "1"}),
    ]


def test_watch_from_zero_starts_with_current_objects(core):
    names = []
    for ev in watch.Watch().stream(core.list_namespaced_config_map, NS, resource_version="0",
                                   timeout_seconds=1, _request_timeout=15):
        assert ev["type"] == "ADDED"
        names.append(ev["object"].metadata.name)
    assert {"ancient", "ancient-2", "before"} <= set(names)
    assert "watched" not in names and "after-1" not in names


def test_compacted_resource_version_is_gone(skiff, core, history):
    """After compaction, watching from an old resourceVersion raises 410 Gone."""
    old = history["old"]
    deadline = history["restarted"] + COMPACTION_INTERVAL + 30
    gone = None
    attempts = 0
    while time.monotonic() < deadline:
        attempts += 1
        try:
            # Until compaction runs, this replays history and ends after a second.
            for _ in watch.Watch().stream(core.list_namespaced_config_map, NS, resource_version=old,
                                          timeout_seconds=1, _request_timeout=15):
                pass
        except ApiException as e:
            gone = e
            break
        time.sleep(1)
    assert gone is not None, (
        f"watching from resourceVersion {old} never failed with 410 Gone within {COMPACTION_INTERVAL + 30}s "
        f"of the restart ({attempts} attempts)\n{skiff.log_tail()}")
    assert gone.status == 410, gone
    assert "too old resource version" in str(gone)

    # What a client does next: list again and watch from the list's resourceVersion.
    rv = core.list_namespaced_config_map(NS).metadata.resource_version
    w, events = stream_in_background(core, resource_version=rv, timeout_seconds=10)
    time.sleep(0.2)
    core.create_namespaced_config_map(NS, cm("after-compaction"))
    ev = next_event(events)
    assert (ev["type"], ev["object"].metadata.name) == ("ADDED", "after-compaction")
    w.stop()


def test_list_at_a_compacted_resource_version_is_gone(core, history):
    """Compaction has run (previous test): a list at exactly the old resourceVersion is gone."""
    with pytest.raises(ApiException) as e:
        core.list_namespaced_config_map(NS, resource_version=history["old"], resource_version_match="Exact")
    assert e.value.status == 410
