"""Nothing acknowledged is lost while the store keeps dying: a writer creates and updates
ConfigMaps through the API and keeps a ledger of every write it sent and whether the API
acknowledged it, while the store under the API is killed with SIGKILL at random moments, 20
times -- the server itself on its embedded SQLite store, or one member at a time of a
three-member etcd cluster. After recovery every acknowledged write is there with its
acknowledged content.

The kill moments come from a seed that each test prints; SKIFF_FAULT_SEED=<seed> replays
them (the writer's timing against them still varies from run to run)."""

import collections
import json
import os
import random
import threading
import time

import pytest

from conftest import wait_until
from etcd_cluster import EtcdCluster, servers  # noqa: F401 (servers: a fixture)

NS = "faults"
KILLS = 20
PAUSE = (0.2, 1.5)
# Shorter than the server's own store timeouts on purpose: a write still in the server when
# the writer gives up is only "attempted", and the ledger allows it to land later.
REQUEST_TIMEOUT = 5
COLLECTION = f"/api/v1/namespaces/{NS}/configmaps"

Write = collections.namedtuple("Write", "value acked resource_version")


@pytest.fixture
def rng(request):
    seed = int(os.environ.get("SKIFF_FAULT_SEED") or random.SystemRandom().randrange(2**32))
    print(f"{request.node.name}: seed {seed} (SKIFF_FAULT_SEED={seed} replays the kill moments)")
    return random.Random(seed)


class Writer:
    """Creates and updates ConfigMaps in NS through `server` on a thread, one request at a time,
    and keeps `ledger`: for each object, every write sent to it in order, acknowledged or not.

    Updates carry the resourceVersion they build on, as kubectl replace does. That keeps the
    ledger's order the store's order: a write the writer gave up on cannot land after a later
    one, because by then the version it builds on is gone and it fails with a conflict.
    """

    def __init__(self, server, rng):
        self.server = server
        self.rng = random.Random(rng.random())
        self.ledger = {}
        # name -> the resourceVersion the next update builds on; None until read back.
        self.versions = {}
        self.failures = collections.Counter()
        # Which interval between kills each acknowledgement fell in (the test moves `interval`).
        self.interval = 0
        self.acked_in = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)
        self._error = None

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=REQUEST_TIMEOUT * 3)
        assert not self._thread.is_alive(), "the writer did not stop"
        if self._error is not None and exc[0] is None:
            raise self._error

    def _run(self):
        try:
            while not self._stop.is_set():
                if not self.versions or self.rng.random() < 0.3:
                    self._create()
                else:
                    self._update(self.rng.choice(list(self.versions)))
        except BaseException as e:  # noqa: BLE001 (raised again on the test's thread)
            self._error = e

    def _create(self):
        name = f"cm-{len(self.ledger):05d}"
        value = f"{name}/0"
        body = {"metadata": {"name": name}, "data": {"value": value}}
        self.ledger[name] = [self._send("POST", COLLECTION, body, value)]
        self.versions[name] = self.ledger[name][-1].resource_version

    def _update(self, name):
        version = self.versions[name] or self._read_version(name)
        if version is None:
            return
        value = f"{name}/{len(self.ledger[name])}"
        body = {"metadata": {"name": name, "resourceVersion": version}, "data": {"value": value}}
        self.ledger[name].append(self._send("PUT", f"{COLLECTION}/{name}", body, value))
        self.versions[name] = self.ledger[name][-1].resource_version

    def _read_version(self, name):
        """After a write without an answer, what the object is now (it may hold that write)."""
        try:
            status, _, body = self.server.request("GET", f"{COLLECTION}/{name}", timeout=REQUEST_TIMEOUT)
        except Exception as e:  # noqa: BLE001 (the server may be down; any failure means "later")
            self.failures[f"GET: {type(e).__name__}"] += 1
            time.sleep(0.1)
            return None
        if status == 404:
            # A create that got no answer and did not land: nothing to update. (Should it land
            # yet, the ledger still allows it.)
            del self.versions[name]
            return None
        if status != 200:
            self.failures[f"GET: {status}"] += 1
            time.sleep(0.1)
            return None
        return json.loads(body)["metadata"]["resourceVersion"]

    def _send(self, method, path, body, value):
        try:
            status, _, reply = self.server.request(method, path, body, timeout=REQUEST_TIMEOUT)
        except Exception as e:  # noqa: BLE001 (refused, reset, timed out: all unacknowledged)
            self.failures[f"{method}: {type(e).__name__}"] += 1
            time.sleep(0.1)
            return Write(value, False, None)
        if status not in (200, 201):
            try:
                reason = json.loads(reply).get("message", "")[:80]
            except ValueError:
                reason = reply[:80].decode(errors="replace")
            self.failures[f"{method}: {status} {reason}"] += 1
            time.sleep(0.1)
            return Write(value, False, None)
        obj = json.loads(reply)
        assert obj["data"] == {"value": value}, f"{method} {path} acknowledged other content: {obj}"
        self.acked_in[self.interval] += 1
        return Write(value, True, obj["metadata"]["resourceVersion"])

    def acknowledged(self):
        return sum(w.acked for writes in self.ledger.values() for w in writes)


