"""Aggregated discovery (apidiscovery.k8s.io/v2): /api and /apis describe every resource in
one answer each, so kubectl discovers the whole API in two requests."""

import json
import re

ACCEPT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"


def discover(skiff, path):
    status, headers, body = skiff.request("GET", path, headers={"Accept": ACCEPT})
    assert status == 200, body
    assert headers["content-type"] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    doc = json.loads(body)
    assert doc["kind"] == "APIGroupDiscoveryList" and doc["apiVersion"] == "apidiscovery.k8s.io/v2"
    return doc


def test_core_group(skiff):
    doc = discover(skiff, "/api")
    [core] = doc["items"]
    assert core["metadata"]["name"] == ""
    [v1] = core["versions"]
    pods = next(r for r in v1["resources"] if r["resource"] == "pods")
    assert pods["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert pods["scope"] == "Namespaced" and pods["singularResource"] == "pod"
    assert pods["shortNames"] == ["po"] and pods["categories"] == ["all"]
    subs = {s["subresource"]: s for s in pods["subresources"]}
    assert set(subs) >= {"status", "binding", "log", "exec"}
    namespaces = next(r for r in v1["resources"] if r["resource"] == "namespaces")
    assert namespaces["scope"] == "Cluster"


def test_named_groups(skiff):
    doc = discover(skiff, "/apis")
    groups = {g["metadata"]["name"]: g for g in doc["items"]}
    assert "" not in groups and {"apps", "batch", "autoscaling", "rbac.authorization.k8s.io"} <= set(groups)
    assert [v["version"] for v in groups["autoscaling"]["versions"]] == ["v2", "v1"]
    deployments = next(r for r in groups["apps"]["versions"][0]["resources"] if r["resource"] == "deployments")
    scale = next(s for s in deployments["subresources"] if s["subresource"] == "scale")
    assert scale["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}


def test_kubectl_discovers_in_two_requests(skiff):
    cache = skiff.data_dir / "kube-cache"
    res = skiff.kubectl("get", "deployments", "-A", "-v=6", f"--cache-dir={cache}", check=False)
    assert res.returncode == 0, res.stderr
    urls = re.findall(r'url="https://[^/]+(/[^"?]*)', res.stderr)
    discovery = [u for u in urls if u in ("/api", "/apis") or re.fullmatch(r"/apis?/[^/]+(/[^/]+)?", u)]
    assert discovery == ["/api", "/apis"], urls
