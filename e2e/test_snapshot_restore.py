"""Snapshots and recovery: `skiff etcd-snapshot save` on a running server, then a wipe, then
`skiff server --cluster-reset --cluster-reset-restore-path` (which stops when done, as k3s's
does) brings every object back, on the embedded store and on etcd; a damaged embedded store stops the server with a message saying how
to recover."""

import json
import sqlite3
import subprocess

import pytest

from conftest import SKIFF_BIN, Skiff
from etcd_cluster import EtcdCluster

OBJECTS = 30


@pytest.fixture
def started():
    """Servers the test starts, stopped at its end."""
    servers = []
    yield servers
    for server in servers:
        server.stop()


def etcd_in(folder):
    folder.mkdir()
    return EtcdCluster(folder)


def fill(server):
    """A namespace with ConfigMaps and a Secret: what the snapshot must bring back."""
    server.kubectl("create", "namespace", "shop")
    for i in range(OBJECTS):
        server.kubectl("create", "configmap", f"cm-{i}", "-n", "shop", f"--from-literal=n={i}")
    server.kubectl("create", "secret", "generic", "key", "-n", "shop", "--from-literal=password=hunter2")


def save(server, folder, *datastore):
    out = subprocess.run([SKIFF_BIN, "etcd-snapshot", "save", "--data-dir", str(server.data_dir),
                          "--dir", str(folder), *datastore], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    files = list(folder.iterdir())
    assert len(files) == 1 and f"saved {files[0]}" in out.stdout, out.stdout
    assert files[0].stat().st_mode & 0o077 == 0, "a snapshot holds Secrets: only its owner may read it"
    return files[0]


def reset(server, *flags):
    """Runs `skiff server --cluster-reset ...` on the server's data dir, which stops when done."""
    out = subprocess.run([SKIFF_BIN, "server", "--data-dir", str(server.data_dir), "--disable-agent",
                          "--bind-address", "127.0.0.1", "--https-port", str(server.port), *flags,
                          "--cluster-reset", *server.extra_args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "start the server again without --cluster-reset" in out.stderr, out.stderr[-3000:]


def assert_restored(server):
    names = server.kubectl("get", "configmaps", "-n", "shop", "-o", "name").split()
    assert sorted(names) == sorted([f"configmap/cm-{i}" for i in range(OBJECTS)] + ["configmap/kube-root-ca.crt"])
    assert server.kubectl("get", "configmap", "cm-7", "-n", "shop", "-o", "jsonpath={.data.n}") == "7"
    assert server.kubectl("get", "secret", "key", "-n", "shop", "-o", "jsonpath={.data.password}") == "aHVudGVyMg=="
    # What was written after the snapshot is gone.
    assert server.kubectl("get", "configmap", "later", "-n", "shop", check=False).returncode != 0


def test_the_embedded_store_comes_back_from_a_snapshot(tmp_path, started):
    server = Skiff(tmp_path / "data")
    started.append(server)
    server.start()
    fill(server)
    snapshot = save(server, tmp_path / "snapshots")
    server.kubectl("create", "configmap", "later", "-n", "shop")
    _, _, listed = server.request("GET", "/api/v1/namespaces/shop/configmaps")
    last_seen = json.loads(listed)["metadata"]["resourceVersion"]
    server.stop()

    for wiped in server.data_dir.glob("state.db*"):
        wiped.unlink()
    reset(server, "--cluster-reset-restore-path", str(snapshot))
    server.start()
    assert_restored(server)
    # Clients that saw revisions from before the reset list again rather than wait for them.
    status, _, body = server.request("GET", f"/api/v1/namespaces/shop/configmaps?resourceVersion={last_seen}"
                                            "&resourceVersionMatch=NotOlderThan")
    assert status == 200, body
    status, _, body = server.request("GET", f"/api/v1/namespaces/shop/configmaps?watch=1&resourceVersion={last_seen}",
                                     timeout=10)
    assert status == 410 or b'"code":410' in body, (status, body[:300])


def test_etcd_comes_back_from_a_snapshot_on_a_new_cluster(tmp_path, started):
    old = etcd_in(tmp_path / "old-etcd")
    try:
        server = Skiff(tmp_path / "data", extra_args=["--datastore-endpoint", old.endpoints])
        started.append(server)
        server.start()
        fill(server)
        snapshot = save(server, tmp_path / "snapshots", "--datastore-endpoint", old.endpoints)
        server.kubectl("create", "configmap", "later", "-n", "shop")
        server.stop()
    finally:
        old.stop()

    new = etcd_in(tmp_path / "new-etcd")
    try:
        server.extra_args = ["--datastore-endpoint", new.endpoints]
        reset(server, "--cluster-reset-restore-path", str(snapshot))
        server.start()
        assert_restored(server)
        value, _ = new.get("/registry/core/configmaps/shop/cm-3")
        assert json.loads(value)["data"] == {"n": "3"}
    finally:
        server.stop()
        new.stop()


def test_a_damaged_store_stops_the_server_until_it_is_reset(tmp_path, started):
    server = Skiff(tmp_path / "data")
    started.append(server)
    server.start()
    fill(server)
    server.stop()
    db = server.data_dir / "state.db"
    # Fold the write-ahead log into the file, then damage every page after the first, where the
    # tables are.
    folding = sqlite3.connect(db)
    folding.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    folding.close()
    content = db.read_bytes()
    assert len(content) > 8192 and not (server.data_dir / "state.db-wal").exists()
    db.write_bytes(content[:4096] + b"\x5a" * (len(content) - 4096))

    out = subprocess.run([SKIFF_BIN, "server", "--data-dir", str(server.data_dir), "--disable-agent",
                          "--bind-address", "127.0.0.1", "--https-port", str(server.port)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "is damaged" in out.stderr and "--cluster-reset" in out.stderr, out.stderr[-2000:]

    reset(server)
    server.start()
    assert server.kubectl("get", "namespace", "shop", check=False).returncode != 0
    assert list(server.data_dir.glob("state.db.reset-*")), "the damaged store is kept aside"
