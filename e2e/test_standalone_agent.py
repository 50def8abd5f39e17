"""`skiff agent`: a node agent on a machine of its own (real containers, the kubelet of `skiff
server`), joined to the cluster's servers with the join token. It has a server sign a
system:node:NAME client certificate for it (DATA_DIR/agent/kubelet.kubeconfig, mode 0600),
registers its node and runs the pods scheduled there; logs and exec reach it through any
server. It talks to the servers in the order listed and moves to the next when one dies. Its
credentials are a node's: it reads pods, but not namespaces, and modifies neither another
node nor another node's Lease. A token naming another CA, a wrong password, a token not in
K10 form, or no server answering stop it with a message saying what to fix. Needs root
(namespaces, cgroups, overlayfs, veths) and Debian's etcd-server."""

import base64
import http.client
import json
import signal
import ssl
import subprocess
from datetime import datetime, timezone

import pytest
import yaml

import images
from agent_pods import IMAGE, container_status, pod
from conftest import SKIFF_BIN, free_port, wait_for
from etcd_cluster import EtcdCluster, servers  # noqa: F401 (servers: a fixture)


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    cluster = EtcdCluster(tmp_path_factory.mktemp("etcd-agent"))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def busybox_archive(tmp_path_factory):
    """The busybox image as `docker save` writes it, for `skiff image import`."""
    return images.docker_save_archive(
        tmp_path_factory.mktemp("images") / "busybox.tar", IMAGE, images.busybox_layer(), cmd=["sh"])


def token_of(server):
    return (server.data_dir / "token").read_text().strip()


class Agent:
    """One `skiff agent` process over a data directory of its own, logging to a file."""

    def __init__(self, folder, name, servers):
        self.name = name
        self.servers = servers
        self.data_dir = folder / f"agent-{name}"
        self.log_path = folder / f"agent-{name}.log"
        self.kubelet_port = free_port()
        self.proc = None
        self._log = None

    @property
    def kubeconfig(self):
        return self.data_dir / "agent" / "kubelet.kubeconfig"

    def import_image(self, archive):
        res = subprocess.run([SKIFF_BIN, "image", "import", "--data-dir", str(self.data_dir), str(archive)],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        assert f"docker.io/library/{IMAGE}" in res.stdout, res.stdout

    def start(self):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [SKIFF_BIN, "agent", "--server", ",".join(s.url for s in self.servers),
             "--token", token_of(self.servers[0]), "--data-dir", str(self.data_dir),
             "--node-name", self.name, "--kubelet-port", str(self.kubelet_port)],
            stdout=self._log, stderr=self._log, stdin=subprocess.DEVNULL)

    def stop(self):
        """SIGTERM, then SIGKILL if it has not stopped within 10 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    def kubectl(self, *args, check=True, input=None):
        """kubectl with the node's credentials: its kubeconfig, which names the first server listed."""
        return self.servers[-1].kubectl("--kubeconfig", str(self.kubeconfig), *args, check=check, input=input)


@pytest.fixture
def agent(tmp_path, busybox_archive):
    """Starts an agent with the busybox image imported: `agent(name, [server, ...])`. At the end
    every pod is deleted through a live server (so that no container outlives the test), the
    agent is stopped, and the bridge and skiff's nftables table are removed."""
    started = []

    def start(name, servers):
        node = Agent(tmp_path, name, servers)
        node.import_image(busybox_archive)
        node.start()
        started.append(node)
        return node

    yield start
    for node in started:
        live = next((s for s in node.servers if s.proc is not None), None)
        if live is not None:
            live.kubectl("delete", "pods", "--all", "--all-namespaces", "--grace-period=1", "--wait=true",
                         "--timeout=60s", check=False)
        crashed = node.proc.poll() is not None
        node.stop()
        subprocess.run(["ip", "link", "del", "skiff0"], capture_output=True)
        subprocess.run(["nft", "delete", "table", "ip", "skiff"], capture_output=True)
        assert not crashed, f"the agent exited on its own:\n{node.log_tail()}"
        assert "panicked at" not in node.log(), f"the agent panicked:\n{node.log_tail(80)}"


def ready(server, node):
    res = server.kubectl("get", "node", node.name, "-o", "json", check=False)
    conditions = json.loads(res.stdout)["status"].get("conditions", []) if res.returncode == 0 else []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def wait_ready(server, node, timeout=60):
    def check():
        assert node.proc.poll() is None, f"the agent exited:\n{node.log_tail()}"
        return ready(server, node)
    wait_for(f"node {node.name} Ready", check, timeout=timeout)


