"""Bad requests, sent raw over HTTPS with the standard library: each gets a Kubernetes
Status with the right code and reason (never a panic, a hang or a 500), and the server
keeps serving afterwards."""

import json

import pytest

from conftest import status_of

SKIFF_FILES = {"tokens.csv": 'dev-token-abc,dana,2001,"developers"\n'}
SKIFF_ARGS = ["--token-auth-file", "{root}/tokens.csv"]

CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
PODS = "/api/v1/namespaces/default/pods"


def post(skiff, path, body, content_type="application/json", **kw):
    headers = {"Content-Type": content_type, "Accept": "application/json"}
    return skiff.request_json("POST", path, body, headers=headers, **kw)


def causes(doc):
    return {c.get("field") for c in doc.get("details", {}).get("causes", [])}


def test_malformed_json_is_400(skiff):
    code, doc = post(skiff, CMS, b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {')
    assert code == 400
    status_of(doc, 400, "BadRequest")


def test_malformed_yaml_is_400(skiff):
    code, doc = post(skiff, CMS, b"apiVersion: v1\nkind: ConfigMap\nmetadata: [name: x\n  - : :", content_type="application/yaml")
    assert code == 400
    status_of(doc, 400, "BadRequest")


def test_well_formed_yaml_is_accepted(skiff):
    code, doc = post(skiff, CMS, b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: b\n",
                     content_type="application/yaml")
    assert code == 201, doc
    assert doc["metadata"]["name"] == "from-yaml" and doc["data"] == {"a": "b"}


def test_a_json_array_or_scalar_is_400(skiff):
    for body in (b"[]", b"42", b'"text"', b""):
        code, doc = post(skiff, CMS, body)
        assert code == 400, (body, doc)
        status_of(doc, 400, "BadRequest")


def test_wrong_kind_is_400(skiff):
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "oops"}, "spec": {"ports": [{"port": 80}]}}
    code, doc = post(skiff, CMS, svc)
    assert code == 400
    status_of(doc, 400, "BadRequest")
    assert "Service" in doc["message"] and "ConfigMap" in doc["message"]


def test_wrong_api_version_is_400(skiff):
    code, doc = post(skiff, CMS, {"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "oops"}})
    assert code == 400
    status_of(doc, 400, "BadRequest")
    code, doc = post(skiff, DEPLOYS, {"apiVersion": "v1", "kind": "Deployment", "metadata": {"name": "oops"}})
    assert code == 400
    status_of(doc, 400, "BadRequest")


def test_deployment_without_selector_or_containers_is_422(skiff):
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "incomplete"},
            "spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {}}}}
    code, doc = post(skiff, DEPLOYS, body)
    assert code == 422
    status_of(doc, 422, "Invalid")
    assert {"spec.selector", "spec.template.spec.containers"} <= causes(doc), doc
    assert doc["details"]["kind"] == "Deployment" and doc["details"]["name"] == "incomplete"
    assert doc["details"]["group"] == "apps"
    assert doc["message"].startswith('Deployment.apps "incomplete" is invalid')


def test_pod_container_without_image_is_422(skiff):
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "noimage"},
            "spec": {"containers": [{"name": "c"}]}}
    code, doc = post(skiff, PODS, body)
    assert code == 422
    status_of(doc, 422, "Invalid")
    assert causes(doc) == {"spec.containers[0].image"}
    cause = doc["details"]["causes"][0]
    assert cause["reason"] == "FieldValueRequired"


def test_invalid_name_is_422(skiff):
    code, doc = post(skiff, CMS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}})
    assert code == 422
    status_of(doc, 422, "Invalid")
    assert causes(doc) == {"metadata.name"}
    assert doc["details"]["causes"][0]["reason"] == "FieldValueInvalid"


def test_missing_name_is_422(skiff):
    code, doc = post(skiff, CMS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})
    assert code == 422
    status_of(doc, 422, "Invalid")
    assert "metadata.name" in causes(doc)


def test_body_over_3_mib_is_413(skiff):
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "huge"}, "data": {"a": "x" * (3 * 1024 * 1024 + 1)}}
    code, doc = post(skiff, CMS, body, timeout=30)
    assert code == 413
    status_of(doc, 413, "RequestEntityTooLarge")
    code, doc = skiff.request_json("GET", f"{CMS}/huge")
    assert code == 404


def test_stale_resource_version_on_update_is_409(skiff):
    code, created = post(skiff, CMS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "contended"}, "data": {"v": "1"}})
    assert code == 201
    first_rv = created["metadata"]["resourceVersion"]
    created["data"] = {"v": "2"}
    code, updated = skiff.request_json("PUT", f"{CMS}/contended", created)
    assert code == 200, updated
    assert int(updated["metadata"]["resourceVersion"]) > int(first_rv)
    created["data"] = {"v": "3"}  # still carries first_rv
    code, doc = skiff.request_json("PUT", f"{CMS}/contended", created)
    assert code == 409
    status_of(doc, 409, "Conflict")
    assert "the object has been modified" in doc["message"]
    code, now = skiff.request_json("GET", f"{CMS}/contended")
    assert now["data"] == {"v": "2"}


def test_create_of_an_existing_name_is_409_already_exists(skiff):
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "twice"}}
    assert post(skiff, CMS, body)[0] == 201
    code, doc = post(skiff, CMS, body)
    assert code == 409
    status_of(doc, 409, "AlreadyExists")
    assert (doc["details"]["name"], doc["details"]["kind"], doc["details"].get("group", "")) == ("twice", "configmaps", "")


