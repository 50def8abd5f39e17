"""`kubectl get` in the forms people type every day: tables, wide, yaml, json, jsonpath,
custom columns, all namespaces, label selectors, `get all` and short names."""

import json

import pytest
import yaml

# The API server's behaviour alone: no controllers, so that these tests see
# the exact pods listed, with no Deployment's pods among them.
SKIFF_ARGS = ["--disable-controller-manager"]

MANIFESTS = """\
apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: nginx, image: "nginx:1.27"}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: demo, labels: {app: api}}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: server, image: "example.com/api:2.0"}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo, labels: {app: web}}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: lone, namespace: demo, labels: {app: web}}
spec:
  containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web-settings, namespace: demo, labels: {app: web}}
data: {a: "1", b: "2"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: api-settings, namespace: demo, labels: {app: api}}
data: {a: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: elsewhere, namespace: other, labels: {app: web}}
data: {}
"""


@pytest.fixture(scope="module", autouse=True)
def objects(skiff):
    skiff.kubectl("apply", "-f", "-", input=MANIFESTS)


def table(text):
    """Splits kubectl's table output into (header, rows) of whitespace-separated cells."""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0].split(), [line.split() for line in lines[1:]]


def test_default_table_lists_names_and_ages(kubectl):
    header, rows = table(kubectl("get", "configmaps", "-n", "demo"))
    assert header[0] == "NAME" and header[-1] == "AGE"
    assert [r[0] for r in rows] == ["api-settings", "web-settings"]
    assert all(r[-1].endswith("s") for r in rows), rows  # created seconds ago


def test_tables_have_the_columns_kubernetes_prints_for_each_kind(kubectl):
    # The columns come from the server (kubectl asks for a meta.k8s.io Table).
    header, rows = table(kubectl("get", "configmaps", "-n", "demo"))
    assert header == ["NAME", "DATA", "AGE"]
    assert {r[0]: r[1] for r in rows} == {"api-settings": "1", "web-settings": "2"}

    header, rows = table(kubectl("get", "deployments", "-n", "demo"))
    assert header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert {r[0]: r[1] for r in rows} == {"api": "0/1", "web": "0/2"}

    header, rows = table(kubectl("get", "services", "-n", "demo"))
    assert header == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert rows[0][:2] == ["web", "ClusterIP"] and rows[0][4] == "80/TCP"

    header, rows = table(kubectl("get", "pods", "-n", "demo"))
    assert header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert rows[0][:4] == ["lone", "0/1", "Pending", "0"]


def test_wide_adds_the_wide_columns(kubectl):
    header, rows = table(kubectl("get", "deployments", "-n", "demo", "-o", "wide"))
    assert header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    by_name = {r[0]: r for r in rows}
    assert by_name["web"][-3:] == ["nginx", "nginx:1.27", "app=web"]
    assert by_name["api"][-3:] == ["server", "example.com/api:2.0", "app=api"]


def test_yaml_output_is_a_list_of_full_objects(kubectl):
    doc = yaml.safe_load(kubectl("get", "deployments", "-n", "demo", "-o", "yaml"))
    assert doc["kind"] == "List" and doc["apiVersion"] == "v1"
    by_name = {d["metadata"]["name"]: d for d in doc["items"]}
    assert set(by_name) == {"web", "api"}
    assert by_name["web"]["kind"] == "Deployment" and by_name["web"]["apiVersion"] == "apps/v1"
    assert by_name["web"]["spec"]["replicas"] == 2
    one = yaml.safe_load(kubectl("get", "deployment", "web", "-n", "demo", "-o", "yaml"))
    assert one["kind"] == "Deployment" and one["metadata"]["name"] == "web"


def test_json_output(kubectl):
    doc = json.loads(kubectl("get", "configmap", "web-settings", "-n", "demo", "-o", "json"))
    assert doc["kind"] == "ConfigMap" and doc["apiVersion"] == "v1"
    assert doc["data"] == {"a": "1", "b": "2"}
    assert doc["metadata"]["labels"] == {"app": "web"}


def test_jsonpath(kubectl):
    out = kubectl("get", "deployments", "-n", "demo", "-o", "jsonpath={.items[*].metadata.name}")
    assert out.split() == ["api", "web"]
    out = kubectl("get", "deployment", "web", "-n", "demo",
                  "-o", "jsonpath={.spec.template.spec.containers[0].image}:{.spec.replicas}")
    assert out == "nginx:1.27:2"


def test_custom_columns(kubectl):
    out = kubectl("get", "deployments", "-n", "demo",
                  "-o", "custom-columns=NAME:.metadata.name,IMAGE:.spec.template.spec.containers[0].image,REPLICAS:.spec.replicas")
    header, rows = table(out)
    assert header == ["NAME", "IMAGE", "REPLICAS"]
    assert rows == [["api", "example.com/api:2.0", "1"], ["web", "nginx:1.27", "2"]]


def test_all_namespaces(kubectl):
    header, rows = table(kubectl("get", "configmaps", "-A"))
    assert header[:2] == ["NAMESPACE", "NAME"]
    pairs = {(r[0], r[1]) for r in rows}
    assert {("demo", "api-settings"), ("demo", "web-settings"), ("other", "elsewhere")} <= pairs
    names = kubectl("get", "namespaces", "-o", "name").split()
    assert {"namespace/default", "namespace/kube-system", "namespace/kube-public",
            "namespace/kube-node-lease", "namespace/demo", "namespace/other"} <= set(names)


def test_label_selector(kubectl):
    out = kubectl("get", "configmaps", "-A", "-l", "app=web", "-o", "name")
    assert sorted(out.split()) == ["configmap/elsewhere", "configmap/web-settings"]
    out = kubectl("get", "configmaps", "-n", "demo", "-l", "app!=web", "-o", "name")
    assert out.split() == ["configmap/api-settings"]
    out = kubectl("get", "deployments", "-n", "demo", "-l", "app in (api,nothing)", "-o", "name")
    assert out.split() == ["deployment.apps/api"]
    res = kubectl("get", "configmaps", "-n", "demo", "-l", "app=nothing", check=False)
    assert res.returncode == 0
    assert res.stdout == ""
    assert "No resources found in demo namespace." in res.stderr


def test_get_all(kubectl):
    out = kubectl("get", "all", "-n", "demo", "-o", "name")
    names = set(out.split())
    assert {"pod/lone", "service/web", "deployment.apps/web", "deployment.apps/api"} <= names
    assert not any(n.startswith("configmap/") for n in names), "configmaps are not in 'all'"
    text = kubectl("get", "all", "-n", "demo")
    for expected in ("pod/lone", "service/web", "deployment.apps/web", "deployment.apps/api"):
        assert expected in text


@pytest.mark.parametrize("short,expected", [
    ("po", ["pod/lone"]),
    ("deploy", ["deployment.apps/api", "deployment.apps/web"]),
    ("svc", ["service/web"]),
    ("cm", ["configmap/api-settings", "configmap/web-settings"]),
    ("ns/demo", ["namespace/demo"]),
])
def test_short_names(kubectl, short, expected):
    args = ["get", short, "-o", "name"]
    if not short.startswith("ns"):
        args += ["-n", "demo"]
    assert kubectl(*args).split() == expected


def test_get_missing_object_says_not_found(kubectl):
    res = kubectl("get", "configmap", "nope", "-n", "demo", check=False)
    assert res.returncode == 1
    assert 'configmaps "nope" not found' in res.stderr
