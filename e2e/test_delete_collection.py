"""DELETE on a collection (deletecollection) removes what the label selector picks, and
only that."""

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

# The API server's behaviour alone: without controllers, a namespace holds only what these
# tests put in it (no kube-root-ca.crt ConfigMap or default ServiceAccount).
SKIFF_ARGS = ["--disable-controller-manager"]

NS = "sweep"


@pytest.fixture(scope="module")
def core(k8s):
    api = kubernetes.client.CoreV1Api(k8s)
    api.create_namespace({"metadata": {"name": NS}})
    api.create_namespace({"metadata": {"name": "bystander"}})
    for i in range(12):
        api.create_namespaced_config_map(NS, {"metadata": {"name": f"cm-{i:02d}", "labels": {
            "batch": "old" if i < 8 else "new", "shard": str(i % 2)}}})
    api.create_namespaced_config_map("bystander", {"metadata": {"name": "same-label", "labels": {"batch": "old"}}})
    return api


def names(core, ns=NS, **kw):
    return sorted(cm.metadata.name for cm in core.list_namespaced_config_map(ns, **kw).items)


def test_delete_collection_by_label(core):
    core.delete_collection_namespaced_config_map(NS, label_selector="batch=old,shard=0")
    assert names(core) == ["cm-01", "cm-03", "cm-05", "cm-07", "cm-08", "cm-09", "cm-10", "cm-11"]
    # Another namespace's objects with the same labels are untouched.
    assert names(core, "bystander") == ["same-label"]


def test_delete_collection_with_set_selector(core):
    core.delete_collection_namespaced_config_map(NS, label_selector="batch in (old)")
    assert names(core) == ["cm-08", "cm-09", "cm-10", "cm-11"]


def test_delete_collection_is_seen_by_a_watch(core):
    w = kubernetes.watch.Watch()
    rv = core.list_namespaced_config_map(NS).metadata.resource_version
    core.delete_collection_namespaced_config_map(NS, label_selector="shard=1")
    deleted = [ev["object"].metadata.name for ev in w.stream(core.list_namespaced_config_map, NS, resource_version=rv,
                                                             timeout_seconds=1, _request_timeout=10)
               if ev["type"] == "DELETED"]
    assert sorted(deleted) == ["cm-09", "cm-11"]
    assert names(core) == ["cm-08", "cm-10"]


def test_delete_collection_dry_run_keeps_everything(core):
    core.delete_collection_namespaced_config_map(NS, dry_run="All")
    assert names(core) == ["cm-08", "cm-10"]


def test_delete_collection_without_selector_empties_the_namespace(core):
    core.delete_collection_namespaced_config_map(NS)
    assert names(core) == []
    assert names(core, "bystander") == ["same-label"]


def test_delete_collection_with_a_bad_selector_is_400(core):
    with pytest.raises(ApiException) as e:
        core.delete_collection_namespaced_config_map("bystander", label_selector="batch in (")
    assert e.value.status == 400
    assert names(core, "bystander") == ["same-label"]
