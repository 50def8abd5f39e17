"""Listing a thousand objects in pages: kubectl's --chunk-size and the Python client's
limit/_continue, with remainingItemCount and a consistent snapshot across pages."""

import json
import re
from concurrent.futures import ThreadPoolExecutor

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

# The API server's behaviour alone: without controllers, a namespace holds only what these
# tests put in it (no kube-root-ca.crt ConfigMap or default ServiceAccount).
SKIFF_ARGS = ["--disable-controller-manager"]

NS = "many"
COUNT = 1000


@pytest.fixture(scope="module")
def core(k8s):
    return kubernetes.client.CoreV1Api(k8s)


@pytest.fixture(scope="module", autouse=True)
def thousand(core):
    core.create_namespace({"metadata": {"name": NS}})

    def create(i):
        core.create_namespaced_config_map(NS, {"metadata": {"name": f"cm-{i:04d}", "labels": {"parity": "even" if i % 2 == 0 else "odd"}},
                                               "data": {"index": str(i)}})

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(create, range(COUNT)))


def test_kubectl_chunked_list_gets_everything(skiff):
    res = skiff.kubectl("get", "configmaps", "-n", NS, "--chunk-size=50", "-o", "name", "-v=6", check=False)
    assert res.returncode == 0, res.stderr
    names = res.stdout.split()
    assert len(names) == COUNT
    assert names == sorted(names)
    assert set(names) == {f"configmap/cm-{i:04d}" for i in range(COUNT)}
    # kubectl really asked in pages of 50: one first request, then 19 with a continue token.
    requests = re.findall(r'"Response" verb="GET" url="([^"]*/namespaces/many/configmaps\?[^"]*)" status="200 OK"', res.stderr)
    assert len(requests) == COUNT // 50, res.stderr[-3000:]
    assert all("limit=50" in u for u in requests)
    assert sum("continue=" in u for u in requests) == COUNT // 50 - 1


def test_kubectl_chunked_table(kubectl):
    out = kubectl("get", "configmaps", "-n", NS, "--chunk-size=50")
    lines = out.strip().splitlines()
    # One header, then every row: the pages' tables are stitched together.
    assert lines[0].split()[0] == "NAME"
    assert sum(1 for l in lines if l.split()[0] == "NAME") == 1
    assert [l.split()[0] for l in lines[1:]] == [f"cm-{i:04d}" for i in range(COUNT)]


def test_python_client_pages_with_continue_tokens(core):
    pages, names, rvs = [], [], set()
    token = None
    while True:
        kwargs = {"limit": 50}
        if token:
            kwargs["_continue"] = token
        page = core.list_namespaced_config_map(NS, **kwargs)
        pages.append(page)
        names += [cm.metadata.name for cm in page.items]
        rvs.add(page.metadata.resource_version)
        token = page.metadata._continue
        if not token:
            break
        assert len(pages) <= COUNT // 50, "more pages than there are objects"
    assert len(pages) == COUNT // 50
    assert all(len(p.items) == 50 for p in pages)
    assert names == [f"cm-{i:04d}" for i in range(COUNT)]
    # Every page of one list is the same snapshot.
    assert len(rvs) == 1
    remaining = [p.metadata.remaining_item_count for p in pages]
    assert remaining[:-1] == list(range(COUNT - 50, 0, -50))
    assert remaining[-1] in (None, 0)


def test_continuing_a_list_sees_its_snapshot_not_later_writes(core):
    first = core.list_namespaced_config_map(NS, limit=500)
    assert first.metadata._continue
    # Written after the first page: a continued list must not show it...
    core.create_namespaced_config_map(NS, {"metadata": {"name": "cm-9999-late"}})
    try:
        core.delete_namespaced_config_map("cm-0999", NS)
        rest = core.list_namespaced_config_map(NS, limit=500, _continue=first.metadata._continue)
        rest_names = [cm.metadata.name for cm in rest.items]
        assert rest.metadata.resource_version == first.metadata.resource_version
        assert "cm-9999-late" not in rest_names
        # ...and still shows what existed at the snapshot.
        assert rest_names[-1] == "cm-0999"
        assert len(first.items) + len(rest.items) == COUNT
        # A fresh list sees the new state.
        now = [cm.metadata.name for cm in core.list_namespaced_config_map(NS).items]
        assert "cm-9999-late" in now and "cm-0999" not in now and len(now) == COUNT
    finally:
        core.delete_namespaced_config_map("cm-9999-late", NS)
        core.create_namespaced_config_map(NS, {"metadata": {"name": "cm-0999", "labels": {"parity": "odd"}}, "data": {"index": "999"}})


def test_pages_with_a_label_selector(core):
    names, token = [], None
    for _ in range(50):
        page = core.list_namespaced_config_map(NS, limit=100, label_selector="parity=even", **({"_continue": token} if token else {}))
        assert len(page.items) <= 100
        names += [cm.metadata.name for cm in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert names == [f"cm-{i:04d}" for i in range(0, COUNT, 2)]


def test_a_bad_continue_token_is_a_bad_request(core):
    with pytest.raises(ApiException) as e:
        core.list_namespaced_config_map(NS, limit=50, _continue="this-is-not-a-token")
    assert e.value.status == 400
    status = json.loads(e.value.body)
    assert status["kind"] == "Status" and status["reason"] == "BadRequest"


def test_list_across_namespaces_pages_too(core):
    page = core.list_config_map_for_all_namespaces(limit=10)
    assert len(page.items) == 10
    assert page.metadata._continue
    assert page.metadata.remaining_item_count >= COUNT - 10