def test_unauthenticated_request_is_401(skiff):
    code, doc = skiff.request_json("GET", "/api/v1/namespaces", client_cert=False)
    assert code == 401
    status_of(doc, 401, "Unauthorized")
    code, doc = skiff.request_json("GET", "/api/v1/namespaces", client_cert=False, token="no-such-token")
    assert code == 401
    status_of(doc, 401, "Unauthorized")


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/livez", "/version"])
def test_health_and_version_answer_anonymously(skiff, path):
    code, _, body = skiff.request("GET", path, client_cert=False)
    assert code == 200, body
    if path == "/version":
        v = json.loads(body)
        assert v["major"] == "1" and v["minor"] == "37"
        assert v["gitVersion"].startswith("v1.37.")
    else:
        assert body == b"ok"


def test_anonymous_user_cannot_read_discovery_of_resources(skiff):
    code, doc = skiff.request_json("GET", "/api/v1/namespaces/default/secrets", client_cert=False)
    assert code == 401
    status_of(doc, 401, "Unauthorized")


def test_token_user_outside_system_masters_is_forbidden(skiff):
    code, doc = skiff.request_json("GET", PODS, client_cert=False, token="dev-token-abc")
    assert code == 403
    status_of(doc, 403, "Forbidden")
    assert doc["message"] == 'pods is forbidden: User "dana" cannot list resource "pods" in API group "" in the namespace "default"'
    forbidden = doc
    # Signed-in users may still read discovery.
    code, doc = skiff.request_json("GET", "/apis", client_cert=False, token="dev-token-abc")
    assert code == 200 and doc["kind"] == "APIGroupList"
    # As in kube-apiserver's Forbidden errors, details name the resource.
    assert forbidden.get("details", {}).get("kind") == "pods", forbidden


def test_token_user_can_review_itself(skiff):
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    code, doc = skiff.request_json("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", review,
                                   client_cert=False, token="dev-token-abc")
    assert code == 201, doc
    assert doc["kind"] == "SelfSubjectReview"
    info = doc["status"]["userInfo"]
    assert info["username"] == "dana"
    assert info["uid"] == "2001"
    assert set(info["groups"]) == {"developers", "system:authenticated"}


def test_admin_reviews_itself(skiff):
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    code, doc = skiff.request_json("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", review)
    assert code == 201, doc
    info = doc["status"]["userInfo"]
    assert info["username"] == "skiff-admin"
    assert "system:masters" in info["groups"]
    assert "system:authenticated" in info["groups"]


def test_unknown_resource_is_404(skiff):
    code, doc = skiff.request_json("GET", "/api/v1/foos")
    assert code == 404
    status_of(doc, 404, "NotFound")
    code, doc = skiff.request_json("GET", "/apis/nosuch.example.com/v1/things")
    assert code == 404
    status_of(doc, 404, "NotFound")


def test_create_in_an_unknown_namespace_is_404(skiff):
    code, doc = post(skiff, "/api/v1/namespaces/nowhere/configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    assert code == 404
    status_of(doc, 404, "NotFound")
    assert doc["message"] == 'namespaces "nowhere" not found'
    assert (doc["details"]["name"], doc["details"]["kind"], doc["details"].get("group", "")) == ("nowhere", "namespaces", "")


def test_get_of_a_missing_object_is_404(skiff):
    code, doc = skiff.request_json("GET", f"{CMS}/absent")
    assert code == 404
    status_of(doc, 404, "NotFound")
    assert doc["message"] == 'configmaps "absent" not found'


def test_protobuf_only_accept_is_406(skiff):
    code, doc = skiff.request_json("GET", CMS, headers={"Accept": "application/vnd.kubernetes.protobuf"})
    assert code == 406
    status_of(doc, 406, "NotAcceptable")


def test_unknown_content_type_is_415(skiff):
    code, doc = post(skiff, CMS, b"name=x", content_type="application/x-www-form-urlencoded")
    assert code == 415
    status_of(doc, 415, "UnsupportedMediaType")


def test_method_not_allowed(skiff):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "via-item-path"}}
    # POST creates in a collection; to an object's path it is not allowed (and creates nothing).
    code, doc = skiff.request_json("POST", f"{CMS}/via-item-path", cm, headers={"Content-Type": "application/json"})
    created = skiff.request_json("GET", f"{CMS}/via-item-path")[0] == 200
    assert (code, created) == (405, False), doc
    status_of(doc, 405, "MethodNotAllowed")
    # PUT and PATCH name an object; on the collection they are not allowed.
    code, doc = skiff.request_json("PUT", CMS, cm, headers={"Content-Type": "application/json"})
    assert code == 405, doc
    status_of(doc, 405, "MethodNotAllowed")
    code, doc = skiff.request_json("PATCH", CMS, b"{}", headers={"Content-Type": "application/merge-patch+json"})
    assert code == 405, doc
    status_of(doc, 405, "MethodNotAllowed")


def test_bad_query_parameters_are_400(skiff):
    for query in ("labelSelector=a%20in%20(", "fieldSelector=spec.nosuch%3Dx", "limit=-x", "timeoutSeconds=soon&watch=1"):
        code, doc = skiff.request_json("GET", f"{CMS}?{query}")
        assert code == 400, (query, doc)
        status_of(doc, 400, "BadRequest")


def test_server_is_still_ready_after_all_of_it(skiff):
    code, _, body = skiff.request("GET", "/readyz", client_cert=False)
    assert (code, body) == (200, b"ok")
    code, doc = skiff.request_json("GET", CMS)
    assert code == 200 and doc["kind"] == "ConfigMapList"
