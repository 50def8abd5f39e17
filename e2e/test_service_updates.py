"""Service updates keep, gain and give back their cluster IP and node ports as the type
changes, the way Kubernetes does, and what one Service gave back another may take."""

import json

NS = "default"


def svc(kubectl, name):
    return json.loads(kubectl("get", "service", name, "-n", NS, "-o", "json"))


def patch(kubectl, name, body):
    kubectl("patch", "service", name, "-n", NS, "--type=merge", "-p", json.dumps(body))


def test_type_changes(kubectl):
    kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "flip", "namespace": NS},
        "spec": {"selector": {"app": "flip"}, "ports": [{"port": 80}]},
    }))
    ip = svc(kubectl, "flip")["spec"]["clusterIP"]
    patch(kubectl, "flip", {"spec": {"type": "NodePort"}})
    s = svc(kubectl, "flip")
    assert s["spec"]["clusterIP"] == ip
    node_port = s["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767

    # The port is held: another Service asking for it is refused.
    clash = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "clash", "namespace": NS},
             "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": node_port}]}}
    res = kubectl("create", "-f", "-", input=json.dumps(clash), check=False)
    assert res.returncode != 0 and "provided port is already allocated" in res.stderr

    # Back to ClusterIP: the node port is dropped and given back.
    patch(kubectl, "flip", {"spec": {"type": "ClusterIP"}})
    s = svc(kubectl, "flip")
    assert "nodePort" not in s["spec"]["ports"][0]
    assert s["spec"]["clusterIP"] == ip
    kubectl("create", "-f", "-", input=json.dumps(clash))
    assert svc(kubectl, "clash")["spec"]["ports"][0]["nodePort"] == node_port
