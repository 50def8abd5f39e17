"""ResourceQuotas: the controller shows each quota's hard limits and what is used (`kubectl
describe quota`); creating beyond a quota is refused with Kubernetes' message, even by
concurrent creates, and updates are charged for what they add; pods must request what a
quota limits; scopes pick the pods a quota counts; usage is released when objects are
deleted or pods finish (on simulated nodes)."""

import json
import re
import threading

import kubernetes
import pytest

from conftest import wait_until
from scheduling import running_fleet


@pytest.fixture(scope="module", autouse=True)
def fleet(skiff, kubectl):
    yield from running_fleet(skiff, kubectl, 1, "quota")


def apply(kubectl, *objects):
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def quota(ns, name, hard, **spec):
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name, "namespace": ns},
            "spec": {"hard": hard, **spec}}


def pod(ns, name, requests=None, limits=None, annotations=None, **spec):
    resources = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}},
            "spec": {"containers": [{"name": "app", "image": "nginx", "resources": resources}], **spec}}


def status(kubectl, ns, name):
    return json.loads(kubectl("get", "resourcequota", name, "-n", ns, "-o", "json")).get("status", {})


def namespace_with_quota(kubectl, ns, name, hard, **spec):
    """A new namespace with a quota, once the controller has published its status."""
    kubectl("create", "namespace", ns)
    apply(kubectl, quota(ns, name, hard, **spec))
    return wait_until(lambda: (s := status(kubectl, ns, name)).get("hard") == hard and s.get("used") and s,
                      timeout=20, what=f"the status of quota {name}")


def refused(kubectl, obj):
    res = kubectl("create", "-f", "-", input=json.dumps(obj), check=False)
    assert res.returncode != 0, f"{obj['metadata']['name']} was created"
    assert "(Forbidden)" in res.stderr, res.stderr
    return res.stderr


def wait_used(kubectl, ns, name, resource, value):
    wait_until(lambda: status(kubectl, ns, name).get("used", {}).get(resource) == value, timeout=20,
               what=f"{resource} used to be {value}")


def test_describe_shows_used_and_hard(kubectl):
    namespace_with_quota(kubectl, "q-describe", "counts", {"pods": "4", "configmaps": "5", "requests.cpu": "2"})
    apply(kubectl, pod("q-describe", "one", requests={"cpu": "250m"}),
          pod("q-describe", "two", requests={"cpu": "500m"}))
    wait_used(kubectl, "q-describe", "counts", "pods", "2")
    # The namespace's kube-root-ca.crt ConfigMap is counted, as in Kubernetes.
    wait_used(kubectl, "q-describe", "counts", "configmaps", "1")
    out = kubectl("describe", "quota", "counts", "-n", "q-describe")
    rows = {m[0]: (m[1], m[2]) for m in re.findall(r"^(\S+)\s+(\S+)\s+(\S+)\s*$", out, re.M)}
    assert rows["pods"] == ("2", "4"), out
    assert rows["requests.cpu"] == ("750m", "2"), out
    assert rows["configmaps"] == ("1", "5"), out


def test_creating_beyond_the_quota_is_refused(kubectl):
    namespace_with_quota(kubectl, "q-pods", "pods", {"pods": "2"})
    apply(kubectl, pod("q-pods", "a"), pod("q-pods", "b"))
    err = refused(kubectl, pod("q-pods", "c"))
    assert 'pods "c" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=2, limited: pods=2' in err
    assert status(kubectl, "q-pods", "pods")["used"]["pods"] == "2"


