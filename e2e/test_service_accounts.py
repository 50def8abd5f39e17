"""What every namespace holds from the start: a `default` ServiceAccount and the
`kube-root-ca.crt` ConfigMap with the cluster's CA certificate, put back when deleted and
corrected when changed."""

import json

from conftest import wait_for


def get(kubectl, kind, name, namespace):
    res = kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(res.stdout) if res.returncode == 0 else None


def test_a_new_namespace_gets_a_default_account_and_the_root_ca(skiff, kubectl):
    kubectl("create", "namespace", "fresh")
    wait_for("the default ServiceAccount", lambda: get(kubectl, "serviceaccount", "default", "fresh"))
    wait_for("kube-root-ca.crt", lambda: get(kubectl, "configmap", "kube-root-ca.crt", "fresh"))
    ca = (skiff.data_dir / "tls" / "ca.crt").read_text()
    cm = get(kubectl, "configmap", "kube-root-ca.crt", "fresh")
    assert cm["data"] == {"ca.crt": ca}
    assert "kube-apiserver" in cm["metadata"]["annotations"]["kubernetes.io/description"]


def test_the_existing_namespaces_have_them_too(kubectl):
    for ns in ["default", "kube-system", "kube-public"]:
        wait_for(f"the default ServiceAccount in {ns}", lambda: get(kubectl, "serviceaccount", "default", ns))
        wait_for(f"kube-root-ca.crt in {ns}", lambda: get(kubectl, "configmap", "kube-root-ca.crt", ns))


def test_deleted_or_changed_they_come_back(skiff, kubectl):
    kubectl("create", "namespace", "tampered")
    wait_for("kube-root-ca.crt", lambda: get(kubectl, "configmap", "kube-root-ca.crt", "tampered"))
    wait_for("the default ServiceAccount", lambda: get(kubectl, "serviceaccount", "default", "tampered"))
    first = get(kubectl, "serviceaccount", "default", "tampered")["metadata"]["uid"]
    kubectl("delete", "serviceaccount", "default", "-n", "tampered")
    wait_for("a new default ServiceAccount",
             lambda: (get(kubectl, "serviceaccount", "default", "tampered") or {"metadata": {"uid": first}})["metadata"]["uid"] != first)
    kubectl("patch", "configmap", "kube-root-ca.crt", "-n", "tampered", "--type=merge", "-p", '{"data":{"ca.crt":"forged"}}')
    ca = (skiff.data_dir / "tls" / "ca.crt").read_text()
    wait_for("the CA to be put back", lambda: get(kubectl, "configmap", "kube-root-ca.crt", "tampered")["data"] == {"ca.crt": ca})
