"""The watch-list protocol client-go's informers use: `sendInitialEvents=true` streams the
current objects as ADDED events, then a BOOKMARK annotated `k8s.io/initial-events-end`, then
live changes."""

import json

# The API server's behaviour alone: without controllers, a namespace holds only what these
# tests put in it (no kube-root-ca.crt ConfigMap or default ServiceAccount).
SKIFF_ARGS = ["--disable-controller-manager"]

NS = "default"
WATCH = f"/api/v1/namespaces/{NS}/configmaps?watch=1&timeoutSeconds=2"


def events(body):
    return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


def test_initial_events_end_with_an_annotated_bookmark(skiff):
    rvs = []
    for name in ["wl-a", "wl-b", "wl-c"]:
        _, doc = skiff.request_json("POST", f"/api/v1/namespaces/{NS}/configmaps", {"metadata": {"name": name}})
        rvs.append(int(doc["metadata"]["resourceVersion"]))
    status, _, body = skiff.request(
        "GET", WATCH + "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true", timeout=15
    )
    assert status == 200
    got = events(body)
    added = [e["object"]["metadata"]["name"] for e in got if e["type"] == "ADDED"]
    assert sorted(added) == ["wl-a", "wl-b", "wl-c"]
    assert [e["type"] for e in got[:3]] == ["ADDED"] * 3
    end = got[3]
    assert end["type"] == "BOOKMARK"
    assert end["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(end["object"]["metadata"]["resourceVersion"]) >= max(rvs)


def test_watch_list_needs_not_older_than_and_bookmarks(skiff):
    status, _, body = skiff.request("GET", WATCH + "&sendInitialEvents=true&allowWatchBookmarks=true")
    assert status == 422, body
    assert json.loads(body)["reason"] == "Invalid"
    status, _, body = skiff.request("GET", WATCH + "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan")
    assert status == 422, body
    assert b"allowWatchBookmarks" in body