def test_pods_must_request_what_the_quota_limits(kubectl):
    namespace_with_quota(kubectl, "q-compute", "compute",
                         {"requests.cpu": "1", "requests.memory": "1Gi", "limits.memory": "2Gi"})
    err = refused(kubectl, pod("q-compute", "bare"))
    assert ('pods "bare" is forbidden: failed quota: compute: must specify limits.memory for: app; '
            'requests.cpu for: app; requests.memory for: app') in err
    apply(kubectl, pod("q-compute", "big", requests={"cpu": "600m", "memory": "512Mi"}, limits={"memory": "1Gi"}))
    wait_used(kubectl, "q-compute", "compute", "requests.cpu", "600m")
    err = refused(kubectl, pod("q-compute", "bigger", requests={"cpu": "600m", "memory": "512Mi"}, limits={"memory": "1Gi"}))
    assert ("exceeded quota: compute, requested: requests.cpu=600m, used: requests.cpu=600m, "
            "limited: requests.cpu=1") in err
    # A limit alone is also the request, as the API defaults it.
    apply(kubectl, pod("q-compute", "small", limits={"cpu": "400m", "memory": "512Mi"}))
    used = status(kubectl, "q-compute", "compute")["used"]
    assert (used["requests.cpu"], used["requests.memory"], used["limits.memory"]) == ("1", "1Gi", "1536Mi")


def test_services_node_ports_and_object_counts(kubectl):
    namespace_with_quota(kubectl, "q-objects", "objects",
                         {"services.nodeports": "1", "services.loadbalancers": "0", "secrets": "1",
                          "count/deployments.apps": "1"})
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np", "namespace": "q-objects"},
           "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]}}
    apply(kubectl, svc)
    svc2 = json.loads(json.dumps(svc))
    svc2["metadata"]["name"] = "np2"
    assert ("exceeded quota: objects, requested: services.nodeports=1, used: services.nodeports=1, "
            "limited: services.nodeports=1") in refused(kubectl, svc2)
    svc2["spec"]["type"] = "LoadBalancer"
    assert "limited: services.loadbalancers=0,services.nodeports=1" in refused(kubectl, svc2)
    kubectl("create", "secret", "generic", "s1", "-n", "q-objects", "--from-literal=a=b")
    res = kubectl("create", "secret", "generic", "s2", "-n", "q-objects", "--from-literal=a=b", check=False)
    assert "exceeded quota: objects, requested: secrets=1, used: secrets=1, limited: secrets=1" in res.stderr
    kubectl("create", "deployment", "web", "-n", "q-objects", "--image=nginx")
    res = kubectl("create", "deployment", "web2", "-n", "q-objects", "--image=nginx", check=False)
    assert ("exceeded quota: objects, requested: count/deployments.apps=1, used: count/deployments.apps=1, "
            "limited: count/deployments.apps=1") in res.stderr


def test_updates_are_charged_for_what_they_add(kubectl):
    namespace_with_quota(kubectl, "q-updates", "updates", {"services.nodeports": "1", "requests.storage": "5Gi"})
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "q-updates"},
           "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}}
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "q-updates"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}}
    apply(kubectl, svc, claim)
    wait_used(kubectl, "q-updates", "updates", "requests.storage", "2Gi")

    # Two node ports where one is allowed: turning the Service into a NodePort is refused.
    res = kubectl("patch", "service", "web", "-n", "q-updates", "-p", '{"spec": {"type": "NodePort"}}', check=False)
    assert res.returncode != 0 and "(Forbidden)" in res.stderr, res.stderr
    assert ("exceeded quota: updates, requested: services.nodeports=2, used: services.nodeports=0, "
            "limited: services.nodeports=1") in res.stderr
    assert json.loads(kubectl("get", "service", "web", "-n", "q-updates", "-o", "json"))["spec"]["type"] == "ClusterIP"

    # A claim may grow within the quota, and only the growth is charged; past it, it may not.
    kubectl("patch", "pvc", "data", "-n", "q-updates", "-p",
            '{"spec": {"resources": {"requests": {"storage": "4Gi"}}}}')
    wait_used(kubectl, "q-updates", "updates", "requests.storage", "4Gi")
    res = kubectl("patch", "pvc", "data", "-n", "q-updates", "-p",
                  '{"spec": {"resources": {"requests": {"storage": "6Gi"}}}}', check=False)
    assert ("exceeded quota: updates, requested: requests.storage=2Gi, used: requests.storage=4Gi, "
            "limited: requests.storage=5Gi") in res.stderr, res.stderr

    # Updates that add nothing are not charged, even with the quota full.
    kubectl("label", "service", "web", "-n", "q-updates", "tier=front")


