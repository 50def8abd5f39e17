"""Client-side `kubectl apply`: a Deployment applied three times with changes is updated by
a three-way merge (manifest, last-applied-configuration, live object) sent as a strategic
merge patch, so what the manifest drops is removed and what others added is kept. Also
`kubectl diff`, kubectl's default strict validation, and `kubectl create --dry-run=server`."""

import copy
import json

import pytest

# The API server's behaviour alone: no controllers, so that these tests see
# the exact pods listed, with no Deployment's pods among them.
SKIFF_ARGS = ["--disable-controller-manager"]

NS = "applying"

# The first version of the manifest; later versions are edits of it. Env names stay clear of
# YAML 1.1's booleans (Y, N, yes, no...), which kubectl would turn into true/false.
BASE = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": NS, "labels": {"app": "web"}},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [{
                    "name": "app",
                    "image": "nginx:1.27",
                    "env": [{"name": "MODE", "value": "prod"}, {"name": "LEVEL", "value": "3"}],
                    "ports": [{"containerPort": 80}],
                }],
            },
        },
    },
}
SIDECAR = {"name": "sidecar", "image": "busybox:1.36", "command": ["sleep", "infinity"]}


def with_sidecar():
    doc = copy.deepcopy(BASE)
    doc["spec"]["template"]["spec"]["containers"].append(copy.deepcopy(SIDECAR))
    return doc


def third_version(image="nginx:1.27"):
    """The sidecar kept, env LEVEL dropped, port 80 changed to 8080."""
    doc = with_sidecar()
    app = doc["spec"]["template"]["spec"]["containers"][0]
    app["env"] = [{"name": "MODE", "value": "prod"}]
    app["ports"] = [{"containerPort": 8080}]
    app["image"] = image
    return doc


@pytest.fixture(scope="module", autouse=True)
def namespace(skiff):
    skiff.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))


def live(kubectl, what="deployment/web"):
    return json.loads(kubectl("get", what, "-n", NS, "-o", "json"))


def containers(dep):
    return dep["spec"]["template"]["spec"]["containers"]


def by_name(items):
    return {item["name"]: item for item in items}


