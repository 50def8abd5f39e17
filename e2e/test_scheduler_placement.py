"""Where the scheduler in `skiff server` places pods on simulated nodes (`skiff sim`), with
kube-scheduler's behaviour as the specification: required pod anti-affinity spreading
replicas over hostnames (and the exact FailedScheduling wording when it cannot), required
pod affinity joining a pod's node, topology spread constraints evening pods over zones,
preferred node affinity, preemption of a lower-priority pod (with the Priority admission
plugin filling in priorities from PriorityClasses), pods for another scheduler left alone,
and the kube-scheduler Lease of leader election.

Every test has its own pool of nodes (`pool=<name>`, node names `<prefix>-<i>`) and its own
pod names, all in one server; the fleets start together so the total node count, which
kube-scheduler's messages quote, is known."""

import json
import threading
import time
from collections import Counter

import kubernetes
import pytest

from conftest import wait_for
from scheduling import create, get, node_of, pod, start_fleet

# (prefix, node count, extra `skiff sim` arguments); every pool label is distinct.
FLEETS = [
    ("anti", 4, ["--label", "pool=anti"]),
    ("aff", 3, ["--label", "pool=aff"]),
    ("zonal", 6, ["--label", "pool=zonal", "--zones", "3"]),
    ("ssd", 1, ["--label", "pool=pref", "--label", "disk=ssd"]),
    ("hdd", 3, ["--label", "pool=pref", "--label", "disk=hdd"]),
    ("preempt", 1, ["--label", "pool=preempt", "--cpu", "2", "--memory", "4Gi"]),
    ("other", 1, ["--label", "pool=other"]),
]
TOTAL_NODES = sum(n for _, n, _ in FLEETS)


@pytest.fixture(scope="module", autouse=True)
def fleets(skiff, kubectl):
    procs = [start_fleet(skiff, "--nodes", str(n), "--prefix", prefix, *args) for prefix, n, args in FLEETS]
    wait_for(f"{TOTAL_NODES} nodes",
             lambda: len(json.loads(kubectl("get", "nodes", "-o", "json"))["items"]) == TOTAL_NODES)
    yield procs
    for p in procs:
        p.terminate()
        p.wait(timeout=10)


def exists(kubectl, name):
    return bool(kubectl("get", "pod", name, "--ignore-not-found", "-o", "name").strip())


def condition(doc, type_):
    return next((c for c in doc["status"].get("conditions", []) if c["type"] == type_), None)


def unschedulable_message(kubectl, name):
    """The message of the pod's PodScheduled=False condition, once the scheduler gave up on it."""
    def check():
        c = condition(get(kubectl, name), "PodScheduled")
        return c and c["status"] == "False" and c.get("reason") == "Unschedulable" and c.get("message")
    return wait_for(f"{name} to be reported unschedulable", check)


def fit_error(total, reasons):
    """kube-scheduler's FitError text: `0/N nodes are available: ` and `<count> <reason>`
    parts, sorted as text and joined with `, `, then a period."""
    parts = sorted(f"{n} {reason}" for reason, n in reasons.items())
    return f"0/{total} nodes are available: {', '.join(parts)}."


def zone_of(kubectl, node):
    return json.loads(kubectl("get", "node", node, "-o", "json"))["metadata"]["labels"]["topology.kubernetes.io/zone"]


def hostname_term(kind, selector):
    return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": selector}, "topologyKey": "kubernetes.io/hostname"}]}}


def test_required_pod_anti_affinity_puts_each_replica_on_its_own_node(kubectl):
    def web(name):
        return pod(name, labels={"app": "web"}, nodeSelector={"pool": "anti"},
                   affinity=hostname_term("podAntiAffinity", {"app": "web"}))

    create(kubectl, *[web(f"web-{i}") for i in range(4)])
    nodes = [node_of(kubectl, f"web-{i}") for i in range(4)]
    assert sorted(nodes) == [f"anti-{i}" for i in range(4)]

    create(kubectl, web("web-4"))
    message = unschedulable_message(kubectl, "web-4")
    others = TOTAL_NODES - 4
    expected = (fit_error(TOTAL_NODES, {"node(s) didn't match pod anti-affinity rules": 4,
                                        "node(s) didn't match Pod's node affinity/selector": others})
                + " preemption: "
                + fit_error(TOTAL_NODES, {"No preemption victims found for incoming pod": 4,
                                          "Preemption is not helpful for scheduling": others}))
    assert message == expected
    assert get(kubectl, "web-4")["spec"].get("nodeName") is None
    events = json.loads(kubectl("get", "events", "--field-selector", "reason=FailedScheduling,involvedObject.name=web-4",
                                "-o", "json"))["items"]
    assert events and events[-1]["message"] == expected and events[-1]["type"] == "Warning"

    # A replica going away opens its node to the pending one.
    kubectl("delete", "pod", "web-2", "--wait=false")
    assert node_of(kubectl, "web-4") == nodes[2]