def test_usage_is_released_on_deletion(kubectl):
    namespace_with_quota(kubectl, "q-release", "release", {"pods": "1", "configmaps": "2"})
    apply(kubectl, pod("q-release", "first"))
    kubectl("create", "configmap", "settings", "-n", "q-release", "--from-literal=a=b")
    wait_used(kubectl, "q-release", "release", "configmaps", "2")
    refused(kubectl, pod("q-release", "second"))
    kubectl("delete", "pod", "first", "-n", "q-release", "--grace-period=0", "--force", "--wait=false")
    wait_used(kubectl, "q-release", "release", "pods", "0")
    apply(kubectl, pod("q-release", "second"))
    kubectl("delete", "configmap", "settings", "-n", "q-release")
    wait_used(kubectl, "q-release", "release", "configmaps", "1")


def test_finished_pods_do_not_count(kubectl):
    namespace_with_quota(kubectl, "q-finish", "running", {"pods": "1", "count/pods": "5"})
    apply(kubectl, pod("q-finish", "brief", annotations={"sim.skiff.io/run-seconds": "1"}, restartPolicy="Never"))
    wait_until(lambda: json.loads(kubectl("get", "pod", "brief", "-n", "q-finish", "-o", "json"))["status"].get("phase") == "Succeeded",
               timeout=30, what="the pod to finish")
    wait_used(kubectl, "q-finish", "running", "pods", "0")
    # A finished pod still exists: it keeps its object count.
    assert status(kubectl, "q-finish", "running")["used"]["count/pods"] == "1"
    apply(kubectl, pod("q-finish", "next"))


def test_concurrent_creates_cannot_overshoot(skiff, kubectl):
    namespace_with_quota(kubectl, "q-race", "race", {"configmaps": "6"})
    wait_used(kubectl, "q-race", "race", "configmaps", "1")
    core = kubernetes.client.CoreV1Api(skiff.client())
    results = []

    def create(i):
        body = {"metadata": {"name": f"cm-{i}"}, "data": {"i": str(i)}}
        try:
            core.create_namespaced_config_map("q-race", body)
            results.append("created")
        except kubernetes.client.ApiException as e:
            results.append(e.status)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # kube-root-ca.crt holds one of the six.
    assert sorted(results, key=str) == sorted(["created"] * 5 + [403] * 15, key=str), results
    maps = json.loads(kubectl("get", "configmaps", "-n", "q-race", "-o", "json"))["items"]
    assert len(maps) == 6
    assert status(kubectl, "q-race", "race")["used"]["configmaps"] == "6"


def test_scopes_pick_the_pods_a_quota_counts(kubectl):
    namespace_with_quota(kubectl, "q-scopes", "best-effort", {"pods": "1"}, scopes=["BestEffort"])
    apply(kubectl, quota("q-scopes", "high", {"pods": "1"},
                         scopeSelector={"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}))
    wait_until(lambda: status(kubectl, "q-scopes", "high").get("used"), timeout=20, what="the status of quota high")
    kubectl("create", "priorityclass", "high", "--value=1000")
    apply(kubectl, pod("q-scopes", "free"))
    assert "exceeded quota: best-effort, requested: pods=1, used: pods=1, limited: pods=1" in refused(kubectl, pod("q-scopes", "free2"))
    # A pod that requests something is not BestEffort: that quota does not count it.
    apply(kubectl, pod("q-scopes", "burstable", requests={"cpu": "100m"}, priorityClassName="high"))
    assert "exceeded quota: high" in refused(kubectl, pod("q-scopes", "burstable2", requests={"cpu": "100m"}, priorityClassName="high"))
    apply(kubectl, pod("q-scopes", "burstable3", requests={"cpu": "100m"}))
    assert status(kubectl, "q-scopes", "best-effort")["used"]["pods"] == "1"
