"""Options of create: dryRun=All runs everything but the write and leaves nothing behind;
generateName makes a unique name from a prefix."""

import json
import re

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

NS = "default"


@pytest.fixture(scope="module")
def core(k8s):
    return kubernetes.client.CoreV1Api(k8s)


@pytest.fixture(scope="module")
def apps(k8s):
    return kubernetes.client.AppsV1Api(k8s)


def deployment(name=None, generate_name=None):
    meta = {"name": name} if name else {"generateName": generate_name}
    return {"metadata": meta, "spec": {
        "selector": {"matchLabels": {"app": "x"}},
        "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


def test_dry_run_create_returns_the_object_but_stores_nothing(core, apps):
    rv_before = core.list_namespaced_config_map(NS).metadata.resource_version
    cm = core.create_namespaced_config_map(NS, {"metadata": {"name": "dry"}, "data": {"a": "1"}}, dry_run="All")
    assert cm.metadata.name == "dry" and cm.data == {"a": "1"}
    assert cm.metadata.creation_timestamp is not None
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("dry", NS)
    assert e.value.status == 404
    # Defaults are applied in a dry run, as for a real create.
    dep = apps.create_namespaced_deployment(NS, deployment("dry-deploy"), dry_run="All")
    assert dep.spec.replicas == 1
    assert dep.spec.template.spec.containers[0].image_pull_policy == "Always"
    assert apps.list_namespaced_deployment(NS).items == []
    # Nothing was written at all.
    assert core.list_namespaced_config_map(NS).metadata.resource_version == rv_before


def test_dry_run_still_validates(core):
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map(NS, {"metadata": {"name": "Not_Valid"}}, dry_run="All")
    assert e.value.status == 422


def test_dry_run_delete_keeps_the_object(core):
    core.create_namespaced_config_map(NS, {"metadata": {"name": "keep-me"}})
    core.delete_namespaced_config_map("keep-me", NS, dry_run="All")
    assert core.read_namespaced_config_map("keep-me", NS).metadata.name == "keep-me"


def test_dry_run_from_kubectl(skiff):
    out = skiff.kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kubectl-dry", "namespace": NS}}))
    assert json.loads(out)["metadata"]["name"] == "kubectl-dry"
    res = skiff.kubectl("get", "configmap", "kubectl-dry", "-n", NS, check=False)
    assert res.returncode != 0 and "not found" in res.stderr


def test_dry_run_with_an_unknown_value_is_rejected(core):
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map(NS, {"metadata": {"name": "dry2"}}, dry_run="Everything")
    assert e.value.status == 400
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("dry2", NS)


def test_generate_name(core, apps):
    made = [core.create_namespaced_config_map(NS, {"metadata": {"generateName": "report-"}}) for _ in range(5)]
    names = [m.metadata.name for m in made]
    assert all(re.fullmatch(r"report-[a-z0-9]{5}", n) for n in names), names
    assert len(set(names)) == 5
    assert all(m.metadata.generate_name == "report-" for m in made)
    for n in names:
        assert core.read_namespaced_config_map(n, NS).metadata.name == n
    dep = apps.create_namespaced_deployment(NS, deployment(generate_name="web-"))
    assert dep.metadata.name.startswith("web-") and len(dep.metadata.name) == len("web-") + 5


def test_generate_name_with_kubectl_create(skiff):
    out = skiff.kubectl("create", "-o", "name", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "from-kubectl-", "namespace": NS}}))
    assert re.fullmatch(r"configmap/from-kubectl-[a-z0-9]{5}\n", out), out


def test_an_explicit_name_wins_over_generate_name(core):
    cm = core.create_namespaced_config_map(NS, {"metadata": {"name": "explicit", "generateName": "ignored-"}})
    assert cm.metadata.name == "explicit"


def test_an_invalid_generate_name_is_422(core):
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map(NS, {"metadata": {"generateName": "Bad_Prefix-"}})
    assert e.value.status == 422
