"""The OpenAPI documents: `kubectl explain` reads them, and so can anyone over HTTP —
/openapi/v3 (a root listing one document per group version under a `?hash=` URL, with ETags,
304s, gzip and a 301 from an outdated hash) and the Swagger 2.0 /openapi/v2."""

import gzip
import json
import re

import pytest


def fields(text):
    """The `name<TAB><type>[ -required-]` lines of kubectl explain, by name (first wins)."""
    found = {}
    for line in text.splitlines():
        m = re.fullmatch(r"\s*(\S+)\t<(.+?)>( -required-)?", line)
        if m:
            found.setdefault(m.group(1), (m.group(2), bool(m.group(3))))
    return found


# ---- kubectl explain -------------------------------------------------------------------

def test_explain_a_nested_field(kubectl):
    out = kubectl("explain", "pods.spec.containers.livenessProbe")
    assert re.search(r"^KIND:\s+Pod$", out, re.M), out
    assert re.search(r"^VERSION:\s+v1$", out, re.M), out
    assert re.search(r"^FIELD:\s+livenessProbe <Probe>$", out, re.M), out
    assert "Periodic probe of container liveness." in out
    f = fields(out)
    assert f["initialDelaySeconds"] == ("integer", False)
    assert f["httpGet"] == ("HTTPGetAction", False)
    assert f["exec"] == ("ExecAction", False)
    assert f["failureThreshold"] == ("integer", False)


def test_explain_recursive(kubectl):
    out = kubectl("explain", "deployments", "--recursive")
    assert re.search(r"^GROUP:\s+apps$", out, re.M), out
    assert re.search(r"^KIND:\s+Deployment$", out, re.M), out
    # Nested fields, indented by depth.
    for line in ("    strategy\t<DeploymentStrategy>",
                 "      rollingUpdate\t<RollingUpdateDeployment>",
                 "        maxSurge\t<IntOrString>",
                 "    template\t<PodTemplateSpec> -required-",
                 "        containers\t<[]Container> -required-"):
        assert line in out.splitlines(), line
    assert len(out.splitlines()) > 500


def test_explain_marks_required_fields_as_kubernetes_does(kubectl):
    assert fields(kubectl("explain", "pods.spec"))["containers"] == ("[]Container", True)
    assert fields(kubectl("explain", "pods.spec.containers"))["name"] == ("string", True)
    # metadata is optional on every kind (ObjectMeta is `+optional` in the Go types).
    assert fields(kubectl("explain", "pods"))["metadata"] == ("ObjectMeta", False)
    assert fields(kubectl("explain", "configmaps"))["metadata"] == ("ObjectMeta", False)


def test_explain_an_unknown_field_fails(kubectl):
    res = kubectl("explain", "pods.spec.containers.livenessProbe.nope", check=False)
    assert res.returncode == 1
    assert 'field "nope" does not exist' in res.stderr, res.stderr
    res = kubectl("explain", "nosuchkind", check=False)
    assert res.returncode == 1
    assert 'the server doesn\'t have a resource type "nosuchkind"' in res.stderr, res.stderr


# ---- /openapi/v3 over HTTP ------------------------------------------------------------

@pytest.fixture(scope="module")
def root(skiff):
    status, headers, body = skiff.request("GET", "/openapi/v3")
    assert status == 200, body[:300]
    assert headers["content-type"] == "application/json"
    return json.loads(body)["paths"]


@pytest.fixture(scope="module")
def core_v1(skiff, root):
    status, headers, body = skiff.request("GET", root["api/v1"]["serverRelativeURL"])
    assert status == 200, body[:300]
    return headers, body, json.loads(body)


def test_root_lists_group_versions_by_hash(root):
    for path in ("api/v1", "apis/apps/v1", "apis/batch/v1", "apis/rbac.authorization.k8s.io/v1"):
        url = root[path]["serverRelativeURL"]
        assert re.fullmatch(rf"/openapi/v3/{re.escape(path)}\?hash=[0-9A-F]+", url), url


