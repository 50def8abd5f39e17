"""Finalizers: deleting an object that has one only marks it (deletionTimestamp); it stays
until the last finalizer is removed, and then it is gone."""

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

NS = "default"
CM = f"/api/v1/namespaces/{NS}/configmaps"
MERGE = {"_content_type": "application/merge-patch+json"}  # strategic merge is not implemented yet


@pytest.fixture(scope="module")
def core(k8s):
    return kubernetes.client.CoreV1Api(k8s)


def test_delete_marks_and_keeps_the_object(skiff, core):
    core.create_namespaced_config_map(NS, {"metadata": {"name": "held", "finalizers": ["example.com/a", "example.com/b"]},
                                           "data": {"k": "v"}})
    code, doc = skiff.request_json("DELETE", f"{CM}/held")
    # kube-apiserver answers 200 with the object, now carrying its deletionTimestamp.
    assert doc["kind"] == "ConfigMap", doc
    assert doc["metadata"]["deletionTimestamp"]
    assert doc["metadata"]["deletionGracePeriodSeconds"] == 0
    held = core.read_namespaced_config_map("held", NS)
    assert held.metadata.deletion_timestamp is not None
    assert held.metadata.finalizers == ["example.com/a", "example.com/b"]
    assert held.data == {"k": "v"}
    assert code == 200, f"DELETE of an object kept by finalizers answered {code}"


def test_deleting_again_changes_nothing(core):
    before = core.read_namespaced_config_map("held", NS)
    core.delete_namespaced_config_map("held", NS)
    after = core.read_namespaced_config_map("held", NS)
    assert after.metadata.deletion_timestamp == before.metadata.deletion_timestamp
    assert after.metadata.finalizers == before.metadata.finalizers


def test_no_new_finalizers_while_deleting(core):
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_config_map("held", NS, {"metadata": {"finalizers": ["example.com/a", "example.com/b", "example.com/c"]}}, **MERGE)
    assert e.value.status == 422
    assert core.read_namespaced_config_map("held", NS).metadata.finalizers == ["example.com/a", "example.com/b"]


def test_removing_one_finalizer_keeps_it_removing_the_last_deletes_it(core):
    rv = core.read_namespaced_config_map("held", NS).metadata.resource_version
    core.patch_namespaced_config_map("held", NS, {"metadata": {"finalizers": ["example.com/b"]}}, **MERGE)
    assert core.read_namespaced_config_map("held", NS).metadata.finalizers == ["example.com/b"]
    core.patch_namespaced_config_map("held", NS, {"metadata": {"finalizers": None}}, **MERGE)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("held", NS)
    assert e.value.status == 404
    # Watchers saw the object change, then go.
    events = [(ev["type"], ev["object"].metadata.finalizers)
              for ev in kubernetes.watch.Watch().stream(core.list_namespaced_config_map, NS, resource_version=rv,
                                                        timeout_seconds=1, _request_timeout=10)
              if ev["object"].metadata.name == "held"]
    assert [t for t, _ in events] == ["MODIFIED", "DELETED"], events
    assert events[0][1] == ["example.com/b"]


def test_the_name_is_free_again(core):
    cm = core.create_namespaced_config_map(NS, {"metadata": {"name": "held"}})
    assert cm.metadata.deletion_timestamp is None


def test_an_object_without_finalizers_goes_at_once(skiff, core):
    core.create_namespaced_config_map(NS, {"metadata": {"name": "plain"}})
    code, doc = skiff.request_json("DELETE", f"{CM}/plain")
    assert code == 200, doc
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("plain", NS)
    assert e.value.status == 404
