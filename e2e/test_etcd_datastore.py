"""`skiff server --datastore-endpoint`: the control plane keeps its state in etcd, under
kube-apiserver's key layout and revisions, so that several servers can share it; a bad or
unreachable endpoint is a clear error at start."""

import json
import subprocess
import threading

import pytest

from conftest import SKIFF_BIN, free_port, wait_for
from etcd_cluster import EtcdCluster, servers  # noqa: F401 (servers: a fixture)


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    cluster = EtcdCluster(tmp_path_factory.mktemp("etcd"))
    yield cluster
    cluster.stop()


def test_objects_live_in_etcd_at_its_revisions_and_survive_a_killed_server(etcd, servers):
    a = servers(etcd, "a")
    a.kubectl("create", "configmap", "settings", "--from-literal=colour=blue")
    cm = json.loads(a.kubectl("get", "configmap", "settings", "-o", "json"))
    value, mod_revision = etcd.get("/registry/core/configmaps/default/settings")
    assert json.loads(value)["data"] == {"colour": "blue"}
    assert cm["metadata"]["resourceVersion"] == str(mod_revision)
    a.kill9()
    a.start()
    assert a.kubectl("get", "configmap", "settings", "-o", "jsonpath={.data.colour}") == "blue"


def test_the_prefix_decides_where_the_keys_live(etcd, servers):
    b = servers(etcd, "prefixed", "--etcd-prefix", "/other-cluster")
    b.kubectl("create", "configmap", "elsewhere")
    assert etcd.get("/other-cluster/core/configmaps/default/elsewhere") is not None
    assert etcd.get("/registry/core/configmaps/default/elsewhere") is None


def test_two_servers_on_one_etcd_see_each_others_writes_and_watches(etcd, servers):
    # A cluster of their own on the shared etcd: the first test's server founded the one at /registry.
    first = servers(etcd, "first", "--etcd-prefix", "/pair")
    second = servers(etcd, "second", "--etcd-prefix", "/pair", join=first)
    watch = second.kubectl_popen("get", "configmaps", "-w", "--output-watch-events",
                                 "-o", "custom-columns=EVENT:.type,NAME:.object.metadata.name", "--no-headers")
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(watch.stdout), daemon=True)
    reader.start()
    try:
        wait_for("the watch to start", lambda: any("kube-root-ca.crt" in line for line in seen))
        first.kubectl("create", "configmap", "shared", "--from-literal=from=first")
        wait_for("the write through the first server on the second's watch",
                 lambda: any(line.split() == ["ADDED", "shared"] for line in seen))
    finally:
        watch.kill()
    assert second.kubectl("get", "configmap", "shared", "-o", "jsonpath={.data.from}") == "first"
    second.kubectl("delete", "configmap", "shared")
    assert first.kubectl("get", "configmap", "shared", check=False).returncode != 0
    names = lambda server: server.kubectl("get", "namespaces", "-o", "name").split()  # noqa: E731
    assert names(first) == names(second)


@pytest.mark.parametrize("endpoint, message", [
    ("postgres://127.0.0.1/skiff", "is not an etcd client URL"),
    ("http://127.0.0.1:{closed}", "cannot reach etcd at http://127.0.0.1:{closed}"),
])
def test_a_datastore_that_cannot_be_used_stops_the_server_with_a_reason(tmp_path, endpoint, message):
    closed = free_port()
    endpoint, message = endpoint.format(closed=closed), message.format(closed=closed)
    res = subprocess.run([SKIFF_BIN, "server", "--data-dir", str(tmp_path / "data"), "--disable-agent",
                          "--bind-address", "127.0.0.1", "--https-port", str(free_port()),
                          "--datastore-endpoint", endpoint], capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    assert message in res.stderr, res.stderr