def running_on(server, node, name, command, timeout=60):
    """Creates a busybox pod (the scheduler places it) and waits until it runs on `node`."""
    server.kubectl("create", "-f", "-", input=json.dumps(pod(name, command)))

    def check():
        p = json.loads(server.kubectl("get", "pod", name, "-o", "json"))
        return p if p["status"].get("phase") == "Running" else None
    p = wait_for(f"pod {name} Running", check, timeout=timeout)
    assert p["spec"]["nodeName"] == node.name, p["spec"]
    assert container_status(p)["state"].get("running"), p["status"]
    return p


def logged(server, name, line):
    return wait_for(f"{line!r} in the logs of {name}",
                    lambda: line in server.kubectl("logs", name, check=False).stdout.splitlines())


def kubelet_get(node, path, user_kubeconfig):
    """GET `path` from the node's kubelet API on its address, with the client certificate of a
    kubeconfig; the kubelet's serving certificate is its own, so it is not checked."""
    user = yaml.safe_load(user_kubeconfig.read_text())["users"][0]["user"]
    creds = node.data_dir / f"creds-{user_kubeconfig.stem}"
    creds.mkdir(exist_ok=True)
    for name, field in (("cert.pem", "client-certificate-data"), ("key.pem", "client-key-data")):
        (creds / name).write_bytes(base64.b64decode(user[field]))
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.load_cert_chain(creds / "cert.pem", creds / "key.pem")
    address = next(a["address"] for a in json.loads(node.servers[-1].kubectl("get", "node", node.name, "-o", "json"))
                   ["status"]["addresses"] if a["type"] == "InternalIP")
    conn = http.client.HTTPSConnection(address, node.kubelet_port, context=context, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def forbidden(node, *args, input=None):
    """Runs kubectl as the node; asserts it is refused and returns what it said."""
    res = node.kubectl(*args, check=False, input=input)
    assert res.returncode != 0, f"kubectl {' '.join(args)} as the node succeeded:\n{res.stdout}"
    assert "forbidden" in res.stderr.lower(), res.stderr
    return res.stderr


def test_an_agent_joins_with_the_token_and_runs_pods(etcd, servers, agent):
    first = servers(etcd, "s0", "--cluster-init", "--etcd-prefix", "/t1")
    second = servers(etcd, "s1", "--etcd-prefix", "/t1", join=first)
    node = agent("joiner", [first, second])
    wait_ready(second, node)

    assert node.kubeconfig.stat().st_mode & 0o777 == 0o600, oct(node.kubeconfig.stat().st_mode)
    review = json.loads(node.kubectl("auth", "whoami", "-o", "json"))["status"]["userInfo"]
    assert review["username"] == f"system:node:{node.name}", review
    assert "system:nodes" in review["groups"], review

    running_on(first, node, "hello", ["sh", "-c", "echo hello from the agent; sleep 3600"])
    logged(second, "hello", "hello from the agent")
    assert second.kubectl("exec", "hello", "--", "hostname") == "hello\n"

    # The node's credentials: it reads pods, but not namespaces.
    assert "hello" in node.kubectl("get", "pods", "-A", "-o", "name")
    forbidden(node, "get", "namespaces")
    forbidden(node, "create", "namespace", "by-a-node")
    # It may modify its own Node and Lease, but not another node's.
    node.kubectl("label", "node", node.name, "labelled-by=itself")
    wait_for("the node's own Lease", lambda: node.kubectl("get", "lease", "-n", "kube-node-lease", node.name,
                                                          check=False).returncode == 0)
    node.kubectl("-n", "kube-node-lease", "annotate", "lease", node.name, "annotated-by=itself")
    other = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "someone-else"}}
    other_lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                   "metadata": {"name": "someone-else", "namespace": "kube-node-lease"},
                   "spec": {"holderIdentity": "someone-else"}}
    first.kubectl("create", "-f", "-",
                  input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [other, other_lease]}))
    try:
        said = forbidden(node, "label", "node", "someone-else", "x=y")
        assert "is not allowed to modify" in said, said
        said = forbidden(node, "annotate", "node", "someone-else", "x=y")
        assert "is not allowed to modify" in said, said
        forbidden(node, "-n", "kube-node-lease", "annotate", "lease", "someone-else", "x=y")
        # Nor a Lease of the control plane's leader elections.
        said = forbidden(node, "-n", "kube-system", "annotate", "lease", "kube-scheduler", "x=y")
        assert "can only access the node lease with its own name" in said, said
        # Nor a pod bound to another node, nor a pod of its own making that is not a static pod's mirror.
        elsewhere = pod("elsewhere", ["sleep", "3600"], nodeName="someone-else")
        first.kubectl("create", "-f", "-", input=json.dumps(elsewhere))
        said = forbidden(node, "delete", "pod", "elsewhere", "--wait=false")
        assert "can only delete pods with spec.nodeName set to itself" in said, said
        mine = pod("made-by-the-node", ["sleep", "3600"], nodeName=node.name)
        said = forbidden(node, "create", "-n", "default", "-f", "-", input=json.dumps(mine))
        assert "can only create mirror pods" in said, said
    finally:
        first.kubectl("delete", "pod", "elsewhere", "--grace-period=0", "--force", check=False)
        first.kubectl("delete", "node", "someone-else")
        first.kubectl("delete", "lease", "-n", "kube-node-lease", "someone-else")
    # The kubelet API serves the API server (and administrators), not other holders of a cluster
    # certificate such as a node.
    status, said = kubelet_get(node, "/pods", user_kubeconfig=node.kubeconfig)
    assert status == 403, (status, said)
    assert said == f"Forbidden (user=system:node:{node.name}, verb=get, resource=nodes, subresource=proxy)", said
    status, said = kubelet_get(node, "/pods", user_kubeconfig=first.kubeconfig)
    assert status == 200 and '"PodList"' in said, (status, said[:500])
    labels = json.loads(first.kubectl("get", "node", node.name, "-o", "json"))["metadata"]["labels"]
    assert labels.get("labelled-by") == "itself", labels


