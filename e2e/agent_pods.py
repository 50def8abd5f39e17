"""What the tests of pods on the node agent share: module-scoped fixtures that a test module
takes by importing them (`node_cleanup`: every pod gone at the end; `busybox`: the busybox
image, built from Debian's busybox-static and imported with `skiff image import`), and
helpers to make and watch pods."""

import json
import subprocess
from pathlib import Path

import pytest

import images
from conftest import SKIFF_BIN, wait_for

IMAGE = "busybox:e2e"
TESTSERVER = "skiff-testserver:e2e"
TESTSERVER_BIN = Path(SKIFF_BIN).with_name("skiff-testserver")


@pytest.fixture(scope="module", autouse=True)
def node_cleanup(skiff):
    """At the end of the module, every pod deleted (so that no container outlives it) and
    the bridge and skiff's nftables table removed."""
    yield
    skiff.kubectl("delete", "pods", "--all", "--all-namespaces", "--grace-period=1", "--wait=true", "--timeout=60s", check=False)
    subprocess.run(["ip", "link", "del", "skiff0"], capture_output=True)
    subprocess.run(["nft", "delete", "table", "ip", "skiff"], capture_output=True)


@pytest.fixture(scope="module", autouse=True)
def busybox(skiff, node_cleanup, tmp_path_factory):
    """The busybox image, imported into the node's image store."""
    archive = images.docker_save_archive(
        tmp_path_factory.mktemp("images") / "busybox.tar", IMAGE, images.busybox_layer(), cmd=["sh"])
    import_image(skiff, archive, "docker.io/library/busybox:e2e")


def import_image(skiff, archive, name):
    res = subprocess.run([SKIFF_BIN, "image", "import", "--data-dir", str(skiff.data_dir), str(archive)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert name in res.stdout, res.stdout


@pytest.fixture(scope="module")
def testserver(skiff, node_cleanup, tmp_path_factory):
    """The project's test server image (crates/testserver), imported into the node's store."""
    archive = images.docker_save_archive(tmp_path_factory.mktemp("images") / "testserver.tar", TESTSERVER,
                                         images.testserver_layer(TESTSERVER_BIN), cmd=["/skiff-testserver"])
    import_image(skiff, archive, f"docker.io/library/{TESTSERVER}")
    return TESTSERVER


def pod(name, command, restart="Never", **spec):
    container = {"name": spec.pop("container_name", "main"), "image": IMAGE, "command": command}
    container.update(spec.pop("container", {}))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": 5, "containers": [container], **spec}}


def create(kubectl, doc):
    kubectl("apply", "-f", "-", input=json.dumps(doc))


def get(kubectl, name):
    return json.loads(kubectl("get", "pod", name, "-o", "json"))


def phase_of(kubectl, name, phase, timeout=60):
    def check():
        p = get(kubectl, name)
        return p if p["status"].get("phase") == phase else None
    return wait_for(f"pod {name} {phase}", check, timeout=timeout)


def container_status(p, name="main"):
    return next((c for c in p["status"].get("containerStatuses", []) if c["name"] == name), {"state": {}, "restartCount": 0})
