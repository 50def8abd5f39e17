"""Nothing acknowledged is lost: after writes that returned success, `kill -9` the server,
start it again on the same data directory, and find every object exactly as acknowledged,
new writes ordered after all earlier ones, and the same cluster CA and credentials."""

import shutil
from concurrent.futures import ThreadPoolExecutor

import kubernetes
import pytest
import yaml

# The API server's behaviour alone: without controllers, a namespace holds only what these
# tests put in it (no kube-root-ca.crt ConfigMap or default ServiceAccount).
SKIFF_ARGS = ["--disable-controller-manager"]

NS = "durable"
COUNT = 200


def core_of(skiff):
    return kubernetes.client.CoreV1Api(skiff.client())


@pytest.fixture(scope="module")
def crashed(skiff, tmp_path_factory):
    core = core_of(skiff)
    core.create_namespace({"metadata": {"name": NS}})
    acked = {}

    def create(i):
        name = f"cm-{i:03d}"
        obj = core.create_namespaced_config_map(NS, {"metadata": {"name": name, "labels": {"n": str(i)}},
                                                     "data": {"index": str(i), "payload": "x" * (i % 17)}})
        return name, obj

    with ThreadPoolExecutor(max_workers=8) as pool:
        for name, obj in pool.map(create, range(COUNT)):
            acked[name] = obj
    # Some updates and deletes too: their acknowledgements count as much as creates.
    for i in range(0, COUNT, 10):
        name = f"cm-{i:03d}"
        acked[name] = core.replace_namespaced_config_map(name, NS, {
            "metadata": {"name": name, "labels": {"n": str(i), "updated": "yes"},
                         "resourceVersion": acked[name].metadata.resource_version},
            "data": {"index": str(i), "payload": "updated"}})
    deleted = set()
    for i in range(5, COUNT, 25):
        name = f"cm-{i:03d}"
        core.delete_namespaced_config_map(name, NS)
        deleted.add(name)
        del acked[name]
    core.api_client.close()

    saved = tmp_path_factory.mktemp("before-crash")
    shutil.copy(skiff.kubeconfig, saved / "kubeconfig.yaml")
    shutil.copy(skiff.data_dir / "tls" / "ca.crt", saved / "ca.crt")
    skiff.kill9()  # right after the last acknowledgement
    skiff.start()
    return {"acked": acked, "deleted": deleted, "saved": saved}


def test_every_acknowledged_object_survives(skiff, crashed):
    core = core_of(skiff)
    items = {cm.metadata.name: cm for cm in core.list_namespaced_config_map(NS).items}
    acked = crashed["acked"]
    assert set(items) == set(acked), (
        f"missing: {sorted(set(acked) - set(items))[:10]}, unexpected: {sorted(set(items) - set(acked))[:10]}")
    for name, want in acked.items():
        got = items[name]
        assert got.data == want.data, name
        assert got.metadata.labels == want.metadata.labels, name
        assert got.metadata.uid == want.metadata.uid, name
        assert got.metadata.resource_version == want.metadata.resource_version, name
        assert got.metadata.creation_timestamp == want.metadata.creation_timestamp, name


def test_acknowledged_deletes_stay_deleted(skiff, crashed):
    core = core_of(skiff)
    for name in crashed["deleted"]:
        with pytest.raises(kubernetes.client.exceptions.ApiException) as e:
            core.read_namespaced_config_map(name, NS)
        assert e.value.status == 404


def test_new_writes_come_after_all_earlier_ones(skiff, crashed):
    core = core_of(skiff)
    highest = max(int(o.metadata.resource_version) for o in crashed["acked"].values())
    listed = core.list_namespaced_config_map(NS)
    assert int(listed.metadata.resource_version) >= highest
    fresh = core.create_namespaced_config_map(NS, {"metadata": {"name": "after-restart"}})
    assert int(fresh.metadata.resource_version) > highest
    assert int(fresh.metadata.resource_version) > int(listed.metadata.resource_version)
    # And an update of an old object moves it forward, with optimistic concurrency intact.
    old = crashed["acked"]["cm-001"]
    updated = core.replace_namespaced_config_map("cm-001", NS, {
        "metadata": {"name": "cm-001", "resourceVersion": old.metadata.resource_version}, "data": {"v": "new"}})
    assert int(updated.metadata.resource_version) > int(fresh.metadata.resource_version)


def test_cluster_ca_and_admin_credentials_are_reused(skiff, crashed):
    saved = crashed["saved"]
    assert (skiff.data_dir / "tls" / "ca.crt").read_bytes() == (saved / "ca.crt").read_bytes()
    before = yaml.safe_load((saved / "kubeconfig.yaml").read_text())
    after = yaml.safe_load(skiff.kubeconfig.read_text())
    assert after["clusters"][0]["cluster"]["certificate-authority-data"] == \
        before["clusters"][0]["cluster"]["certificate-authority-data"]
    # A kubeconfig handed out before the crash still works against the restarted server.
    api = kubernetes.config.new_client_from_config(config_file=str(saved / "kubeconfig.yaml"))
    try:
        names = [n.metadata.name for n in kubernetes.client.CoreV1Api(api).list_namespace().items]
    finally:
        api.close()
    assert NS in names


def test_kubectl_sees_the_same_after_restart(skiff, crashed):
    names = skiff.kubectl("get", "configmaps", "-n", NS, "-o", "name").split()
    assert len(names) == len(crashed["acked"]) + 1  # + after-restart
