"""The node agent's built-in pod network beyond the bridge: pods reaching past the cluster are
masqueraded as the node, and hostPorts publish a pod on the node's addresses, through skiff's
own nftables table (`ip skiff`). "Outside the cluster" is a network namespace the tests make,
joined to the host by a veth with addresses of TEST-NET-2. Needs root."""

import json
import subprocess
import sys
import urllib.request

import pytest

from agent_pods import TESTSERVER, busybox, create, get, node_cleanup, phase_of, pod, testserver  # noqa: F401 (fixtures)
from conftest import free_port, wait_for

SKIFF_AGENT = True

OUTSIDE = "skiff-e2e-outside"
HOST_END = "skiffe2eout"
HOST_ADDRESS = "198.51.100.1"
OUTSIDE_ADDRESS = "198.51.100.2"
LISTENER_PORT = 7070

# An HTTP server that answers every GET with the address the connection came from.
PEER_REPORTER = """
import http.server, sys
class Peer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (self.client_address[0] + "\\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), Peer).serve_forever()
"""

# Fetches a URL and prints the body, from inside the outside namespace.
FETCH = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode(), end='')"


def sh(*args, check=True):
    return subprocess.run(args, capture_output=True, text=True, check=check)


@pytest.fixture(scope="module")
def outside(skiff):
    """A network namespace outside the cluster CIDR, routed from the host, running a server
    that reports its peers' addresses. Removed (with the pods, first) at the end."""
    sh("ip", "netns", "add", OUTSIDE)
    sh("ip", "link", "add", HOST_END, "type", "veth", "peer", "name", "eth0", "netns", OUTSIDE)
    sh("ip", "addr", "add", f"{HOST_ADDRESS}/30", "dev", HOST_END)
    sh("ip", "link", "set", HOST_END, "up")
    for cmd in (["ip", "addr", "add", f"{OUTSIDE_ADDRESS}/30", "dev", "eth0"], ["ip", "link", "set", "eth0", "up"],
                ["ip", "link", "set", "lo", "up"]):
        sh("ip", "netns", "exec", OUTSIDE, *cmd)
    reporter = subprocess.Popen(["ip", "netns", "exec", OUTSIDE, sys.executable, "-c", PEER_REPORTER,
                                 OUTSIDE_ADDRESS, str(LISTENER_PORT)])
    try:
        # The host reaches it from its own end of the veth.
        wait_for("the peer reporter", lambda: fetch_from_host(f"http://{OUTSIDE_ADDRESS}:{LISTENER_PORT}/") == f"{HOST_ADDRESS}\n", timeout=10)
        yield
    finally:
        skiff.kubectl("delete", "pods", "--all", "--grace-period=1", "--wait=true", "--timeout=60s", check=False)
        reporter.kill()
        reporter.wait()
        sh("ip", "netns", "del", OUTSIDE, check=False)
        sh("ip", "link", "del", HOST_END, check=False)


def fetch_from_host(url):
    try:
        return urllib.request.urlopen(url, timeout=3).read().decode()
    except OSError:
        return None


def fetch_from_outside(url):
    res = sh("ip", "netns", "exec", OUTSIDE, sys.executable, "-c", FETCH, url, check=False)
    return res.stdout if res.returncode == 0 else None


def skiff_table():
    """skiff's nftables table as `nft` lists it ("" if there is none)."""
    res = sh("nft", "list", "table", "ip", "skiff", check=False)
    return res.stdout if res.returncode == 0 else ""


def server_pod(name, **container):
    doc = pod(name, None, restart="Always", container={"image": TESTSERVER, **container})
    del doc["spec"]["containers"][0]["command"]
    return doc


def test_a_pod_reaches_beyond_the_cluster_as_the_node(kubectl, outside):
    create(kubectl, pod("leaver", ["wget", "-q", "-O", "-", f"http://{OUTSIDE_ADDRESS}:{LISTENER_PORT}/"]))
    p = phase_of(kubectl, "leaver", "Succeeded")
    assert p["status"]["podIP"].startswith("10.42."), p["status"]
    # The server outside saw the node's address on its link, not the pod's.
    assert kubectl("logs", "leaver") == f"{HOST_ADDRESS}\n"
    assert "masquerade" in skiff_table()


def test_a_host_port_publishes_the_pod_on_the_node_until_it_goes(skiff, kubectl, testserver, outside):
    port = free_port()
    create(kubectl, server_pod("published", ports=[{"containerPort": 8080, "hostPort": port}]))
    pod_ip = phase_of(kubectl, "published", "Running")["status"]["podIP"]
    # From the host, at localhost (the node's address here) ...
    wait_for("the hostPort at 127.0.0.1", lambda: fetch_from_host(f"http://127.0.0.1:{port}/hostname") == "published\n")
    # ... from another machine, at the node's address on its link ...
    assert fetch_from_outside(f"http://{HOST_ADDRESS}:{port}/hostname") == "published\n"
    # ... and from another pod, through the node's address.
    create(kubectl, pod("neighbour", ["wget", "-q", "-O", "-", f"http://{HOST_ADDRESS}:{port}/hostname"]))
    phase_of(kubectl, "neighbour", "Succeeded")
    assert kubectl("logs", "neighbour") == "published\n"
    rule = f"dnat to {pod_ip}:8080"
    assert skiff_table().count(rule) == 1, skiff_table()

    # An agent restart rebuilds the table from its records: the same rule, once.
    skiff.restart()
    wait_for("the restarted agent", lambda: "node agent ready" in skiff.log_path.read_text().rsplit("===== start", 1)[-1])
    assert skiff_table().count(rule) == 1, skiff_table()
    assert fetch_from_host(f"http://127.0.0.1:{port}/hostname") == "published\n"

    kubectl("delete", "pod", "published", "--grace-period=1")
    wait_for("the hostPort rule to go", lambda: f"dport {port}" not in skiff_table())
    assert fetch_from_host(f"http://127.0.0.1:{port}/hostname") is None
    assert "masquerade" in skiff_table(), "the table stays for the pods' masquerade"

