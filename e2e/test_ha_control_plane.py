"""Three `skiff server`s on a three-member etcd cluster: every server serves every request and
sees what the others write; the scheduler and the controller manager run on one server at a
time (Lease leader election), and another server takes over within 15 s of the leader's
kill -9, while simulated nodes listing every server move to a live one; a watch goes on across
an etcd leader change without losing, repeating or reordering an event; with one etcd member
stopped the API stays writable."""

import http.client
import json
import socket
import subprocess
import threading
import time
from datetime import datetime, timezone

import pytest

from conftest import SKIFF_BIN, wait_for
from etcd_cluster import EtcdCluster, servers  # noqa: F401 (servers: a fixture)

TAKEOVER_LIMIT = 15
WATCHED = [f"c-{i}" for i in range(60)]
KILL_AFTER = 15


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    cluster = EtcdCluster(tmp_path_factory.mktemp("etcd3"), size=3)
    yield cluster
    cluster.stop()


def holder(server, lease):
    status, _, body = server.request("GET", f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{lease}")
    return json.loads(body)["spec"].get("holderIdentity") if status == 200 else None


def holding(server, lease, among):
    """The server of `among` that holds `lease`, as `server` reads it (identities end in the
    server's advertised address and port)."""
    identity = holder(server, lease) or ""
    return next((s for s in among if identity.endswith(f":{s.port}")), None)


def available(server, name):
    res = server.kubectl("get", "deployment", name, "-o", "json", check=False)
    conditions = json.loads(res.stdout).get("status", {}).get("conditions", []) if res.returncode == 0 else []
    return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)


def renewed_since(server, moment):
    """How many node Leases were renewed after `moment` (a UTC datetime)."""
    leases = json.loads(server.kubectl("get", "leases", "-n", "kube-node-lease", "-o", "json"))["items"]
    renewals = [datetime.fromisoformat(lease["spec"]["renewTime"].replace("Z", "+00:00")) for lease in leases]
    return sum(renewal > moment for renewal in renewals)


def test_three_servers_share_the_cluster_and_survive_the_leaders_death(etcd, servers):
    first = servers(etcd, "s0", "--cluster-init")
    group = [first, *(servers(etcd, f"s{i}", join=first) for i in (1, 2))]
    for i, server in enumerate(group):
        server.kubectl("create", "configmap", f"written-through-{i}")
    for server in group:
        names = server.kubectl("get", "configmaps", "-o", "name").split()
        assert {f"configmap/written-through-{i}" for i in range(3)} <= set(names), names

    leader = wait_for("a scheduler leader", lambda: holding(first, "kube-scheduler", group))
    survivors = [s for s in group if s is not leader]
    # The nodes list every server, the one about to die first: they must move to another.
    order = ",".join(s.url for s in [leader, *survivors])
    sim_log = open(leader.data_dir.parent / "sim.log", "wb")
    sim = subprocess.Popen([SKIFF_BIN, "sim", "--nodes", "2", "--kubeconfig", str(survivors[0].kubeconfig),
                            "--server", order], stdout=sim_log, stderr=sim_log)
    try:
        wait_for("the simulated nodes", lambda: len(survivors[0].kubectl("get", "nodes", "-o", "name").split()) == 2)
        killed, killed_at = time.monotonic(), datetime.now(timezone.utc)
        leader.kill9()
        for lease in ("kube-scheduler", "kube-controller-manager"):
            wait_for(f"a new {lease} leader", lambda lease=lease: holding(survivors[0], lease, survivors), timeout=40)
        took = time.monotonic() - killed
        print(f"leaders replaced {took:.1f} s after the kill")
        assert took <= TAKEOVER_LIMIT, f"the new leaders took {took:.1f} s"

        survivors[1].kubectl("create", "deployment", "after-failover", "--image=registry.invalid/app:1", "--replicas=2")
        wait_for("the Deployment to become Available", lambda: available(survivors[0], "after-failover"), timeout=60)
        # The nodes keep renewing their Leases, through a live server.
        wait_for("both node Leases renewed after the kill", lambda: renewed_since(survivors[0], killed_at) == 2,
                 timeout=30)
    finally:
        sim.terminate()
        sim.wait(timeout=10)
        sim_log.close()
    assert "moving to another API server" in (leader.data_dir.parent / "sim.log").read_text(errors="replace")


def all_members_up(etcd):
    """Restarts any member an earlier test left stopped; waits until all answer and one leads."""
    for i, member in enumerate(etcd.members):
        if member.poll() is not None:
            etcd.restart(i)
    wait_for("every etcd member healthy, with a leader",
             lambda: all(etcd._healthy(i) for i in range(len(etcd.members))) and etcd.leader() is not None)


class RawWatch:
    """One watch request kept open, its line-delimited events read on a thread into `events`;
    `ended` says why the stream stopped, if it did."""

    def __init__(self, server, path):
        self.conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=server.ssl_context(), timeout=140)
        self.conn.request("GET", path)
        self.sock = self.conn.sock
        self.response = self.conn.getresponse()
        assert self.response.status == 200, (self.response.status, self.response.read()[:500])
        self.events, self.ended, self.closing = [], None, False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for line in self.response:
                if line.strip():
                    self.events.append(json.loads(line))
            self.ended = "the server ended the stream"
        except Exception as e:  # noqa: BLE001 (reported by the test)
            self.ended = "closed by the test" if self.closing else repr(e)

    def close(self):
        self.closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(timeout=5)
        self.response.close()
        self.conn.close()


