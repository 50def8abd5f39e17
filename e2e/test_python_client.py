"""The official Python client beyond the core group: `kubernetes.dynamic.DynamicClient` finds
resources through discovery and creates, gets, lists and patches them in core, apps, batch,
networking.k8s.io and rbac.authorization.k8s.io (including a server-side apply);
`kubernetes.utils.create_from_yaml` creates a multi-document application spanning those
groups, which the typed APIs then read back; and the typed `patch_namespaced_deployment`,
which sends a dict body as a strategic merge patch, changes one container in place."""

import json

import pytest
import yaml
from kubernetes import client, utils
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

# The API server's behaviour alone: without controllers, a namespace holds only what these
# tests put in it (no kube-root-ca.crt ConfigMap or default ServiceAccount).
SKIFF_ARGS = ["--disable-controller-manager"]

NS = "pyclient"
APP_NS = "from-yaml"


def deployment(name, ns=NS):
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [
                    {"name": "app", "image": "nginx:1.27", "env": [{"name": "MODE", "value": "prod"}]},
                    {"name": "sidecar", "image": "busybox:1.36", "command": ["sleep", "infinity"]},
                ]},
            },
        },
    }


def job(name, ns=NS):
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": ns},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "once", "image": "busybox:1.36", "command": ["true"]}]}}},
    }


def role(name, ns=NS):
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name, "namespace": ns},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
    }


# One object of each kind the dynamic client walks through, by (apiVersion, kind).
OBJECTS = {
    ("v1", "ConfigMap"): {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dyn", "namespace": NS}, "data": {"a": "1"}},
    ("apps/v1", "Deployment"): deployment("dyn"),
    ("batch/v1", "Job"): job("dyn"),
    ("networking.k8s.io/v1", "Ingress"): {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "dyn", "namespace": NS},
        "spec": {"rules": [{"host": "dyn.example.com", "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "dyn", "port": {"number": 80}}},
        }]}}]},
    },
    ("rbac.authorization.k8s.io/v1", "Role"): role("dyn"),
}

MULTI_DOC = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": APP_NS}},
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": APP_NS}, "data": {"color": "blue"}},
    deployment("shop", APP_NS),
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "shop", "namespace": APP_NS},
     "spec": {"selector": {"app": "shop"}, "ports": [{"port": 80, "targetPort": 8080}]}},
    job("migrate", APP_NS),
    role("reader", APP_NS),
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "reader", "namespace": APP_NS},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
     "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": APP_NS}]},
]


@pytest.fixture(scope="module")
def dyn(skiff, k8s):
    # The discovery cache lives with this module's server (ports are reused between modules).
    client.CoreV1Api(k8s).create_namespace({"metadata": {"name": NS}})
    return DynamicClient(k8s, cache_file=str(skiff.data_dir.parent / "dynamic-discovery.json"))


def res(dyn, api_version, kind):
    return dyn.resources.get(api_version=api_version, kind=kind)


@pytest.mark.parametrize("api_version,kind", list(OBJECTS), ids=[k for _, k in OBJECTS])
def test_dynamic_client_creates_gets_and_lists(dyn, api_version, kind):
    r = res(dyn, api_version, kind)
    assert r.namespaced
    created = r.create(body=OBJECTS[(api_version, kind)], namespace=NS)
    assert (created.apiVersion, created.kind, created.metadata.name) == (api_version, kind, "dyn")
    assert created.metadata.uid and created.metadata.resourceVersion

    got = r.get(name="dyn", namespace=NS)
    assert got.metadata.uid == created.metadata.uid
    listed = r.get(namespace=NS)
    assert listed.kind == f"{kind}List"
    assert [o.metadata.name for o in listed.items] == ["dyn"]
    everywhere = r.get()
    assert (NS, "dyn") in {(o.metadata.namespace, o.metadata.name) for o in everywhere.items}


def test_dynamic_client_reads_what_it_created(dyn):
    dep = res(dyn, "apps/v1", "Deployment").get(name="dyn", namespace=NS)
    assert [c.name for c in dep.spec.template.spec.containers] == ["app", "sidecar"]
    assert dep.spec.strategy.type == "RollingUpdate"
    ing = res(dyn, "networking.k8s.io/v1", "Ingress").get(name="dyn", namespace=NS)
    assert ing.spec.rules[0].http.paths[0].backend.service.port.number == 80
    rl = res(dyn, "rbac.authorization.k8s.io/v1", "Role").get(name="dyn", namespace=NS)
    assert rl.rules[0].verbs == ["get", "list"]
    jb = res(dyn, "batch/v1", "Job").get(name="dyn", namespace=NS)
    assert jb.spec.template.spec.restartPolicy == "Never"
    assert jb.spec.backoffLimit == 6


def test_dynamic_merge_patch(dyn):
    cms = res(dyn, "v1", "ConfigMap")
    out = cms.patch(body={"data": {"b": "2"}}, name="dyn", namespace=NS, content_type="application/merge-patch+json")
    assert dict(out.data) == {"a": "1", "b": "2"}
    assert dict(cms.get(name="dyn", namespace=NS).data) == {"a": "1", "b": "2"}


