"""The node agent with standard CNI plugins instead of its bridge (`--cni-conf-dir`,
`--cni-bin-dir`): Debian's bridge, host-local and loopback plugins, on a bridge and subnet
of their own, give pods their network; DEL takes it away again. Needs root and
containernetworking-plugins."""

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from agent_pods import TESTSERVER, busybox, create, node_cleanup, phase_of, pod, testserver  # noqa: F401 (fixtures)
from conftest import wait_for

SKIFF_AGENT = True

NETWORK = "skiff-e2e-cni"
BRIDGE = "skiffcni0"
SUBNET = "10.99.0"
CONFLIST = {
    "cniVersion": "1.0.0",
    "name": NETWORK,
    "plugins": [
        {"type": "bridge", "bridge": BRIDGE, "isGateway": True,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": f"{SUBNET}.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
        # Chained: it must hand the bridge's result on.
        {"type": "loopback"},
    ],
}
# The module's folder is the configuration folder; its first file by name is the network.
SKIFF_FILES = {"00-e2e.conflist": json.dumps(CONFLIST)}
SKIFF_ARGS = ["--cni-conf-dir", "{root}", "--cni-bin-dir", "/usr/lib/cni"]
HOST_LOCAL_DIR = Path("/var/lib/cni/networks") / NETWORK


@pytest.fixture(scope="module", autouse=True)
def plugins_cleanup(skiff):
    """At the end, the pods deleted first (DEL), then what the plugins leave on purpose: the
    bridge and host-local's folder."""
    yield
    skiff.kubectl("delete", "pods", "--all", "--grace-period=1", "--wait=true", "--timeout=60s", check=False)
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
    shutil.rmtree(HOST_LOCAL_DIR, ignore_errors=True)


def links_on_bridge():
    res = subprocess.run(["ip", "-o", "link", "show", "master", BRIDGE], capture_output=True, text=True)
    return [line for line in res.stdout.splitlines() if line.strip()]


def test_a_pod_gets_its_address_from_the_plugins_and_loses_it_with_del(kubectl, testserver):
    doc = pod("plugged", None, restart="Always", container={"image": TESTSERVER})
    del doc["spec"]["containers"][0]["command"]
    create(kubectl, doc)
    ip = phase_of(kubectl, "plugged", "Running")["status"]["podIP"]
    assert ip.startswith(f"{SUBNET}."), ip
    assert (HOST_LOCAL_DIR / ip).exists(), "host-local recorded the address"
    assert len(links_on_bridge()) == 1, links_on_bridge()

    def hostname():
        try:
            return urllib.request.urlopen(f"http://{ip}:8080/hostname", timeout=3).read().decode()
        except OSError:
            return None
    assert wait_for("the pod on the plugins' bridge", hostname) == "plugged\n"
    # Loopback is up inside a pod: a server on 127.0.0.1 answers there.
    serve_and_fetch = "httpd -p 127.0.0.1:9999 -h /etc && wget -q -O - http://127.0.0.1:9999/hostname"
    create(kubectl, pod("looped", ["sh", "-c", serve_and_fetch]))
    phase_of(kubectl, "looped", "Succeeded")
    assert kubectl("logs", "looped") == "looped\n"
    # skiff's own table is not made: the plugins own the network.
    assert subprocess.run(["nft", "list", "table", "ip", "skiff"], capture_output=True).returncode != 0

    kubectl("delete", "pod", "plugged", "looped", "--grace-period=1")
    wait_for("DEL to remove the pod's veth", lambda: not links_on_bridge())
    assert not (HOST_LOCAL_DIR / ip).exists(), "host-local released the address"
