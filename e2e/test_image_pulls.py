"""The node agent pulls images from registries: a local registry (Debian's docker-registry)
that the tests push a busybox image to over the distribution API, reached directly, as a
mirror of Docker Hub with a rewrite (registries.yaml), and with Basic auth through an
imagePullSecret. Needs root, as every test of the node agent does."""

import json
import shutil
import subprocess
import urllib.request

import pytest

import images
from agent_pods import create, get, node_cleanup, phase_of, pod  # noqa: F401 (node_cleanup: a fixture)
from conftest import free_port, wait_for

SKIFF_AGENT = True
REGISTRY_PORT = free_port()
AUTH_REGISTRY_PORT = free_port()
REGISTRY = f"127.0.0.1:{REGISTRY_PORT}"
AUTH_REGISTRY = f"127.0.0.1:{AUTH_REGISTRY_PORT}"
SKIFF_FILES = {"registries.yaml": f"""
mirrors:
  docker.io:
    endpoint: ["http://{REGISTRY}"]
    rewrite:
      "^library/(.*)": "mirrored/$1"
"""}
SKIFF_ARGS = ["--private-registry", "{root}/registries.yaml"]
REGISTRY_BIN = "/usr/bin/docker-registry"


def start_registry(root, port, htpasswd=None):
    root.mkdir(parents=True, exist_ok=True)
    config = {"version": 0.1, "log": {"level": "warn"}, "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
              "http": {"addr": f"127.0.0.1:{port}", "secret": "e2e"}}
    if htpasswd:
        config["auth"] = {"htpasswd": {"realm": "e2e", "path": str(htpasswd)}}
    (root / "config.yml").write_text(json.dumps(config))
    assert shutil.which(REGISTRY_BIN), "the tests need Debian's docker-registry (apt-get install docker-registry)"
    log = open(root / "registry.log", "wb")
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(root / "config.yml")], stdout=log, stderr=log)

    def up():
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2)
            return True
        except urllib.error.HTTPError as e:
            return e.code == 401
        except OSError:
            return False
    wait_for("the registry", up, timeout=20)
    return proc


@pytest.fixture(scope="module")
def registries(tmp_path_factory):
    root = tmp_path_factory.mktemp("registries")
    htpasswd = root / "htpasswd"
    res = subprocess.run(["htpasswd", "-Bbn", "alice", "s3cret"], capture_output=True, text=True, check=True)
    htpasswd.write_text(res.stdout)
    procs = [start_registry(root / "open", REGISTRY_PORT), start_registry(root / "auth", AUTH_REGISTRY_PORT, htpasswd)]
    yield
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def busybox_blobs():
    return images.image_blobs(images.busybox_layer(), cmd=["sh"])


def waiting(kubectl, name):
    statuses = get(kubectl, name)["status"].get("containerStatuses") or [{}]
    return statuses[0].get("state", {}).get("waiting")


def image_pod(name, image, command=None, policy=None, **spec):
    """A pod of one container of `image`, running `command` (the image's own if None)."""
    doc = pod(name, command, **spec)
    container = doc["spec"]["containers"][0]
    container["image"] = image
    if command is None:
        del container["command"]
    if policy:
        container["imagePullPolicy"] = policy
    return doc


def run_to_completion(kubectl, doc):
    create(kubectl, doc)
    name = doc["metadata"]["name"]
    phase_of(kubectl, name, "Succeeded", timeout=120)
    return kubectl("logs", name)


def node_image_names(kubectl):
    node = json.loads(kubectl("get", "nodes", "-o", "json"))["items"][0]
    return [n for image in node["status"].get("images", []) for n in image["names"]]


def test_a_pod_runs_an_image_pulled_from_a_registry(kubectl, registries, busybox_blobs):
    digest = images.push(REGISTRY, "e2e/busybox", "1", busybox_blobs)
    doc = image_pod("pulled", f"{REGISTRY}/e2e/busybox:1", ["echo", "pulled and ran"])
    assert run_to_completion(kubectl, doc) == "pulled and ran\n"
    # The node lists it by name and by digest.
    wait_for("the pulled image in the node's status",
             lambda: {f"{REGISTRY}/e2e/busybox:1", f"{REGISTRY}/e2e/busybox@{digest}"} <= set(node_image_names(kubectl)),
             timeout=30)


def test_a_mirror_serves_docker_hub_names_rewritten(kubectl, registries, busybox_blobs):
    images.push(REGISTRY, "mirrored/busybox", "m1", busybox_blobs)
    # busybox:m1 is docker.io/library/busybox:m1: the mirror has it as mirrored/busybox:m1.
    assert run_to_completion(kubectl, image_pod("mirrored", "busybox:m1", ["echo", "from the mirror"])) == "from the mirror\n"


def test_pull_policy_always_takes_a_new_push_of_the_tag(kubectl, registries):
    layer = images.busybox_layer()
    image = f"{REGISTRY}/e2e/moving:v"
    images.push(REGISTRY, "e2e/moving", "v", images.image_blobs(layer, cmd=["echo", "first"]))
    assert run_to_completion(kubectl, image_pod("always-1", image, policy="Always")) == "first\n"
    images.push(REGISTRY, "e2e/moving", "v", images.image_blobs(layer, cmd=["echo", "second"]))
    assert run_to_completion(kubectl, image_pod("always-2", image, policy="Always")) == "second\n"
    # The node now has the new image under the tag: IfNotPresent takes it without asking.
    assert run_to_completion(kubectl, image_pod("present", image, policy="IfNotPresent")) == "second\n"


def test_an_unknown_tag_is_err_image_pull_saying_not_found(kubectl, registries):
    create(kubectl, image_pod("unknown-tag", f"{REGISTRY}/e2e/busybox:nope", ["true"]))
    w = wait_for("ErrImagePull or ImagePullBackOff", lambda: waiting(kubectl, "unknown-tag")
                 if (waiting(kubectl, "unknown-tag") or {}).get("reason") in ("ErrImagePull", "ImagePullBackOff") else None,
                 timeout=60)
    assert "not found" in w["message"], w


def test_a_registry_with_auth_needs_the_pull_secret(kubectl, registries, busybox_blobs):
    images.push(AUTH_REGISTRY, "private/busybox", "1", busybox_blobs, auth=("alice", "s3cret"))
    image = f"{AUTH_REGISTRY}/private/busybox:1"
    create(kubectl, image_pod("no-secret", image, ["true"]))
    w = wait_for("a refused pull", lambda: (waiting(kubectl, "no-secret") or {}).get("reason") in
                 ("ErrImagePull", "ImagePullBackOff") and waiting(kubectl, "no-secret"), timeout=60)
    assert "credentials" in w["message"] or "authorization" in w["message"], w
    kubectl("create", "secret", "docker-registry", "regcred", f"--docker-server={AUTH_REGISTRY}",
            "--docker-username=alice", "--docker-password=s3cret")
    doc = image_pod("with-secret", image, ["echo", "authorized"], imagePullSecrets=[{"name": "regcred"}])
    assert run_to_completion(kubectl, doc) == "authorized\n"
