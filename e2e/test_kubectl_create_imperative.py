"""The imperative `kubectl create <kind>` commands. kubectl builds these objects itself and
sends them with its typed client (as application/vnd.kubernetes.protobuf for built-in
kinds), unlike `kubectl create -f`, which sends JSON."""

import base64
import json

import pytest

# kubectl's typed client sends protobuf request bodies for built-in kinds and client-go does
# not fall back to JSON; skiff decodes JSON and YAML only until protobuf request bodies land
# (the client-fidelity issue). Strict: these start failing the run once that works.


def get(kubectl, what, ns=None):
    args = ["get", what, "-o", "json"] + (["-n", ns] if ns else [])
    return json.loads(kubectl(*args))


def test_create_namespace(kubectl):
    assert kubectl("create", "namespace", "made-by-hand").strip() == "namespace/made-by-hand created"
    ns = get(kubectl, "namespace/made-by-hand")
    assert ns["status"]["phase"] == "Active"
    assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == "made-by-hand"


def test_create_configmap_from_literals(kubectl):
    out = kubectl("create", "configmap", "literal", "-n", "default", "--from-literal=a=1", "--from-literal=b=two")
    assert out.strip() == "configmap/literal created"
    assert get(kubectl, "configmap/literal", "default")["data"] == {"a": "1", "b": "two"}


def test_create_secret_generic(kubectl):
    out = kubectl("create", "secret", "generic", "creds", "-n", "default", "--from-literal=password=hunter2")
    assert out.strip() == "secret/creds created"
    secret = get(kubectl, "secret/creds", "default")
    assert secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["password"]) == b"hunter2"


def test_create_deployment(kubectl):
    out = kubectl("create", "deployment", "hello", "-n", "default", "--image=nginx:1.27", "--replicas=2")
    assert out.strip() == "deployment.apps/hello created"
    dep = get(kubectl, "deployment/hello", "default")
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["selector"] == {"matchLabels": {"app": "hello"}}
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"


def test_create_service_clusterip(kubectl):
    out = kubectl("create", "service", "clusterip", "hello", "-n", "default", "--tcp=80:8080")
    assert out.strip() == "service/hello created"
    svc = get(kubectl, "service/hello", "default")
    assert svc["spec"]["ports"][0]["port"] == 80
    assert svc["spec"]["ports"][0]["targetPort"] == 8080
    assert svc["spec"]["clusterIP"].startswith("10.43.")


def test_create_dry_run_client_and_server(kubectl):
    out = kubectl("create", "configmap", "dry", "-n", "default", "--from-literal=a=1", "--dry-run=server", "-o", "json")
    assert json.loads(out)["metadata"]["name"] == "dry"
    res = kubectl("get", "configmap", "dry", "-n", "default", check=False)
    assert res.returncode != 0 and "not found" in res.stderr
