"""etcd clusters for the tests of skiff's etcd datastore: Debian's etcd-server, members started
on loopback ports in a folder of the test's, killed when the test is done."""

import json
import shutil
import subprocess
import urllib.request
from base64 import b64decode, b64encode

import pytest

from conftest import Skiff, free_port, wait_for


class EtcdCluster:
    """`size` etcd members forming one cluster."""

    def __init__(self, folder, size=1):
        assert shutil.which("etcd"), "etcd is not installed: apt-get install etcd-server"
        self.folder = folder
        ports = [(free_port(), free_port()) for _ in range(size)]
        self.urls = [f"http://127.0.0.1:{client}" for client, _ in ports]
        peers = [f"http://127.0.0.1:{peer}" for _, peer in ports]
        initial = ",".join(f"m{i}={peer}" for i, peer in enumerate(peers))
        self.logs = [open(folder / f"etcd-m{i}.log", "ab") for i in range(size)]
        self.commands = [
            ["etcd", "--name", f"m{i}", "--data-dir", str(folder / f"m{i}"),
             "--listen-client-urls", url, "--advertise-client-urls", url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", initial, "--initial-cluster-token", folder.name]
            for i, (url, peer) in enumerate(zip(self.urls, peers))
        ]
        self.members = [self._spawn(i) for i in range(size)]
        for i in range(size):
            wait_for(f"etcd member m{i} to answer", lambda i=i: self._healthy(i), timeout=30)

    def _spawn(self, i):
        return subprocess.Popen(self.commands[i], stdout=self.logs[i], stderr=self.logs[i], stdin=subprocess.DEVNULL)

    @property
    def url(self):
        return self.urls[0]

    @property
    def endpoints(self):
        """Every member's client URL, as --datastore-endpoint takes them."""
        return ",".join(self.urls)

    def _healthy(self, i):
        log = (self.folder / f"etcd-m{i}.log").read_text(errors="replace")
        assert self.members[i].poll() is None, log[-2000:]
        try:
            with urllib.request.urlopen(f"{self.urls[i]}/health", timeout=1) as r:
                return json.load(r).get("health") == "true"
        except OSError:
            return False

    def get(self, key):
        """The pair at `key`, read through etcd's JSON gateway: (value, mod_revision) or None."""
        body = json.dumps({"key": b64encode(key.encode()).decode()}).encode()
        live = next(url for url, member in zip(self.urls, self.members) if member.poll() is None)
        with urllib.request.urlopen(urllib.request.Request(f"{live}/v3/kv/range", data=body), timeout=5) as r:
            kvs = json.load(r).get("kvs", [])
        return (b64decode(kvs[0]["value"]), int(kvs[0]["mod_revision"])) if kvs else None

    def leader(self):
        """The index of the member that leads the cluster, as etcd's JSON gateway tells it (the
        leader's member id, matched with each live member's own), or None while there is none."""
        ids, leader = {}, None
        for i, (url, member) in enumerate(zip(self.urls, self.members)):
            if member.poll() is not None:
                continue
            try:
                request = urllib.request.Request(f"{url}/v3/maintenance/status", data=b"{}")
                with urllib.request.urlopen(request, timeout=2) as r:
                    status = json.load(r)
            except OSError:
                continue
            ids[status["header"]["member_id"]] = i
            leader = leader or status.get("leader")
        return ids.get(leader)

    def kill(self, i):
        self.members[i].kill()
        self.members[i].wait(timeout=10)

    def restart(self, i):
        """Starts killed member i again, on its data dir and ports (etcd then ignores the
        --initial-* flags and rejoins from its own data), and waits until it answers."""
        assert self.members[i].poll() is not None, f"member m{i} is still running"
        self.members[i] = self._spawn(i)
        wait_for(f"etcd member m{i} to answer after its restart", lambda: self._healthy(i), timeout=30)

    def stop(self):
        for i, member in enumerate(self.members):
            if member.poll() is None:
                self.kill(i)
        for log in self.logs:
            log.close()


@pytest.fixture
def servers(tmp_path):
    """Makes servers on the etcd (each with its own data folder) and stops them afterwards."""
    started = []

    def start(etcd, name, *extra, join=None):
        # A server joins `join`'s cluster with its token, which fetches the cluster's CA.
        joining = ["--server", join.url, "--token", (join.data_dir / "token").read_text().strip()] if join else []
        server = Skiff(tmp_path / name, extra_args=["--datastore-endpoint", etcd.endpoints, *joining, *extra])
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()
        log = server.log_path.read_text(errors="replace")
        assert "panicked at" not in log, server.log_tail(80)
