"""The node agent's volumes beyond emptyDir, hostPath and plain configMaps: projected volumes
(configMap, secret, downwardAPI and kube-root-ca.crt together, refreshed in place),
downwardAPI resource files, PersistentVolumeClaims bound to hostPath volumes (and the
pod waiting in ContainerCreating while its claim is missing or unbound), and fsGroup
ownership of a pod's volumes. Needs root (namespaces, mounts, overlayfs, veths)."""

import json

from agent_pods import busybox, node_cleanup, container_status, create, get, phase_of, pod  # noqa: F401 (busybox, node_cleanup: fixtures)
from conftest import wait_for

SKIFF_AGENT = True


def mounted(doc, mounts, volumes):
    """The pod with `volumes`, and its container mounting `mounts` ({volume: path})."""
    doc["spec"]["volumes"] = volumes
    doc["spec"]["containers"][0]["volumeMounts"] = [{"name": n, "mountPath": p} for n, p in mounts.items()]
    return doc


def waiting(kubectl, name):
    """The container's waiting state, once it has one."""
    statuses = get(kubectl, name)["status"].get("containerStatuses") or [{}]
    return statuses[0].get("state", {}).get("waiting")


def test_a_projected_volume_combines_its_sources_and_follows_edits(kubectl):
    kubectl("create", "configmap", "site", "--from-literal=color=blue")
    kubectl("create", "secret", "generic", "login", "--from-literal=password=hunter2")
    wait_for("kube-root-ca.crt published", lambda: kubectl("get", "configmap", "kube-root-ca.crt", "--ignore-not-found"))
    projected = {"defaultMode": 0o440, "sources": [
        {"configMap": {"name": "site"}},
        {"secret": {"name": "login", "items": [{"key": "password", "path": "auth/password", "mode": 0o400}]}},
        {"downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
    ]}
    script = ("head -1 /all/ca.crt; cat /all/labels; echo; cat /all/auth/password; echo; "
              "stat -L -c %a /all/color /all/auth/password; "
              "while true; do echo color=$(cat /all/color); sleep 1; done")
    doc = mounted(pod("projected", ["sh", "-c", script], restart="Always"), {"all": "/all"},
                  [{"name": "all", "projected": projected}])
    doc["metadata"]["labels"] = {"app": "shop", "tier": "web"}
    create(kubectl, doc)
    phase_of(kubectl, "projected", "Running")
    wait_for("the first color", lambda: kubectl("logs", "projected", "--tail=1").strip() == "color=blue")
    lines = kubectl("logs", "projected").splitlines()
    assert lines[:6] == ["-----BEGIN CERTIFICATE-----", 'app="shop"', 'tier="web"', "hunter2", "440", "400"], lines
    kubectl("patch", "configmap", "site", "-p", json.dumps({"data": {"color": "green"}}))
    wait_for("the edited color, in place", lambda: kubectl("logs", "projected", "--tail=1").strip() == "color=green",
             timeout=40)
    assert container_status(get(kubectl, "projected"))["restartCount"] == 0


def test_a_downward_api_file_shows_resources_in_units_of_the_divisor(kubectl):
    items = [
        {"path": "memory", "resourceFieldRef": {"containerName": "main", "resource": "limits.memory", "divisor": "1Mi"}},
        {"path": "cpu", "resourceFieldRef": {"containerName": "main", "resource": "requests.cpu", "divisor": "1m"}},
    ]
    doc = mounted(pod("resources", ["sh", "-c", "cat /info/memory; echo; cat /info/cpu; echo"]), {"info": "/info"},
                  [{"name": "info", "downwardAPI": {"items": items}}])
    doc["spec"]["containers"][0]["resources"] = {"limits": {"memory": "64Mi", "cpu": "500m"}, "requests": {"cpu": "250m"}}
    create(kubectl, doc)
    phase_of(kubectl, "resources", "Succeeded")
    assert kubectl("logs", "resources").split() == ["64", "250"]


def host_path_volume(name, path):
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "manual",
                     "hostPath": {"path": str(path), "type": "DirectoryOrCreate"}}}