def lost_writes(ledger, found):
    """What `found` ({name: (value, resourceVersion)}) lacks of `ledger`, one line per object.

    An object may hold its last acknowledged write, or any write sent after it that got no
    answer; an object none of whose writes was acknowledged may also be missing.
    """
    problems = []
    for name, writes in ledger.items():
        acked = [i for i, w in enumerate(writes) if w.acked]
        since = acked[-1] if acked else 0
        allowed = [w.value for w in writes[since:]]
        if name not in found:
            if acked:
                problems.append(f"{name}: missing; acknowledged {writes[since].value!r} "
                                f"at resourceVersion {writes[since].resource_version}")
            continue
        value, version = found[name]
        if value not in allowed:
            problems.append(f"{name}: holds {value!r} at resourceVersion {version}; expected one of "
                            f"{allowed[:5]}{'...' if len(allowed) > 5 else ''} "
                            f"({'acknowledged' if acked else 'attempted'} first)")
        elif acked and value == writes[since].value and version != writes[since].resource_version:
            problems.append(f"{name}: holds {value!r} at resourceVersion {version}, "
                            f"acknowledged at {writes[since].resource_version}")
    problems += [f"{name}: never written, yet present" for name in set(found) - set(ledger)]
    return problems


def read_back(server):
    """Every ConfigMap in NS as a user lists it: {name: (value, resourceVersion)}."""
    def listed():
        status, doc = server.request_json("GET", COLLECTION)
        return doc if status == 200 else None

    doc = wait_until(listed, timeout=30, what="the ConfigMaps to list")
    return {o["metadata"]["name"]: ((o.get("data") or {}).get("value"), o["metadata"]["resourceVersion"])
            for o in doc["items"]
            # The controller manager puts this one in every namespace.
            if o["metadata"]["name"] != "kube-root-ca.crt"}


def check_nothing_lost(server, writer, details):
    found = read_back(server)
    problems = lost_writes(writer.ledger, found)
    if problems:
        # Whether a missing object is missing from the store or only from the list.
        for line in problems[:5]:
            name = line.split(":")[0]
            status, _, body = server.request("GET", f"{COLLECTION}/{name}")
            details += f"\nGET {name} -> {status} {body[:300]!r}"
    assert not problems, (f"{len(problems)} of {len(writer.ledger)} objects lost acknowledged writes "
                          f"(seed in the captured output):\n" + "\n".join(problems[:20]) + details)
    return found


def assert_writes_kept_coming(writer):
    """The check above passes trivially if nothing was acknowledged; so it must have been, in
    most of the intervals between kills, and updates as well as creates."""
    updated = sum(1 for writes in writer.ledger.values() if any(w.acked for w in writes[1:]))
    summary = (f"{writer.acknowledged()} writes acknowledged to {len(writer.ledger)} objects "
               f"({updated} with acknowledged updates); per interval {dict(sorted(writer.acked_in.items()))}; "
               f"failures {dict(writer.failures)}")
    print(summary)
    assert updated >= 20, summary
    assert sum(1 for i in range(KILLS + 1) if writer.acked_in[i]) >= KILLS * 3 // 4, summary


def test_killed_server_on_its_embedded_store_loses_no_acknowledged_write(skiff, rng):
    """The server acknowledges a write only once SQLite has committed it, so a kill -9 at any
    moment -- between requests, mid-request, mid-transaction -- keeps every acknowledged create
    and update when the server starts again on the same data dir and port, 20 times over.
    (A killed process leaves the page cache behind; this shows the commit comes before the
    answer, not that it reaches the disk, which only a power cut would.)"""
    assert skiff.request_json("POST", "/api/v1/namespaces", {"metadata": {"name": NS}})[0] == 201
    with Writer(skiff, rng) as writer:
        for kill in range(KILLS):
            time.sleep(rng.uniform(*PAUSE))
            skiff.kill9()
            writer.interval = kill + 1
            skiff.start()  # on the same data dir and port; waits for /readyz
        time.sleep(rng.uniform(*PAUSE))
    check_nothing_lost(skiff, writer, f"\nserver log:\n{skiff.log_tail(20)}")
    assert_writes_kept_coming(writer)


@pytest.fixture
def etcd(tmp_path_factory):
    cluster = EtcdCluster(tmp_path_factory.mktemp("etcd-faults"), size=3)
    yield cluster
    cluster.stop()


def test_killed_etcd_members_lose_no_acknowledged_write(etcd, servers, rng):
    """A server on a three-member etcd cluster acknowledges a write once etcd's quorum has it,
    so killing one member at a time with kill -9 (two stay up, a quorum) and starting it again
    loses none of them, 20 times over, whichever member it is: the leader, or the one the
    server's requests were going to. Writes during an election may fail; they are not
    acknowledged, and the ledger allows them either way."""
    server = servers(etcd, "server")
    assert server.request_json("POST", "/api/v1/namespaces", {"metadata": {"name": NS}})[0] == 201
    with Writer(server, rng) as writer:
        for kill in range(KILLS):
            time.sleep(rng.uniform(*PAUSE))
            member = rng.randrange(len(etcd.members))
            etcd.kill(member)
            writer.interval = kill + 1
            time.sleep(rng.uniform(*PAUSE))
            etcd.restart(member)
        time.sleep(rng.uniform(*PAUSE))
    server.wait_ready()
    logs = "".join(f"\netcd m{i}:\n" + (etcd.folder / f"etcd-m{i}.log").read_text(errors="replace")[-1500:]
                   for i in range(len(etcd.members)))
    found = check_nothing_lost(server, writer, f"\nserver log:\n{server.log_tail(20)}{logs}")
    assert_writes_kept_coming(writer)

    # And the API did not answer from somewhere else: etcd itself holds what the list showed,
    # at the same revisions.
    for name in rng.sample(sorted(found), min(10, len(found))):
        stored = etcd.get(f"/registry/core/configmaps/{NS}/{name}")
        assert stored is not None, f"{name} is listed but not in etcd"
        value, mod_revision = stored
        assert (json.loads(value)["data"]["value"], str(mod_revision)) == found[name], name