def name_of(event):
    """The name of a watch event's object (an ERROR's Status has none)."""
    return event["object"].get("metadata", {}).get("name")


def create_configmap(server, name, failures):
    """Creates ConfigMap `name` in default, retrying a create that failed (an etcd election)
    until it succeeds or a GET finds it (etcd may have applied it all the same); returns its
    resourceVersion. Each failure is noted in `failures`."""
    path = "/api/v1/namespaces/default/configmaps"
    deadline = time.monotonic() + 30
    while True:
        try:
            status, _, body = server.request("POST", path, {"metadata": {"name": name}}, timeout=5)
            if status == 201:
                return json.loads(body)["metadata"]["resourceVersion"]
            assert status in (409, 429) or status >= 500, (name, status, body[:500])
            failures.append((name, status, body[:200]))
        except (OSError, http.client.HTTPException) as e:
            failures.append((name, "no answer", repr(e)))
        try:
            status, _, body = server.request("GET", f"{path}/{name}", timeout=5)
            if status == 200:
                return json.loads(body)["metadata"]["resourceVersion"]
        except (OSError, http.client.HTTPException):
            pass
        assert time.monotonic() < deadline, f"could not create {name}: {failures[-5:]}\n{server.log_tail()}"
        time.sleep(0.1)


def test_a_watch_goes_on_across_an_etcd_leader_change(etcd, servers):
    all_members_up(etcd)
    server = servers(etcd, "watcher", "--etcd-prefix", "/watchleader")
    # The server's own ConfigMap in default comes first, so that the watch sees only the test's.
    wait_for("kube-root-ca.crt in default",
             lambda: server.request("GET", "/api/v1/namespaces/default/configmaps/kube-root-ca.crt")[0] == 200)
    status, listed = server.request_json("GET", "/api/v1/namespaces/default/configmaps")
    assert status == 200, listed
    watch = RawWatch(server, "/api/v1/namespaces/default/configmaps?watch=1&allowWatchBookmarks=false"
                             f"&timeoutSeconds=120&resourceVersion={listed['metadata']['resourceVersion']}")
    written, failures, killed = {}, [], None
    try:
        for i, name in enumerate(WATCHED):
            if i == KILL_AFTER:
                killed = etcd.leader()
                assert killed is not None, "no etcd leader to kill"
                etcd.kill(killed)
                killed_at = time.monotonic()
            written[name] = int(create_configmap(server, name, failures))
            if i == KILL_AFTER:
                first_write = time.monotonic() - killed_at
                wait_for("a new etcd leader", lambda: etcd.leader() not in (None, killed), timeout=15)
                new_leader = etcd.leader()
                elected = time.monotonic() - killed_at
            time.sleep(0.05)
        etcd.restart(killed)
        all_members_up(etcd)
        # A last write: once its event is in, every earlier one (and any repeat of one) would be.
        written["end"] = int(create_configmap(server, "end", failures))
        wait_for("the watch to deliver every create",
                 lambda: ("ADDED", "end") in [(e["type"], name_of(e)) for e in watch.events] or watch.ended, timeout=30)
        ended = watch.ended
    finally:
        watch.close()
        if killed is not None and etcd.members[killed].poll() is not None:
            etcd.restart(killed)
    print(f"killed etcd leader m{killed} (skiff talks to m0 first); m{new_leader} led {elected:.1f} s later; "
          f"first write after the kill {first_write:.1f} s after it; {len(failures)} failed attempts: {failures}")
    seen = [(e["type"], name_of(e), e["object"].get("metadata", {}).get("resourceVersion")) for e in watch.events]
    assert ended is None, f"the watch stopped ({ended}) after {seen}"
    assert not [e for e in watch.events if e["type"] != "ADDED"], seen
    revisions = [int(rv) for _, _, rv in seen]
    assert all(a < b for a, b in zip(revisions, revisions[1:])), seen
    # Each name once, in the order written, at the revision its create got (and etcd holds).
    ours = [(name, int(rv)) for _, name, rv in seen if name in written]
    assert ours == [(name, written[name]) for name in [*WATCHED, "end"]], (seen, written)
    for name, revision in written.items():
        assert etcd.get(f"/watchleader/core/configmaps/default/{name}")[1] == revision, name
    all_members_up(etcd)


def test_the_api_stays_writable_with_an_etcd_member_stopped(etcd, servers):
    # m0 is the first endpoint every server is given, so the one each talks to.
    # A cluster of its own: the first test's servers founded the one at /registry.
    server = servers(etcd, "writer", "--etcd-prefix", "/writer")
    server.kubectl("create", "configmap", "before")
    etcd.kill(0)
    # If m0 led the etcd cluster, the other two elect a new leader first (about a second).
    # A create that etcd applied but answered with an error (a leader change) is there all the same.
    wait_for("a write with member m0 down",
             lambda: server.kubectl("create", "configmap", "during", check=False).returncode == 0
             or server.kubectl("get", "configmap", "during", check=False).returncode == 0, timeout=15)
    # From then on, every request succeeds at its first try.
    for i in range(10):
        server.kubectl("create", "configmap", f"after-{i}")
        assert server.kubectl("get", "configmap", f"after-{i}", "-o", "name") == f"configmap/after-{i}\n"
    assert server.kubectl("get", "configmap", "before", "-o", "name") == "configmap/before\n"
    assert etcd.get("/writer/core/configmaps/default/during") is not None