def test_dynamic_default_patch_is_strategic(dyn):
    # DynamicClient.patch defaults to application/strategic-merge-patch+json: containers merge by name.
    deps = res(dyn, "apps/v1", "Deployment")
    body = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}}}}
    out = deps.patch(body=body, name="dyn", namespace=NS)
    cs = {c.name: c for c in out.spec.template.spec.containers}
    assert set(cs) == {"app", "sidecar"}
    assert cs["app"].image == "nginx:1.28"
    assert [e.to_dict() for e in cs["app"].env] == [{"name": "MODE", "value": "prod"}]


def test_dynamic_server_side_apply(dyn):
    cms = res(dyn, "v1", "ConfigMap")
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied", "namespace": NS}, "data": {"owner": "py"}}
    out = cms.server_side_apply(body=doc, name="applied", namespace=NS, field_manager="py")
    assert dict(out.data) == {"owner": "py"}
    [entry] = out.metadata.managedFields
    assert (entry.manager, entry.operation) == ("py", "Apply")
    assert entry.fieldsV1.to_dict() == {"f:data": {"f:owner": {}}}

    # Another applier setting the same key to another value conflicts, until it forces.
    other = {**doc, "data": {"owner": "other"}}
    with pytest.raises(ApiException) as err:
        cms.server_side_apply(body=other, name="applied", namespace=NS, field_manager="other")
    assert err.value.status == 409
    status = json.loads(err.value.body)
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "py": .data.owner'
    assert status["details"]["causes"] == [{"reason": "FieldManagerConflict", "message": 'conflict with "py"', "field": ".data.owner"}]
    out = cms.server_side_apply(body=other, name="applied", namespace=NS, field_manager="other", force_conflicts=True)
    assert dict(out.data) == {"owner": "other"}
    owners = {m.manager: m.fieldsV1.to_dict() for m in out.metadata.managedFields}
    assert owners == {"other": {"f:data": {"f:owner": {}}}}


def test_create_from_yaml_spanning_groups(k8s, tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump_all(MULTI_DOC, sort_keys=False))
    created = utils.create_from_yaml(k8s, yaml_file=str(path))
    assert [[o.kind for o in objs] for objs in created] == [[d["kind"]] for d in MULTI_DOC]

    core, apps = client.CoreV1Api(k8s), client.AppsV1Api(k8s)
    batch, rbac = client.BatchV1Api(k8s), client.RbacAuthorizationV1Api(k8s)
    assert core.read_namespace(APP_NS).status.phase == "Active"
    assert core.read_namespaced_config_map("settings", APP_NS).data == {"color": "blue"}
    dep = apps.read_namespaced_deployment("shop", APP_NS)
    assert [c.name for c in dep.spec.template.spec.containers] == ["app", "sidecar"]
    svc = core.read_namespaced_service("shop", APP_NS)
    assert svc.spec.type == "ClusterIP" and svc.spec.cluster_ip
    assert (svc.spec.ports[0].port, svc.spec.ports[0].target_port, svc.spec.ports[0].protocol) == (80, 8080, "TCP")
    assert batch.read_namespaced_job("migrate", APP_NS).spec.template.spec.restart_policy == "Never"
    assert rbac.read_namespaced_role("reader", APP_NS).rules[0].resources == ["configmaps"]
    rb = rbac.read_namespaced_role_binding("reader", APP_NS)
    assert (rb.role_ref.kind, rb.role_ref.name) == ("Role", "reader")
    assert rb.subjects[0].name == "default"
    # Listing through the typed APIs finds them too.
    assert [d.metadata.name for d in apps.list_namespaced_deployment(APP_NS).items] == ["shop"]
    assert [j.metadata.name for j in batch.list_namespaced_job(APP_NS).items] == ["migrate"]


def test_created_objects_are_owned_by_the_clients_user_agent(dyn):
    # The typed client sends no fieldManager; its User-Agent is OpenAPI-Generator/<version>/python.
    cm = res(dyn, "v1", "ConfigMap").get(name="settings", namespace=APP_NS)
    [entry] = cm.metadata.managedFields
    assert (entry.manager, entry.operation) == ("OpenAPI-Generator", "Update")
    assert entry.fieldsV1.to_dict() == {"f:data": {".": {}, "f:color": {}}}
    # So an applier that changes that value conflicts with it.
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": APP_NS}, "data": {"color": "red"}}
    with pytest.raises(ApiException) as err:
        res(dyn, "v1", "ConfigMap").server_side_apply(body=doc, name="settings", namespace=APP_NS, field_manager="py")
    assert err.value.status == 409
    assert json.loads(err.value.body)["message"] == 'Apply failed with 1 conflict: conflict with "OpenAPI-Generator" using v1: .data.color'


def test_typed_patch_changes_one_image_in_place(k8s):
    apps = client.AppsV1Api(k8s)
    before = apps.read_namespaced_deployment("shop", APP_NS)
    body = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.29"}]}}}}
    # A dict body goes out as application/strategic-merge-patch+json in this client version.
    out = apps.patch_namespaced_deployment("shop", APP_NS, body)
    cs = {c.name: c for c in out.spec.template.spec.containers}
    assert list(cs) == ["app", "sidecar"]
    assert cs["app"].image == "nginx:1.29"
    assert cs["app"].env[0].name == "MODE" and cs["app"].env[0].value == "prod"
    assert cs["sidecar"].image == "busybox:1.36" and cs["sidecar"].command == ["sleep", "infinity"]
    assert out.metadata.generation == before.metadata.generation + 1
    assert apps.read_namespaced_deployment("shop", APP_NS).spec.template.spec.containers[0].image == "nginx:1.29"