def claim(name):
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "manual",
                     "resources": {"requests": {"storage": "1Gi"}}}}


def claim_pod(name, script, claim_name, read_only=False):
    source = {"claimName": claim_name}
    if read_only:
        source["readOnly"] = True
    return mounted(pod(name, ["sh", "-c", script]), {"data": "/data"}, [{"name": "data", "persistentVolumeClaim": source}])


def test_a_claim_bound_to_a_host_path_volume_keeps_data_between_pods(kubectl, tmp_path):
    create(kubectl, host_path_volume("shared-pv", tmp_path / "pv"))
    create(kubectl, claim("shared"))
    wait_for("claim bound", lambda: get_claim(kubectl, "shared").get("status", {}).get("phase") == "Bound")
    create(kubectl, claim_pod("writer", "echo written by writer > /data/message", "shared"))
    phase_of(kubectl, "writer", "Succeeded")
    assert (tmp_path / "pv" / "message").read_text() == "written by writer\n"
    script = "cat /data/message; touch /data/more 2>/dev/null && echo writable || echo read-only"
    create(kubectl, claim_pod("reader", script, "shared", read_only=True))
    phase_of(kubectl, "reader", "Succeeded")
    assert kubectl("logs", "reader").splitlines() == ["written by writer", "read-only"]
    assert not (tmp_path / "pv" / "more").exists()


def get_claim(kubectl, name):
    return json.loads(kubectl("get", "pvc", name, "-o", "json"))


def test_a_pod_waits_in_container_creating_until_its_claim_exists_and_is_bound(kubectl, tmp_path):
    # The scheduler holds back a pod whose claim is missing; one bound to the node by name
    # (or whose claim goes after scheduling) meets the node agent's check.
    doc = claim_pod("patient", "cat /data/hello", "late")
    doc["spec"]["nodeName"] = kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}")
    create(kubectl, doc)
    missing = wait_for("the missing claim's message", lambda: waiting(kubectl, "patient"))
    assert missing["reason"] == "ContainerCreating", missing
    assert 'persistentvolumeclaims "late" not found' in missing["message"], missing
    assert get(kubectl, "patient")["status"]["phase"] == "Pending"
    describe = wait_for("the FailedMount event", lambda: (d := kubectl("describe", "pod", "patient")) and
                        "FailedMount" in d and d)
    assert 'persistentvolumeclaims "late" not found' in describe, describe

    create(kubectl, claim("late"))
    wait_for("the unbound claim's message",
             lambda: "PVC is not bound" in ((waiting(kubectl, "patient") or {}).get("message") or ""))
    (tmp_path / "late-pv").mkdir()
    (tmp_path / "late-pv" / "hello").write_text("bound at last\n")
    create(kubectl, host_path_volume("late-pv", tmp_path / "late-pv"))
    phase_of(kubectl, "patient", "Succeeded", timeout=60)
    assert kubectl("logs", "patient") == "bound at last\n"


def test_fs_group_owns_the_volumes_so_a_non_root_user_can_use_them(kubectl):
    kubectl("create", "secret", "generic", "private", "--from-literal=key=s3cret")
    script = ("stat -c '%g %a' /scratch; stat -L -c '%g %a' /secret/key; cat /secret/key; echo; "
              "id -u; touch /scratch/mine && stat -c '%u %g' /scratch/mine")
    doc = mounted(pod("grouped", ["sh", "-c", script]), {"scratch": "/scratch", "secret": "/secret"}, [
        {"name": "scratch", "emptyDir": {}},
        {"name": "secret", "secret": {"secretName": "private", "defaultMode": 0o400}},
    ])
    doc["spec"]["securityContext"] = {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000}
    create(kubectl, doc)
    phase_of(kubectl, "grouped", "Succeeded")
    lines = kubectl("logs", "grouped").splitlines()
    # The emptyDir: group 2000, setgid; the secret's file: group 2000, readable by the group
    # only (0400 plus group read), which lets user 1000 read it; a new file inherits the group.
    assert lines == ["2000 2777", "2000 440", "s3cret", "1000", "1000 2000"], lines
