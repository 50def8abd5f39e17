"""LimitRanges, enforced by the API server alone: a namespace's ranges give new pods'
containers their default requests and limits, and pods and claims outside a Container's,
a Pod's or a PersistentVolumeClaim's min, max or limit/request ratio are refused with
Kubernetes' messages."""

import json

# The API server's behaviour alone: admission needs no controllers.
SKIFF_ARGS = ["--disable-controller-manager"]


def apply(kubectl, *objects):
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def limit_range(ns, name, *limits):
    return {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": name, "namespace": ns},
            "spec": {"limits": list(limits)}}


def pod(ns, name, *containers):
    containers = containers or ({},)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"containers": [{"name": f"c{i}", "image": "nginx", "resources": r} for i, r in enumerate(containers)]}}


def get(kubectl, kind, ns, name):
    return json.loads(kubectl("get", kind, name, "-n", ns, "-o", "json"))


def refusal(kubectl, obj):
    res = kubectl("create", "-f", "-", input=json.dumps(obj), check=False)
    assert res.returncode != 0, f"{obj['metadata']['name']} was created"
    assert "(Forbidden)" in res.stderr, res.stderr
    return res.stderr.strip()


def test_containers_get_default_requests_and_limits(kubectl):
    kubectl("create", "namespace", "lr-defaults")
    apply(kubectl, limit_range("lr-defaults", "defaults", {
        "type": "Container", "default": {"cpu": "500m", "memory": "256Mi"}, "defaultRequest": {"cpu": "100m", "memory": "128Mi"}}))
    apply(kubectl, pod("lr-defaults", "plain", {}, {"limits": {"cpu": "1"}}))
    p = get(kubectl, "pod", "lr-defaults", "plain")
    first, second = (c["resources"] for c in p["spec"]["containers"])
    assert first == {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}}
    # A container's own limit is also its request; only what it leaves out is defaulted.
    assert second == {"limits": {"cpu": "1", "memory": "256Mi"}, "requests": {"cpu": "1", "memory": "128Mi"}}
    assert p["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu, memory request for container c0; cpu, memory limit for container c0; "
        "memory request for container c1; memory limit for container c1")
    assert p["status"]["qosClass"] == "Burstable"


def test_a_range_completes_its_own_defaults(kubectl):
    kubectl("create", "namespace", "lr-max")
    apply(kubectl, limit_range("lr-max", "bounds", {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}}))
    item = get(kubectl, "limitrange", "lr-max", "bounds")["spec"]["limits"][0]
    assert item["default"] == {"cpu": "2"}
    assert item["defaultRequest"] == {"cpu": "2", "memory": "64Mi"}
    apply(kubectl, pod("lr-max", "defaulted"))
    resources = get(kubectl, "pod", "lr-max", "defaulted")["spec"]["containers"][0]["resources"]
    assert resources == {"limits": {"cpu": "2"}, "requests": {"cpu": "2", "memory": "64Mi"}}
    assert get(kubectl, "pod", "lr-max", "defaulted")["status"]["qosClass"] == "Burstable"


def test_out_of_range_pods_are_refused(kubectl):
    kubectl("create", "namespace", "lr-bounds")
    apply(kubectl, limit_range("lr-bounds", "bounds",
                               {"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "64Mi"}, "maxLimitRequestRatio": {"cpu": "2"},
                                "default": {"cpu": "500m", "memory": "128Mi"}},
                               {"type": "Pod", "max": {"memory": "1Gi"}}))
    assert refusal(kubectl, pod("lr-bounds", "greedy", {"limits": {"cpu": "2"}, "requests": {"cpu": "1"}})).endswith(
        'pods "greedy" is forbidden: maximum cpu usage per Container is 1, but limit is 2')
    assert refusal(kubectl, pod("lr-bounds", "tiny", {"requests": {"memory": "32Mi"}})).endswith(
        'pods "tiny" is forbidden: minimum memory usage per Container is 64Mi, but request is 32Mi')
    assert refusal(kubectl, pod("lr-bounds", "spiky", {"requests": {"cpu": "100m"}, "limits": {"cpu": "500m"}})).endswith(
        'pods "spiky" is forbidden: cpu max limit to request ratio per Container is 2, but provided ratio is 5.000000')
    many = [{"limits": {"memory": "600Mi"}, "requests": {"cpu": "500m"}}] * 2
    assert refusal(kubectl, pod("lr-bounds", "crowd", *many)).endswith(
        'pods "crowd" is forbidden: maximum memory usage per Pod is 1Gi, but limit is 1200Mi')
    both = refusal(kubectl, pod("lr-bounds", "both", {"limits": {"cpu": "4", "memory": "32Mi"}}))
    assert both.endswith('pods "both" is forbidden: [minimum memory usage per Container is 64Mi, but request is 32Mi, '
                         'maximum cpu usage per Container is 1, but limit is 4]'), both
    apply(kubectl, pod("lr-bounds", "fits", {"requests": {"cpu": "300m", "memory": "100Mi"}}))
    assert kubectl("get", "pods", "-n", "lr-bounds", "-o", "name").split() == ["pod/fits"]


def test_claims_are_held_to_storage_bounds(kubectl):
    kubectl("create", "namespace", "lr-storage")
    apply(kubectl, limit_range("lr-storage", "storage", {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "10Gi"}}))

    def claim(name, size):
        return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": "lr-storage"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}}

    assert refusal(kubectl, claim("huge", "20Gi")).endswith(
        'persistentvolumeclaims "huge" is forbidden: maximum storage usage per PersistentVolumeClaim is 10Gi, but limit is 20Gi')
    assert refusal(kubectl, claim("small", "500Mi")).endswith(
        'persistentvolumeclaims "small" is forbidden: minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi')
    apply(kubectl, claim("right", "5Gi"))