def renewed_after(server, node, moment):
    lease = json.loads(server.kubectl("get", "lease", "-n", "kube-node-lease", node.name, "-o", "json"))
    return datetime.fromisoformat(lease["spec"]["renewTime"].replace("Z", "+00:00")) > moment


def test_the_agent_moves_to_another_server_when_one_dies(etcd, servers, agent):
    doomed = servers(etcd, "s0", "--cluster-init", "--etcd-prefix", "/t2")
    survivor = servers(etcd, "s1", "--etcd-prefix", "/t2", join=doomed)
    # The server about to die first: the agent talks to it until it cannot.
    node = agent("mover", [doomed, survivor])
    wait_ready(survivor, node)
    running_on(survivor, node, "before", ["sh", "-c", "echo before the kill; sleep 3600"])

    killed_at = datetime.now(timezone.utc)
    doomed.kill9()
    wait_for("the node's Lease renewed after the kill", lambda: renewed_after(survivor, node, killed_at), timeout=40)
    assert ready(survivor, node), survivor.kubectl("get", "node", node.name, "-o", "yaml")
    # The scheduler and the controller manager may have led from the dead server: the
    # survivor takes over within 15 s.
    running_on(survivor, node, "after", ["sh", "-c", "echo after the kill; sleep 3600"], timeout=60)
    logged(survivor, "after", "after the kill")
    logged(survivor, "before", "before the kill")
    assert "moving to another API server" in node.log(), node.log_tail()


def joining(tmp_path, server_urls, token):
    """Runs an agent that must be refused; returns what it said."""
    res = subprocess.run([SKIFF_BIN, "agent", "--server", server_urls, "--token", token,
                          "--data-dir", str(tmp_path / f"refused-{free_port()}"), "--node-name", "refused",
                          "--kubelet-port", str(free_port())],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert res.returncode != 0, res.stderr[-2000:]
    return res.stderr


def test_a_bad_token_is_refused(etcd, servers, tmp_path):
    server = servers(etcd, "gatekeeper", "--cluster-init", "--etcd-prefix", "/t3")
    hash_part, password = token_of(server).split("::server:")

    said = joining(tmp_path, server.url, "K10" + "0" * 64 + "::server:" + password)
    assert "is not the one the join token names" in said, said[-2000:]
    said = joining(tmp_path, server.url, f"{hash_part}::server:wrong")
    assert "refused the join token" in said and "401" in said, said[-2000:]
    said = joining(tmp_path, server.url, password)
    assert "K10<hash>::server:<password>" in said, said[-2000:]
    said = joining(tmp_path, f"https://127.0.0.1:{free_port()}", token_of(server))
    assert "no server of the cluster would take this node" in said, said[-2000:]
    nodes = server.kubectl("get", "nodes", "-o", "name")
    assert nodes == "", nodes
