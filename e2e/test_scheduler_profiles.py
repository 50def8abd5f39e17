"""Scheduler profiles from `skiff server --scheduler-config`, a KubeSchedulerConfiguration
(kubescheduler.config.k8s.io/v1) as kube-scheduler reads it: a pod's schedulerName picks
its profile, so `bin-packer` pods (NodeResourcesFit scoring MostAllocated, without
NodeResourcesBalancedAllocation) pile onto one node while default-scheduler pods spread
over the emptiest nodes (LeastAllocated); the Scheduled and FailedScheduling events come
from the pod's profile's scheduler name; and a configuration naming a plugin that does not
exist keeps the server from starting."""

import json
import subprocess
from collections import Counter

import pytest

import scheduling
from conftest import SKIFF_BIN, free_port, wait_for
from scheduling import create, node_of, start_fleet

SCHEDULER_CONFIG = """\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
- schedulerName: bin-packer
  plugins:
    score:
      disabled:
      - name: NodeResourcesBalancedAllocation
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
"""

SKIFF_FILES = {"scheduler.yaml": SCHEDULER_CONFIG}
SKIFF_ARGS = ["--scheduler-config", "{root}/scheduler.yaml"]

POOL_SIZE = 3


@pytest.fixture(scope="module", autouse=True)
def fleets(skiff, kubectl):
    # Two pools of three equal nodes, one per profile, and two nodes for the events test.
    procs = [
        start_fleet(skiff, "--nodes", str(POOL_SIZE), "--prefix", "pack", "--label", "pool=pack",
                    "--cpu", "4", "--memory", "8Gi"),
        start_fleet(skiff, "--nodes", str(POOL_SIZE), "--prefix", "even", "--label", "pool=even",
                    "--cpu", "4", "--memory", "8Gi"),
        start_fleet(skiff, "--nodes", "2", "--prefix", "told", "--label", "pool=told"),
    ]
    wait_for("8 nodes", lambda: len(json.loads(kubectl("get", "nodes", "-o", "json"))["items"]) == 2 * POOL_SIZE + 2)
    yield procs
    for p in procs:
        p.terminate()
        p.wait(timeout=10)


def pod(name, pool, **spec):
    return scheduling.pod(name, cpu="500m", memory="256Mi", nodeSelector={"pool": pool}, **spec)


def test_the_bin_packer_profile_piles_pods_onto_one_node(kubectl):
    create(kubectl, *[pod(f"packed-{i}", "pack", schedulerName="bin-packer") for i in range(6)])
    per_node = Counter(node_of(kubectl, f"packed-{i}") for i in range(6))
    # 6 x 500m of a node's 4 cpus: all fit on the first node chosen, and MostAllocated keeps choosing it.
    assert len(per_node) == 1 and list(per_node.values()) == [6], per_node
    assert next(iter(per_node)).startswith("pack-")


def test_scheduled_events_name_the_profile_that_placed_the_pod(kubectl):
    """kube-scheduler records `Scheduled: Successfully assigned <ns>/<pod> to <node>`, from
    the scheduler name of the pod's profile (kubectl describe's From column)."""
    create(kubectl, pod("announced-packed", "told", schedulerName="bin-packer"), pod("announced-even", "told"))
    for name, scheduler in (("announced-packed", "bin-packer"), ("announced-even", "default-scheduler")):
        node = node_of(kubectl, name)

        def scheduled():
            items = json.loads(kubectl("get", "events", "--field-selector", f"involvedObject.name={name}",
                                       "-o", "json"))["items"]
            return [e for e in items if e["reason"] == "Scheduled"]
        event = wait_for(f"{name}'s Scheduled event", scheduled, timeout=10)[-1]
        assert event["type"] == "Normal"
        assert event["message"] == f"Successfully assigned default/{name} to {node}"
        assert (event.get("reportingComponent") or event["source"].get("component")) == scheduler


def test_the_default_profile_spreads_pods_over_the_emptiest_nodes(kubectl):
    create(kubectl, *[pod(f"spread-{i}", "even") for i in range(6)])
    per_node = Counter(node_of(kubectl, f"spread-{i}") for i in range(6))
    assert per_node == {f"even-{i}": 2 for i in range(POOL_SIZE)}


def test_a_profile_naming_an_unknown_plugin_keeps_the_server_from_starting(tmp_path):
    config = tmp_path / "bad-scheduler.yaml"
    config.write_text("""\
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
  plugins:
    score:
      enabled:
      - name: NoSuchPlugin
        weight: 1
""")
    res = subprocess.run(
        [SKIFF_BIN, "server", "--data-dir", str(tmp_path / "data"), "--https-port", str(free_port()),
         "--bind-address", "127.0.0.1", "--scheduler-config", str(config)],
        capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    assert res.returncode != 0
    assert 'unknown plugin "NoSuchPlugin"' in res.stderr, res.stderr
    assert str(config) in res.stderr, res.stderr


def test_failed_scheduling_events_name_the_profile(kubectl):
    """A pod its profile cannot place gets FailedScheduling from that profile's scheduler name."""
    create(kubectl, pod("packed-nowhere", "nowhere", schedulerName="bin-packer"))

    def failed():
        items = json.loads(kubectl("get", "events", "--field-selector", "involvedObject.name=packed-nowhere",
                                   "-o", "json"))["items"]
        return [e for e in items if e["reason"] == "FailedScheduling"]
    event = wait_for("packed-nowhere's FailedScheduling event", failed, timeout=10)[-1]
    assert event["type"] == "Warning"
    assert event["message"].startswith("0/8 nodes are available: 8 node(s) didn't match Pod's node affinity/selector.")
    assert (event.get("reportingComponent") or event["source"].get("component")) == "bin-packer"