def test_required_pod_affinity_joins_the_selected_pods_node(kubectl):
    create(kubectl, pod("cache", labels={"app": "cache"}, nodeSelector={"pool": "aff"}))
    cache_node = node_of(kubectl, "cache")
    assert cache_node.startswith("aff-")

    # Three followers: without the affinity, LeastAllocated would send them to the emptier nodes.
    create(kubectl, *[pod(f"near-cache-{i}", cpu="2", nodeSelector={"pool": "aff"},
                          affinity=hostname_term("podAffinity", {"app": "cache"})) for i in range(3)])
    assert [node_of(kubectl, f"near-cache-{i}") for i in range(3)] == [cache_node] * 3

    # Nothing carries the selected label (and the pod does not select itself): nowhere fits.
    create(kubectl, pod("near-nothing", nodeSelector={"pool": "aff"},
                        affinity=hostname_term("podAffinity", {"app": "absent"})))
    message = unschedulable_message(kubectl, "near-nothing")
    assert message == (fit_error(TOTAL_NODES, {"node(s) didn't match pod affinity rules": 3,
                                               "node(s) didn't match Pod's node affinity/selector": TOTAL_NODES - 3})
                       + " preemption: " + fit_error(TOTAL_NODES, {"Preemption is not helpful for scheduling": TOTAL_NODES}))


