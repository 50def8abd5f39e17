"""Shared machinery for skiff's end-to-end tests.

Every test module gets its own `skiff server` on a free port in a fresh temporary folder
(the `skiff` fixture), driven with the real kubectl (`kubectl`) and the official Python
client (`k8s`). A module can pass extra server flags with a module-level `SKIFF_ARGS`
list and files they name with `SKIFF_FILES`. Servers run without their node agent (which
would run real containers) unless a module sets `SKIFF_AGENT = True`. Nothing here mocks
anything: these are the binary and the tools a user runs.

Environment:
  SKIFF_BIN   the skiff binary (default: target/release/skiff in this checkout)
"""

import base64
import http.client
import json
import os
import pathlib
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import kubernetes
import pytest
import yaml

SKIFF_BIN = os.environ.get("SKIFF_BIN", str(pathlib.Path(__file__).resolve().parent.parent / "target/release/skiff"))
READY_TIMEOUT = 10.0
# No single test may run longer than this (the compaction wait is the longest, ~70 s).
TEST_TIMEOUT = 150
KUBECTL_TIMEOUT = 30


def wait_for(what, check, timeout=30):
    """Polls `check` until it returns something truthy, and returns that; fails naming `what`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class CommandFailed(AssertionError):
    """A kubectl run that exited non-zero; carries its stderr for the assertion message."""

    def __init__(self, args, returncode, stdout, stderr):
        self.args_ = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(f"kubectl {' '.join(args)} exited {returncode}:\n{stderr.strip()}\n{stdout.strip()[:2000]}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Skiff:
    """One `skiff server` process over a data directory, and ways to talk to it."""

    def __init__(self, data_dir, port=None, extra_args=(), agent=False):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.agent = agent
        self.kubelet_port = free_port() if agent else None
        self.extra_args = list(extra_args)
        self.proc = None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        self._log = None
        self._creds = None
        self.starts = 0

    # ---- lifecycle -------------------------------------------------------------------

    @property
    def kubeconfig(self):
        return self.data_dir / "kubeconfig.yaml"

    @property
    def url(self):
        return f"https://127.0.0.1:{self.port}"

    def start(self):
        assert self.proc is None, "server already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self._log.write(f"\n===== start #{self.starts + 1} =====\n".encode())
        self._log.flush()
        cmd = [
            SKIFF_BIN, "server",
            "--data-dir", str(self.data_dir),
            "--https-port", str(self.port),
            "--bind-address", "127.0.0.1",
            *(["--kubelet-port", str(self.kubelet_port)] if self.agent else ["--disable-agent"]),
            *self.extra_args,
        ]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=self._log, stdin=subprocess.DEVNULL)
        self.starts += 1
        self._creds = None
        self.wait_ready()

    def wait_ready(self, timeout=READY_TIMEOUT):
        """Polls /readyz with the admin kubeconfig's credentials until it says ok."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"skiff exited with {self.proc.returncode} while starting:\n{self.log_tail()}")
            if self.kubeconfig.exists():
                try:
                    status, _, body = self.request("GET", "/readyz", timeout=2)
                    if status == 200 and body.strip() == b"ok":
                        return
                    last = f"{status} {body[:200]!r}"
                except (OSError, ssl.SSLError, http.client.HTTPException, ValueError, KeyError, yaml.YAMLError) as e:
                    last = repr(e)
            time.sleep(0.05)
        raise AssertionError(f"skiff not ready after {timeout}s (last: {last}):\n{self.log_tail()}")

    def kill9(self):
        """SIGKILL: no chance to flush or clean up."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._close()

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._close()

    def restart(self):
        self.stop()
        self.start()

    def _close(self):
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None

    def log_tail(self, n=40):
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    # ---- credentials -----------------------------------------------------------------

    def _credentials(self):
        """CA, client certificate and key, taken from the admin kubeconfig (as a user would)."""
        if self._creds is None:
            cfg = yaml.safe_load(self.kubeconfig.read_text())
            cluster = cfg["clusters"][0]["cluster"]
            user = cfg["users"][0]["user"]
            d = Path(tempfile.mkdtemp(prefix="creds-", dir=self.data_dir.parent))
            paths = {}
            for key, field in (("ca", "certificate-authority-data"), ("cert", "client-certificate-data"), ("key", "client-key-data")):
                p = d / f"{key}.pem"
                p.write_bytes(base64.b64decode(user.get(field) or cluster[field]))
                paths[key] = str(p)
            self._creds = paths
        return self._creds

    def ssl_context(self, client_cert=True):
        creds = self._credentials()
        ctx = ssl.create_default_context(cafile=creds["ca"])
        if client_cert:
            ctx.load_cert_chain(creds["cert"], creds["key"])
        return ctx

    # ---- raw HTTP ----------------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, client_cert=True, token=None, timeout=10):
        """One HTTPS request with the stdlib. Returns (status, headers dict, body bytes).

        client_cert=True authenticates as the admin (the kubeconfig's certificate);
        token adds `Authorization: Bearer`; neither makes an anonymous request.
        """
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ssl_context(client_cert), timeout=timeout)
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def request_json(self, method, path, body=None, **kw):
        status, headers, data = self.request(method, path, body, **kw)
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            raise AssertionError(f"{method} {path} -> {status}, body is not JSON: {data[:500]!r}")
        return status, doc

    # ---- kubectl -----------------------------------------------------------------------

    def kubectl(self, *args, input=None, timeout=KUBECTL_TIMEOUT, check=True, env=None):
        """Runs the real kubectl against this server.

        Returns its stdout and raises CommandFailed (with stderr) if it fails; with
        check=False returns the CompletedProcess (returncode, stdout, stderr) instead.
        """
        env = dict(os.environ, **(env or {}), KUBECONFIG=str(self.kubeconfig))
        # A private discovery cache per server: ports get reused between modules.
        env["KUBECACHEDIR"] = str(self.data_dir.parent / "kubecache")
        res = subprocess.run(
            ["kubectl", *args], input=input, capture_output=True, text=True, timeout=timeout, env=env,
        )
        if check and res.returncode != 0:
            raise CommandFailed(list(args), res.returncode, res.stdout, res.stderr)
        if not check:
            return res
        return res.stdout

    def kubectl_popen(self, *args):
        """kubectl as a long-running subprocess (for -w), stdout line-buffered text."""
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig))
        env["KUBECACHEDIR"] = str(self.data_dir.parent / "kubecache")
        return subprocess.Popen(
            ["kubectl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1, env=env,
        )

    def client(self):
        return kubernetes.config.new_client_from_config(config_file=str(self.kubeconfig))


@pytest.fixture(scope="module")
def skiff(request, tmp_path_factory):
    """A fresh skiff server for this module.

    Module-level SKIFF_FILES ({name: text}) are written to the module's folder first, and
    module-level SKIFF_ARGS are extra server flags, where "{root}" stands for that folder.
    """
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    for name, text in getattr(request.module, "SKIFF_FILES", {}).items():
        (root / name).write_text(text)
    extra = [a.replace("{root}", str(root)) for a in getattr(request.module, "SKIFF_ARGS", [])]
    server = Skiff(root / "data", extra_args=extra, agent=getattr(request.module, "SKIFF_AGENT", False))
    server.start()
    yield server
    crashed = server.proc is not None and server.proc.poll() is not None
    server.stop()
    log = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
    # A user-visible property of every module: the server neither died nor panicked.
    assert not crashed, f"skiff exited on its own during the module:\n{server.log_tail()}"
    assert "panicked at" not in log, f"skiff panicked during the module:\n{server.log_tail(80)}"


@pytest.fixture
def manifest(tmp_path):
    """Writes a manifest as YAML, as a user keeps it, and returns its path: `manifest(doc)`."""

    def write(doc, name="manifest.yaml"):
        path = tmp_path / name
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return str(path)

    return write


@pytest.fixture(scope="module")
def kubectl(skiff):
    return skiff.kubectl


@pytest.fixture(scope="module")
def k8s(skiff):
    """An ApiClient from the admin kubeconfig (kubernetes.config.new_client_from_config)."""
    api = skiff.client()
    yield api
    api.close()


@pytest.fixture(autouse=True)
def _test_deadline():
    """Nothing hangs: every test fails after TEST_TIMEOUT seconds."""

    def expired(signum, frame):
        raise TimeoutError(f"test exceeded {TEST_TIMEOUT}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_TIMEOUT)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def wait_until(predicate, timeout=10.0, interval=0.1, what="condition"):
    """Polls predicate() until it returns something truthy; returns it or fails."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def status_of(doc, code, reason):
    """Asserts doc is a metav1 Status failure with this code and reason."""
    assert isinstance(doc, dict), doc
    assert doc.get("kind") == "Status", doc
    assert doc.get("apiVersion") == "v1", doc
    assert doc.get("status") == "Failure", doc
    assert doc.get("code") == code, doc
    assert doc.get("reason") == reason, doc
    assert doc.get("message"), doc
    return doc
