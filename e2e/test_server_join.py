"""Servers join a cluster as in k3s: the first writes a join token (DATA_DIR/token,
K10<CA hash>::server:<password>); another, started with `--server URL --token TOKEN` on the same
etcd, fetches the cluster CA from it, so that the servers trust each other's clients. A wrong
password, a token naming another CA, a join without a shared datastore, or a second founder on
a datastore that holds a cluster stop the server with a message saying what to fix."""

import re
import subprocess

import pytest

from conftest import SKIFF_BIN, free_port
from etcd_cluster import EtcdCluster, servers  # noqa: F401 (servers: a fixture)


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    cluster = EtcdCluster(tmp_path_factory.mktemp("etcd-join"))
    yield cluster
    cluster.stop()


def token_of(server):
    return (server.data_dir / "token").read_text().strip()


def refused(tmp_path, *args):
    """Runs a server that must refuse to start; returns what it said."""
    out = subprocess.run([SKIFF_BIN, "server", "--data-dir", str(tmp_path / f"refused-{free_port()}"),
                          "--disable-agent", "--bind-address", "127.0.0.1", "--https-port", str(free_port()), *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0, out.stderr[-2000:]
    return out.stderr


def test_a_joined_server_shares_the_cluster_ca(etcd, servers):
    first = servers(etcd, "founder", "--cluster-init")
    token = token_of(first)
    assert re.fullmatch(r"K10[0-9a-f]{64}::server:[0-9a-f]{32}", token), token
    assert (first.data_dir / "token").stat().st_mode & 0o077 == 0
    joined = servers(etcd, "joiner", join=first)
    assert (joined.data_dir / "tls" / "ca.crt").read_bytes() == (first.data_dir / "tls" / "ca.crt").read_bytes()
    # The joined server's admin credentials work against the first server, and the other way.
    joined.kubectl("create", "configmap", "from-joiner")
    out = joined.kubectl("--server", first.url, "get", "configmap", "from-joiner", "-o", "name")
    assert out == "configmap/from-joiner\n"
    assert first.kubectl("--server", joined.url, "get", "namespaces", "-o", "name")
    # Every server admits further servers with the same token.
    assert token_of(joined) == token


def test_a_bad_token_or_no_shared_datastore_is_refused(etcd, servers, tmp_path):
    first = servers(etcd, "gatekeeper", "--etcd-prefix", "/gatekeeper")
    token = token_of(first)
    hash_part, password = token.split("::server:")
    endpoint = ["--datastore-endpoint", etcd.endpoints, "--server", first.url]

    said = refused(tmp_path, *endpoint, "--token", f"{hash_part}::server:wrong")
    assert "refused the join token" in said and "401" in said, said[-2000:]
    other_ca = "K10" + "0" * 64 + "::server:" + password
    said = refused(tmp_path, *endpoint, "--token", other_ca)
    assert "is not the one the join token names" in said, said[-2000:]
    said = refused(tmp_path, *endpoint, "--token", password)
    assert "K10<hash>::server:<password>" in said, said[-2000:]
    said = refused(tmp_path, "--server", first.url, "--token", token)
    assert "--datastore-endpoint" in said, said[-2000:]
    # A second founder on the same datastore, rather than a joiner, is refused too.
    said = refused(tmp_path, "--datastore-endpoint", etcd.endpoints, "--etcd-prefix", "/gatekeeper")
    assert "holds a cluster with another CA" in said, said[-2000:]
