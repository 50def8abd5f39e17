"""etcd members for the tests of skiff's etcd datastore: Debian's etcd-server, started on
loopback ports in a folder of the test's, killed when the test is done."""

import json
import shutil
import subprocess
import time
import urllib.request
from base64 import b64decode, b64encode

from conftest import free_port, wait_for


class Etcd:
    """One single-member etcd cluster."""

    def __init__(self, folder):
        assert shutil.which("etcd"), "etcd is not installed: apt-get install etcd-server"
        self.folder = folder
        self.client_port, self.peer_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.client_port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        self.log = open(folder / "etcd.log", "ab")
        self.proc = subprocess.Popen([
            "etcd", "--name", "e2e", "--data-dir", str(folder / "etcd"),
            "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"e2e={peer}",
        ], stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        wait_for("etcd to answer", self._healthy, timeout=30)

    def _healthy(self):
        assert self.proc.poll() is None, (self.folder / "etcd.log").read_text(errors="replace")[-2000:]
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                return json.load(r).get("health") == "true"
        except OSError:
            return False

    def get(self, key):
        """The pair at `key`, read through etcd's own JSON gateway: (value, mod_revision) or None."""
        body = json.dumps({"key": b64encode(key.encode()).decode()}).encode()
        with urllib.request.urlopen(urllib.request.Request(f"{self.url}/v3/kv/range", data=body), timeout=5) as r:
            kvs = json.load(r).get("kvs", [])
        return (b64decode(kvs[0]["value"]), int(kvs[0]["mod_revision"])) if kvs else None

    def stop(self):
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.log.close()
