"""A namespace being deleted is Terminating: the API server refuses new objects in it with
403 Forbidden, while its existing objects stay readable and changeable. The controller
manager is off here, so that nothing empties and removes the namespace while these API
server behaviours are checked (test_namespace_deletion.py covers the controller)."""

import json

import pytest

SKIFF_ARGS = ["--disable-controller-manager"]
NS = "doomed"
CMS = f"/api/v1/namespaces/{NS}/configmaps"


@pytest.fixture(scope="module", autouse=True)
def terminating(skiff):
    skiff.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "existing", "namespace": NS}, "data": {"a": "1"}},
    ]}))
    out = skiff.kubectl("delete", "namespace", NS, "--wait=false")
    assert out.strip() == f'namespace "{NS}" deleted'


def test_namespace_is_terminating(kubectl):
    ns = json.loads(kubectl("get", "namespace", NS, "-o", "json"))
    assert ns["status"]["phase"] == "Terminating"
    assert ns["metadata"]["deletionTimestamp"]
    assert ns["spec"]["finalizers"] == ["kubernetes"]


def test_new_objects_are_forbidden(skiff):
    code, doc = skiff.request_json("POST", CMS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}})
    assert code == 403, doc
    assert doc["kind"] == "Status" and doc["reason"] == "Forbidden" and doc["code"] == 403
    assert doc["details"]["causes"] == [{"field": "metadata.namespace", "reason": "NamespaceTerminating",
                                         "message": f"namespace {NS} is being terminated"}]
    assert doc["message"] == f'configmaps "late" is forbidden: unable to create new content in namespace {NS} because it is being terminated'


def test_kubectl_create_in_it_fails_with_the_reason(skiff):
    res = skiff.kubectl("create", "-f", "-", check=False, input=json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late2", "namespace": NS}}))
    assert res.returncode != 0
    assert "Forbidden" in res.stderr
    assert f"unable to create new content in namespace {NS} because it is being terminated" in res.stderr
    assert skiff.kubectl("get", "configmap", "late2", "-n", NS, check=False).returncode != 0


def test_existing_objects_can_still_be_read_and_changed(kubectl):
    kubectl("label", "configmap", "existing", "-n", NS, "still=here")
    cm = json.loads(kubectl("get", "configmap", "existing", "-n", NS, "-o", "json"))
    assert cm["metadata"]["labels"] == {"still": "here"}
    assert cm["data"] == {"a": "1"}


def test_other_namespaces_are_unaffected(skiff):
    code, doc = skiff.request_json("POST", "/api/v1/namespaces/default/configmaps",
                                   {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fine"}})
    assert code == 201, doc


def test_the_namespace_cannot_be_recreated_while_terminating(skiff):
    code, doc = skiff.request_json("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    assert code == 409, doc
    assert doc["reason"] == "AlreadyExists"


def test_deleting_a_namespace_answers_200_with_it_terminating(skiff):
    code, doc = skiff.request_json("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed-too"}})
    assert code == 201, doc
    code, doc = skiff.request_json("DELETE", "/api/v1/namespaces/doomed-too")
    assert doc["kind"] == "Namespace", doc
    assert doc["status"]["phase"] == "Terminating"
    assert doc["metadata"]["deletionTimestamp"]
    # kube-apiserver answers 200 here (202 only when orphanDependents=false was asked for).
    assert code == 200, f"DELETE of a namespace answered {code}"