def test_first_apply_creates(kubectl, manifest):
    out = kubectl("apply", "-f", manifest(BASE))
    assert out.strip() == "deployment.apps/web created"
    dep = live(kubectl)
    [app] = containers(dep)
    assert app["name"] == "app" and app["image"] == "nginx:1.27"
    assert app["env"] == [{"name": "MODE", "value": "prod"}, {"name": "LEVEL", "value": "3"}]
    assert app["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    # What was applied is remembered for the next three-way merge.
    last = json.loads(dep["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert containers(last) == BASE["spec"]["template"]["spec"]["containers"]


def test_second_apply_adds_a_container(kubectl, manifest):
    gen = live(kubectl)["metadata"]["generation"]
    out = kubectl("apply", "-f", manifest(with_sidecar()))
    assert out.strip() == "deployment.apps/web configured"
    dep = live(kubectl)
    assert [c["name"] for c in containers(dep)] == ["app", "sidecar"]
    app, sidecar = containers(dep)
    assert app["env"] == [{"name": "MODE", "value": "prod"}, {"name": "LEVEL", "value": "3"}]
    assert app["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert sidecar["image"] == "busybox:1.36" and sidecar["command"] == ["sleep", "infinity"]
    assert sidecar["terminationMessagePath"] == "/dev/termination-log"
    assert dep["metadata"]["generation"] == gen + 1


def test_third_apply_removes_env_and_changes_the_port(kubectl, manifest):
    kubectl("apply", "-f", manifest(third_version()))
    dep = live(kubectl)
    assert [c["name"] for c in containers(dep)] == ["app", "sidecar"]
    app, sidecar = containers(dep)
    assert app["env"] == [{"name": "MODE", "value": "prod"}]
    # Ports merge by containerPort: 80 left the manifest, so it leaves the object.
    assert app["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert app["image"] == "nginx:1.27"
    assert sidecar["command"] == ["sleep", "infinity"]
    # Applying the same manifest again changes nothing.
    rv = dep["metadata"]["resourceVersion"]
    assert kubectl("apply", "-f", manifest(third_version())).strip() == "deployment.apps/web unchanged"
    assert live(kubectl)["metadata"]["resourceVersion"] == rv


def test_changes_made_by_others_survive_an_apply(kubectl, manifest):
    kubectl("apply", "-f", manifest(third_version()))
    kubectl("scale", "deployment/web", "-n", NS, "--replicas=3")
    kubectl("label", "deployment/web", "-n", NS, "team=blue")
    kubectl("annotate", "deployment/web", "-n", NS, "note=hand-made")
    kubectl("set", "env", "deployment/web", "-n", NS, "-c", "app", "EXTRA=one")
    # The manifest mentions none of these, and neither did the last apply: they stay.
    kubectl("apply", "-f", manifest(third_version(image="nginx:1.28")))
    dep = live(kubectl)
    assert dep["spec"]["replicas"] == 3
    assert dep["metadata"]["labels"] == {"app": "web", "team": "blue"}
    assert dep["metadata"]["annotations"]["note"] == "hand-made"
    app = by_name(containers(dep))["app"]
    assert app["image"] == "nginx:1.28"
    assert by_name(app["env"]) == {"MODE": {"name": "MODE", "value": "prod"}, "EXTRA": {"name": "EXTRA", "value": "one"}}
    assert [c["name"] for c in containers(dep)] == ["app", "sidecar"]


def test_diff_shows_the_change_and_changes_nothing(kubectl, manifest):
    current = live(kubectl)
    image = by_name(containers(current))["app"]["image"]
    same = third_version(image=image)
    res = kubectl("diff", "-f", manifest(same), check=False)
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")

    changed = third_version(image="nginx:1.29")
    res = kubectl("diff", "-f", manifest(changed), check=False)
    assert res.returncode == 1, res.stderr
    lines = res.stdout.splitlines()
    assert f"-        image: {image}" in lines, res.stdout
    assert "+        image: nginx:1.29" in lines, res.stdout
    assert any(line.startswith("--- ") and "apps.v1.Deployment.applying.web" in line for line in lines), res.stdout
    # diff asks the server with dryRun: the live object is untouched.
    after = live(kubectl)
    assert after["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]
    assert by_name(containers(after))["app"]["image"] == image


def test_diff_of_a_new_object_creates_nothing(kubectl, manifest):
    doc = copy.deepcopy(BASE)
    doc["metadata"]["name"] = "not-yet"
    res = kubectl("diff", "-f", manifest(doc, "new.yaml"), check=False)
    assert res.returncode == 1, res.stderr
    assert "+  name: not-yet" in res.stdout.splitlines()
    assert "+kind: Deployment" in res.stdout.splitlines()
    res = kubectl("get", "deployment/not-yet", "-n", NS, check=False)
    assert res.returncode != 0 and "not found" in res.stderr


def test_strict_validation_refuses_an_unknown_field(kubectl, manifest):
    doc = copy.deepcopy(BASE)
    doc["metadata"]["name"] = "typo"
    doc["spec"]["replicaz"] = 2
    path = manifest(doc, "typo.yaml")
    for flags in (["--validate=strict"], []):  # strict is kubectl's default
        res = kubectl("apply", *flags, "-f", path, check=False)
        assert res.returncode == 1
        assert 'unknown field "spec.replicaz"' in res.stderr, res.stderr
        res = kubectl("get", "deployment/typo", "-n", NS, check=False)
        assert res.returncode != 0 and "not found" in res.stderr
    # Warn creates the object without the field and says what it dropped.
    res = kubectl("apply", "--validate=warn", "-f", path, check=False)
    assert res.returncode == 0, res.stderr
    assert 'Warning: unknown field "spec.replicaz"' in res.stderr
    assert "replicaz" not in live(kubectl, "deployment/typo")["spec"]
    kubectl("delete", "deployment/typo", "-n", NS)


def test_server_dry_run_create_returns_the_defaulted_object(kubectl):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "dry", "namespace": NS},
           "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}
    out = kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(pod))
    got = json.loads(out)
    assert got["metadata"]["name"] == "dry" and got["metadata"]["uid"]
    assert "resourceVersion" not in got["metadata"]
    [c] = got["spec"]["containers"]
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["imagePullPolicy"] == "IfNotPresent"
    spec = got["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["schedulerName"] == "default-scheduler"
    assert got["status"]["phase"] == "Pending"
    res = kubectl("get", "pod/dry", "-n", NS, check=False)
    assert res.returncode != 0 and "not found" in res.stderr
    assert kubectl("get", "pods", "-n", NS, "-o", "name") == ""
