"""HorizontalPodAutoscalers through kubectl and both served versions: `kubectl autoscale`
creates one with Kubernetes' defaults, the v1 and v2 views are the same object, and bad
replica bounds are refused."""

import json


def test_kubectl_autoscale_defaults_and_both_versions(kubectl):
    kubectl("create", "deployment", "web", "--image=nginx")
    kubectl("autoscale", "deployment", "web", "--max=5", "--cpu=60%")
    v2 = json.loads(kubectl("get", "hpa.v2.autoscaling", "web", "-o", "json"))
    assert v2["spec"]["minReplicas"] == 1
    assert v2["spec"]["maxReplicas"] == 5
    assert v2["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 60}
    v1 = json.loads(kubectl("get", "--raw", "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/web"))
    assert v1["apiVersion"] == "autoscaling/v1"
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 60
    assert v1["spec"]["minReplicas"] == 1


def test_a_v2_autoscaler_without_metrics_targets_80_percent_cpu(kubectl):
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "plain"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 3},
    }))
    hpa = json.loads(kubectl("get", "hpa.v2.autoscaling", "plain", "-o", "json"))
    assert hpa["spec"]["minReplicas"] == 1
    assert hpa["spec"]["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}
    ]


def test_max_below_min_is_invalid(kubectl):
    res = kubectl("apply", "-f", "-", check=False, input=json.dumps({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "upside-down"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 4, "maxReplicas": 2},
    }))
    assert res.returncode != 0
    assert "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`" in res.stderr
