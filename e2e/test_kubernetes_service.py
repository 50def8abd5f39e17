"""The `kubernetes` Service in default leads to the API server, as on Kubernetes: its Endpoints
and EndpointSlice name the server's advertised address and port, the Service's targetPort is
that port, and the Endpoints are marked not to be mirrored (the server writes the slice
itself). A server restarted on another port, advertising another address, rewrites them."""

import json

from conftest import free_port

SERVICE_NAME = "kubernetes.io/service-name"


def get(kubectl, kind, name="kubernetes"):
    return json.loads(kubectl("get", kind, name, "-n", "default", "-o", "json"))


def slices(kubectl):
    out = kubectl("get", "endpointslices", "-n", "default", "-l", f"{SERVICE_NAME}=kubernetes", "-o", "json")
    return json.loads(out)["items"]


def assert_leads_to(kubectl, address, port):
    endpoints = get(kubectl, "endpoints")
    assert endpoints["metadata"]["labels"] == {"endpointslice.kubernetes.io/skip-mirror": "true"}
    assert endpoints["subsets"] == [{"addresses": [{"ip": address}],
                                     "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]
    [only] = slices(kubectl)
    assert only["metadata"]["name"] == "kubernetes"
    assert only["addressType"] == "IPv4"
    assert [e["addresses"] for e in only["endpoints"]] == [[address]]
    assert only["endpoints"][0]["conditions"]["ready"] is True
    assert only["ports"] == [{"name": "https", "port": port, "protocol": "TCP"}]
    service = get(kubectl, "service")
    assert service["spec"]["ports"] == [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]


def test_the_kubernetes_service_leads_to_the_api_server(skiff, kubectl):
    # The tests bind to 127.0.0.1, which is then what the server advertises.
    assert_leads_to(kubectl, "127.0.0.1", skiff.port)
    assert "kubernetes" in kubectl("get", "endpoints", "-n", "default", "-o", "name")


def test_a_server_restarted_elsewhere_rewrites_them(skiff, kubectl):
    skiff.stop()
    skiff.port = free_port()
    skiff.extra_args = ["--advertise-address", "127.0.0.2"]
    skiff.start()
    assert_leads_to(kubectl, "127.0.0.2", skiff.port)
