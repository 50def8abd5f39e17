"""Changing live objects with kubectl: label, annotate, scale, merge and JSON patch, and
reading them with describe. (kubectl label, annotate and scale send strategic merge or merge
patches; strategic merge patch itself is covered in test_kubectl_patch.py.)"""

import json
import re

import pytest

MANIFESTS = """\
apiVersion: v1
kind: Namespace
metadata: {name: edit}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: edit, labels: {app: web}}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports: [{containerPort: 80}]
        env: [{name: MODE, value: prod}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: edit, labels: {app: web}}
data:
  color: blue
  size: large
"""


@pytest.fixture(scope="module", autouse=True)
def objects(skiff):
    skiff.kubectl("apply", "-f", "-", input=MANIFESTS)


def get(kubectl, what):
    return json.loads(kubectl("get", what, "-n", "edit", "-o", "json"))


def describe_fields(text):
    """The top-level `Key:  value` lines of kubectl describe."""
    fields = {}
    for line in text.splitlines():
        if line and not line[0].isspace() and ":" in line:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    return fields


def test_describe_deployment(kubectl):
    text = kubectl("describe", "deployment", "web", "-n", "edit")
    f = describe_fields(text)
    assert f["Name"] == "web"
    assert f["Namespace"] == "edit"
    assert f["Labels"] == "app=web"
    assert f["Selector"] == "app=web"
    assert f["Replicas"].startswith("1 desired")
    assert f["StrategyType"] == "RollingUpdate"
    assert f["RollingUpdateStrategy"] == "25% max unavailable, 25% max surge"
    assert re.search(r"^\s+nginx:$", text, re.M), text
    assert re.search(r"^\s+Image:\s+nginx:1\.27$", text, re.M), text
    assert re.search(r"^\s+Port:\s+80/TCP$", text, re.M), text
    assert re.search(r"^\s+MODE:\s+prod$", text, re.M), text


def test_describe_configmap(kubectl):
    text = kubectl("describe", "configmap", "settings", "-n", "edit")
    f = describe_fields(text)
    assert f["Name"] == "settings"
    assert f["Namespace"] == "edit"
    assert f["Labels"] == "app=web"
    data = text.split("Data\n====\n", 1)[1]
    assert "color:\n----\nblue\n" in data
    assert "size:\n----\nlarge\n" in data


def test_label_add_overwrite_remove(kubectl):
    assert kubectl("label", "configmap", "settings", "-n", "edit", "tier=backend").strip() == "configmap/settings labeled"
    assert get(kubectl, "configmap/settings")["metadata"]["labels"] == {"app": "web", "tier": "backend"}
    # Changing an existing label needs --overwrite, as in Kubernetes.
    res = kubectl("label", "configmap", "settings", "-n", "edit", "tier=frontend", check=False)
    assert res.returncode != 0 and "already has a value (backend)" in res.stderr
    kubectl("label", "configmap", "settings", "-n", "edit", "tier=frontend", "--overwrite")
    assert get(kubectl, "configmap/settings")["metadata"]["labels"]["tier"] == "frontend"
    kubectl("label", "configmap", "settings", "-n", "edit", "tier-")
    assert get(kubectl, "configmap/settings")["metadata"]["labels"] == {"app": "web"}
    assert kubectl("get", "cm", "-n", "edit", "-l", "tier", "-o", "name") == ""


def test_annotate(kubectl):
    before = get(kubectl, "configmap/settings")["metadata"]["resourceVersion"]
    kubectl("annotate", "configmap", "settings", "-n", "edit", "owner=team-a", "note=hello world")
    meta = get(kubectl, "configmap/settings")["metadata"]
    assert meta["annotations"]["owner"] == "team-a"
    assert meta["annotations"]["note"] == "hello world"
    assert int(meta["resourceVersion"]) > int(before)
    text = kubectl("describe", "configmap", "settings", "-n", "edit")
    assert "owner: team-a" in text


def test_scale_deployment(kubectl):
    before = get(kubectl, "deployment/web")
    assert before["spec"]["replicas"] == 1
    out = kubectl("scale", "deployment", "web", "-n", "edit", "--replicas=3")
    assert out.strip() == "deployment.apps/web scaled"
    after = get(kubectl, "deployment/web")
    assert after["spec"]["replicas"] == 3
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    # The scale subresource shows the same.
    scale = json.loads(kubectl("get", "--raw", "/apis/apps/v1/namespaces/edit/deployments/web/scale"))
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"]["replicas"] == 3
    assert scale["status"]["selector"] == "app=web"
    # Scaling with a precondition that does not hold is refused.
    res = kubectl("scale", "deployment", "web", "-n", "edit", "--current-replicas=1", "--replicas=5", check=False)
    assert res.returncode != 0
    assert get(kubectl, "deployment/web")["spec"]["replicas"] == 3


def test_metadata_change_does_not_bump_generation(kubectl):
    gen = get(kubectl, "deployment/web")["metadata"]["generation"]
    kubectl("label", "deployment", "web", "-n", "edit", "extra=yes")
    assert get(kubectl, "deployment/web")["metadata"]["generation"] == gen


def test_merge_and_json_patch(kubectl):
    kubectl("patch", "configmap", "settings", "-n", "edit", "--type=merge", "-p", '{"data":{"size":null,"shape":"round"}}')
    assert get(kubectl, "configmap/settings")["data"] == {"color": "blue", "shape": "round"}
    kubectl("patch", "configmap", "settings", "-n", "edit", "--type=json",
            "-p", '[{"op":"replace","path":"/data/color","value":"red"},{"op":"add","path":"/data/new","value":"x"}]')
    assert get(kubectl, "configmap/settings")["data"] == {"color": "red", "shape": "round", "new": "x"}
    gen = get(kubectl, "deployment/web")["metadata"]["generation"]
    kubectl("patch", "deployment", "web", "-n", "edit", "--type=json",
            "-p", '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:1.28"}]')
    dep = get(kubectl, "deployment/web")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert dep["metadata"]["generation"] == gen + 1
    # A JSON patch whose test fails changes nothing and is an error.
    res = kubectl("patch", "configmap", "settings", "-n", "edit", "--type=json",
                  "-p", '[{"op":"test","path":"/data/color","value":"green"},{"op":"remove","path":"/data/color"}]',
                  check=False)
    assert res.returncode != 0
    assert get(kubectl, "configmap/settings")["data"]["color"] == "red"


def test_edit_with_an_editor(skiff, tmp_path):
    # kubectl edit runs $KUBE_EDITOR on a file holding the live object, then sends the change.
    skiff.kubectl("create", "configmap", "editable", "-n", "edit", "--from-literal=color=blue", "--from-literal=size=L")
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/color: blue/color: green/' \"$1\"\n")
    editor.chmod(0o755)
    out = skiff.kubectl("edit", "configmap/editable", "-n", "edit", env={"KUBE_EDITOR": str(editor)})
    assert "configmap/editable edited" in out
    cm = json.loads(skiff.kubectl("get", "configmap/editable", "-n", "edit", "-o", "json", "--show-managed-fields"))
    assert cm["data"] == {"color": "green", "size": "L"}
    managers = {(m["manager"], m["operation"]) for m in cm["metadata"]["managedFields"]}
    assert ("kubectl-edit", "Update") in managers