def test_topology_spread_constraints_even_pods_over_zones(kubectl):
    def zonal(name):
        return pod(name, labels={"group": "zonal"}, nodeSelector={"pool": "zonal"}, topologySpreadConstraints=[{
            "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"group": "zonal"}}}])

    zones = {f"zonal-{i}": f"zone-{i % 3}" for i in range(6)}
    assert {n: zone_of(kubectl, n) for n in zones} == zones

    # All at once: the scheduler counts the pods it has just placed.
    create(kubectl, *[zonal(f"zonal-pod-{i}") for i in range(6)])
    placed = Counter(zones[node_of(kubectl, f"zonal-pod-{i}")] for i in range(6))
    assert placed == {"zone-0": 2, "zone-1": 2, "zone-2": 2}

    # Then one at a time: the seventh may go anywhere, the eighth not into the seventh's zone.
    create(kubectl, zonal("zonal-pod-6"))
    seventh = zones[node_of(kubectl, "zonal-pod-6")]
    create(kubectl, zonal("zonal-pod-7"))
    eighth = zones[node_of(kubectl, "zonal-pod-7")]
    assert eighth != seventh
    placed.update([seventh, eighth])
    assert sorted(placed.values()) == [2, 3, 3]


def test_preferred_node_affinity_picks_the_preferred_node(kubectl):
    prefer_ssd = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}
    create(kubectl, *[pod(f"likes-ssd-{i}", nodeSelector={"pool": "pref"}, affinity=prefer_ssd) for i in range(5)])
    assert [node_of(kubectl, f"likes-ssd-{i}") for i in range(5)] == ["ssd-0"] * 5
    # Without the preference the same pods spread to the emptier hdd nodes.
    create(kubectl, pod("no-preference", nodeSelector={"pool": "pref"}))
    assert node_of(kubectl, "no-preference").startswith("hdd-")


class PodWatch:
    """Every version of the default namespace's pods with a label, as a watch delivers them."""

    def __init__(self, k8s, label_selector):
        self.seen = []
        self.error = None
        self._watch = kubernetes.watch.Watch()
        self._api = kubernetes.client.CoreV1Api(k8s)
        self._selector = label_selector
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            for event in self._watch.stream(self._api.list_namespaced_pod, "default", label_selector=self._selector,
                                            timeout_seconds=120):
                self.seen.append(event["raw_object"])
        except Exception as e:  # reported by the assertions that find an event missing
            self.error = e

    def versions(self, name):
        return [p for p in list(self.seen) if p["metadata"]["name"] == name]

    def stop(self):
        self._watch.stop()


def test_preemption_evicts_a_lower_priority_pod(kubectl, k8s):
    kubectl("create", "priorityclass", "low", "--value=100")
    kubectl("create", "priorityclass", "high", "--value=1000")

    create(kubectl, pod("prio-low", cpu="1500m", labels={"test": "preempt"}, priorityClassName="low",
                        nodeSelector={"pool": "preempt"}))
    assert node_of(kubectl, "prio-low") == "preempt-0"
    wait_for("prio-low to run", lambda: get(kubectl, "prio-low")["status"].get("phase") == "Running")
    low = get(kubectl, "prio-low")
    assert low["spec"]["priority"] == 100 and low["spec"]["preemptionPolicy"] == "PreemptLowerPriority"

    watch = PodWatch(k8s, "test=preempt")
    try:
        wait_for("the watch to start", lambda: watch.versions("prio-low"))
        create(kubectl, pod("prio-high", cpu="1500m", labels={"test": "preempt"}, priorityClassName="high",
                            nodeSelector={"pool": "preempt"}))
        high = get(kubectl, "prio-high")
        assert high["spec"]["priority"] == 1000
        assert high["spec"]["preemptionPolicy"] == "PreemptLowerPriority"

        wait_for("prio-low to be gone", lambda: not exists(kubectl, "prio-low"))
        assert node_of(kubectl, "prio-high") == "preempt-0"
        wait_for("prio-high to run", lambda: get(kubectl, "prio-high")["status"].get("phase") == "Running")
        # The preemptor was nominated to the node before it was bound there.
        nominated = [p["status"].get("nominatedNodeName") for p in watch.versions("prio-high")]
        assert "preempt-0" in nominated, (nominated, watch.error)
        # The victim was told why it goes: a DisruptionTarget condition.
        targets = [c for p in watch.versions("prio-low") for c in p["status"].get("conditions", [])
                   if c["type"] == "DisruptionTarget"]
        assert targets, watch.error
        assert targets[-1]["status"] == "True" and targets[-1]["reason"] == "PreemptionByScheduler", targets
    finally:
        watch.stop()

    def preempted_event():
        items = json.loads(kubectl("get", "events", "--field-selector", "reason=Preempted", "-o", "json"))["items"]
        return [e for e in items if e["involvedObject"]["name"] == "prio-low"]
    event = wait_for("the Preempted event", preempted_event)[-1]
    assert event["type"] == "Normal"
    assert event["involvedObject"]["kind"] == "Pod"
    assert event["message"] == f"Preempted by pod {high['metadata']['uid']} on node preempt-0"


def test_priority_admission_fills_in_and_refuses_priorities(kubectl):
    nope = kubectl("create", "-f", "-", check=False,
                   input=json.dumps(pod("prio-nope", priorityClassName="nope", schedulerName="other-scheduler")))
    assert nope.returncode != 0
    assert "Error from server (Forbidden)" in nope.stderr
    assert 'pods "prio-nope" is forbidden: no PriorityClass with name nope was found' in nope.stderr
    assert not exists(kubectl, "prio-nope")

    critical = json.loads(kubectl("create", "--dry-run=server", "-o", "json", "-f", "-",
                                  input=json.dumps(pod("prio-critical", priorityClassName="system-cluster-critical"))))
    assert critical["spec"]["priority"] == 2000000000
    assert critical["spec"]["preemptionPolicy"] == "PreemptLowerPriority"

    # A pod naming no class gets priority 0 (no class is globalDefault).
    plain = json.loads(kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(pod("prio-none"))))
    assert plain["spec"]["priority"] == 0


def test_pods_for_another_scheduler_are_left_alone(kubectl):
    create(kubectl,
           pod("for-other", nodeSelector={"pool": "other"}, schedulerName="other-scheduler"),
           pod("for-default", nodeSelector={"pool": "other"}))
    assert node_of(kubectl, "for-default") == "other-0"
    time.sleep(3)
    doc = get(kubectl, "for-other")
    assert doc["spec"].get("nodeName") is None
    assert doc["status"].get("phase") == "Pending"
    assert condition(doc, "PodScheduled") is None
    events = json.loads(kubectl("get", "events", "--field-selector", "involvedObject.name=for-other", "-o", "json"))
    assert events["items"] == []


def test_the_scheduler_holds_and_renews_its_lease(kubectl):
    def lease():
        return json.loads(kubectl("get", "lease", "kube-scheduler", "-n", "kube-system", "-o", "json"))

    first = lease()
    assert first["spec"].get("holderIdentity")
    assert first["spec"]["leaseDurationSeconds"] == 11
    assert first["spec"].get("renewTime")
    later = wait_for("the lease to be renewed",
                     lambda: (lambda doc: doc["spec"]["renewTime"] != first["spec"]["renewTime"] and doc)(lease()),
                     timeout=6)
    assert later["spec"]["holderIdentity"] == first["spec"]["holderIdentity"]
    assert later["spec"]["renewTime"] > first["spec"]["renewTime"]
