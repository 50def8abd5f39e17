"""What kubectl learns about the server: api-resources, api-versions, version, and the
health endpoints through `kubectl get --raw`."""

import json
import re


def api_resources(kubectl):
    """{(name, apiVersion): (shortnames, namespaced, kind)} from `kubectl api-resources`."""
    lines = kubectl("api-resources").splitlines()
    header = lines[0]
    cols = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    starts = [header.index(c) for c in cols]
    out = {}
    for line in lines[1:]:
        cells = [line[s:e].strip() for s, e in zip(starts, starts[1:] + [None])]
        name, short, version, namespaced, kind = cells
        out[(name, version)] = (short, namespaced, kind)
    return out


def test_api_resources(kubectl):
    res = api_resources(kubectl)
    assert res[("pods", "v1")] == ("po", "true", "Pod")
    assert res[("deployments", "apps/v1")] == ("deploy", "true", "Deployment")
    assert res[("services", "v1")] == ("svc", "true", "Service")
    assert res[("configmaps", "v1")] == ("cm", "true", "ConfigMap")
    assert res[("namespaces", "v1")] == ("ns", "false", "Namespace")
    assert res[("jobs", "batch/v1")] == ("", "true", "Job")
    assert res[("cronjobs", "batch/v1")] == ("cj", "true", "CronJob")
    assert res[("ingresses", "networking.k8s.io/v1")] == ("ing", "true", "Ingress")
    assert res[("roles", "rbac.authorization.k8s.io/v1")] == ("", "true", "Role")
    assert res[("horizontalpodautoscalers", "autoscaling/v2")] == ("hpa", "true", "HorizontalPodAutoscaler")
    assert res[("selfsubjectreviews", "authentication.k8s.io/v1")][1:] == ("false", "SelfSubjectReview")
    # Subresources are not listed as resources.
    assert not any("/" in name for name, _ in res)
    # Namespaced filter and verbs.
    cluster_scoped = kubectl("api-resources", "--namespaced=false", "-o", "name").split()
    assert "namespaces" in cluster_scoped and "nodes" in cluster_scoped and "pods" not in cluster_scoped
    wide = kubectl("api-resources", "--api-group=apps", "-o", "wide")
    deploy = next(l for l in wide.splitlines() if l.startswith("deployments "))
    for verb in ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"):
        assert verb in deploy


def test_api_versions(kubectl):
    versions = kubectl("api-versions").split()
    for v in ("v1", "apps/v1", "batch/v1", "autoscaling/v1", "autoscaling/v2", "networking.k8s.io/v1",
              "rbac.authorization.k8s.io/v1", "authentication.k8s.io/v1", "authorization.k8s.io/v1",
              "policy/v1", "storage.k8s.io/v1", "coordination.k8s.io/v1", "discovery.k8s.io/v1"):
        assert v in versions, v
    assert versions == sorted(versions)
    assert len(versions) == len(set(versions))


def test_version(kubectl):
    res = kubectl("version", check=False)
    assert res.returncode == 0, res.stderr
    assert re.search(r"^Server Version: v1\.37\.\d+\S*$", res.stdout, re.M), res.stdout
    assert "Client Version: v1.37" in res.stdout
    # No skew warning between a 1.37 kubectl and a 1.37 server.
    assert "WARNING" not in res.stderr, res.stderr
    info = json.loads(kubectl("version", "-o", "json"))["serverVersion"]
    assert (info["major"], info["minor"]) == ("1", "37")


def test_readyz_verbose(kubectl):
    out = kubectl("get", "--raw", "/readyz?verbose")
    lines = out.strip().splitlines()
    assert lines[-1] == "readyz check passed"
    checks = [l for l in lines[:-1]]
    assert checks and all(l.startswith("[+]") and l.endswith(" ok") for l in checks), lines
    assert "[+]ping ok" in checks
    assert kubectl("get", "--raw", "/readyz").strip() == "ok"
    assert kubectl("get", "--raw", "/livez").strip() == "ok"
    assert kubectl("get", "--raw", "/healthz").strip() == "ok"
    assert kubectl("get", "--raw", "/livez?verbose").strip().endswith("livez check passed")


def test_cluster_info(kubectl, skiff):
    out = kubectl("cluster-info")
    assert f"Kubernetes control plane is running at {skiff.url}" in out