def test_a_group_version_document(core_v1):
    _, _, doc = core_v1
    assert doc["openapi"].startswith("3.0")
    schemas = doc["components"]["schemas"]
    assert schemas["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["x-kubernetes-list-type"] == "map"
    assert containers["x-kubernetes-list-map-keys"] == ["name"]
    assert containers["items"]["$ref"] == "#/components/schemas/io.k8s.api.core.v1.Container"
    # Every reference resolves inside the document.
    refs = set(re.findall(r'"\$ref":\s*"#/components/schemas/([^"]+)"', json.dumps(doc)))
    assert refs and refs <= set(schemas), refs - set(schemas)


def test_operations_list_patch_types_and_field_validation(core_v1):
    _, _, doc = core_v1
    item = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]
    assert {"get", "put", "patch", "delete"} <= set(item)
    patch = item["patch"]
    assert set(patch["requestBody"]["content"]) >= {
        "application/strategic-merge-patch+json", "application/merge-patch+json", "application/json-patch+json",
    }
    params = {p["name"]: p for p in patch["parameters"]}
    assert params["fieldValidation"]["in"] == "query"
    assert params["dryRun"]["in"] == "query"
    path_params = {p["name"] for p in item["parameters"] if p["in"] == "path"}
    assert path_params == {"name", "namespace"}


def test_apps_document_has_deployment(skiff, root):
    status, _, body = skiff.request("GET", root["apis/apps/v1"]["serverRelativeURL"])
    assert status == 200
    schemas = json.loads(body)["components"]["schemas"]
    dep = schemas["io.k8s.api.apps.v1.Deployment"]
    assert dep["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]["x-kubernetes-patch-strategy"] == "retainKeys"
    assert "io.k8s.api.core.v1.Pod" not in schemas  # each document holds what its group version reaches


def test_etag_answers_304(skiff, root, core_v1):
    headers, _, _ = core_v1
    etag = headers["etag"]
    assert re.fullmatch(r'"[0-9A-F]+"', etag), etag
    url = root["api/v1"]["serverRelativeURL"]
    status, h, body = skiff.request("GET", url, headers={"If-None-Match": etag})
    assert (status, body) == (304, b"")
    assert h["etag"] == etag
    status, _, body = skiff.request("GET", url, headers={"If-None-Match": '"stale"'})
    assert status == 200 and body
    # The root has its own ETag and honours it too.
    status, h, _ = skiff.request("GET", "/openapi/v3")
    assert skiff.request("GET", "/openapi/v3", headers={"If-None-Match": h["etag"]})[0] == 304


def test_an_outdated_hash_redirects_to_the_current_one(skiff, root):
    current = root["apis/apps/v1"]["serverRelativeURL"]
    status, headers, _ = skiff.request("GET", "/openapi/v3/apis/apps/v1?hash=0123456789ABCDEF")
    assert status == 301
    assert headers["location"] == current


def test_gzip_when_asked(skiff, root, core_v1):
    _, plain, _ = core_v1
    url = root["api/v1"]["serverRelativeURL"]
    status, headers, body = skiff.request("GET", url, headers={"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert body[:2] == b"\x1f\x8b" and len(body) < len(plain) // 3
    assert json.loads(gzip.decompress(body)) == json.loads(plain)
    assert "content-encoding" not in skiff.request("GET", url)[1]


# ---- /openapi/v2 ------------------------------------------------------------------------

def test_swagger_v2(skiff):
    status, headers, body = skiff.request("GET", "/openapi/v2", headers={"Accept": "application/json"})
    assert status == 200
    assert headers["content-type"] == "application/json"
    doc = json.loads(body)
    assert doc["swagger"] == "2.0"
    dep = doc["definitions"]["io.k8s.api.apps.v1.Deployment"]
    assert {"group": "apps", "kind": "Deployment", "version": "v1"} in dep["x-kubernetes-group-version-kind"]
    assert "/apis/apps/v1/namespaces/{namespace}/deployments/{name}" in doc["paths"]
    status, _, _ = skiff.request("GET", "/openapi/v2", headers={"If-None-Match": headers["etag"]})
    assert status == 304
