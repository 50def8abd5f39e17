"""Requests to deprecated resources carry Kubernetes' deprecation warning, which kubectl
prints; others carry none."""


def test_endpoints_are_deprecated(skiff):
    res = skiff.kubectl("get", "endpoints", "-n", "default", check=False)
    assert res.returncode == 0, res.stderr
    assert "Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice" in res.stderr
    status, headers, _ = skiff.request("GET", "/api/v1/namespaces/default/endpoints")
    assert status == 200
    assert headers["warning"] == '299 - "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"'


def test_endpoint_slices_are_not(skiff):
    res = skiff.kubectl("get", "endpointslices", "-n", "default", check=False)
    assert res.returncode == 0 and "Warning" not in res.stderr
