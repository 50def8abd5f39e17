"""Endpoints and EndpointSlices of Services, on simulated nodes, as kubectl shows them: the
ready pods a selector matches under `addresses` and the unready ones under
`notReadyAddresses`, with their IPs, nodes and references, behind the Service's target ports
(numeric, or named and looked up in each pod); terminating, finished and IP-less pods left
out; publishNotReadyAddresses; headless Services; EndpointSlices with their labels, owner,
ports and ready/serving/terminating conditions, at most 100 endpoints each, and a placeholder
for a Service without pods; pods on nodes not yet known; trafficDistribution hints; the
mirroring of user-written Endpoints of Services without a selector; and both following
pods, selectors and the Service's deletion; and the time of the change each write follows."""

import json
import time

import pytest

from scheduling import running_fleet

NODES = 3
HEADLESS = "service.kubernetes.io/headless"
SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
HOLD = "e2e.skiff.io/hold"
TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"

HTTP = {"name": "http", "port": 80, "targetPort": 8080}
HTTP_ENDPOINT = {"name": "http", "port": 8080, "protocol": "TCP"}


@pytest.fixture(scope="module", autouse=True)
def fleet(skiff, kubectl):
    yield from running_fleet(skiff, kubectl, NODES, "ep")


def pod(name, app, index=0, ready=True, ports=None, annotations=None, **spec):
    """A pod labelled app=`app`, bound to simulated node ep-<index % 3>; `ready=False` makes its
    readiness probe fail; `ports` is {name: containerPort}."""
    container = {"name": "app", "image": "nginx:1"}
    if ports:
        container["ports"] = [{"name": port_name, "containerPort": number} for port_name, number in ports.items()]
    body = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": app},
                         "annotations": dict(annotations or {}, **({} if ready else {"sim.skiff.io/ready": "false"}))},
            "spec": {"nodeName": f"ep-{index % NODES}", "containers": [container]}}
    body["spec"].update(spec)
    return body


def service(name, app=None, ports=(HTTP,), **spec):
    """A Service selecting app=`app` (no selector when `app` is None) with these ports (none
    when `ports` is None)."""
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": {}}
    if app:
        body["spec"]["selector"] = {"app": app}
    if ports is not None:
        body["spec"]["ports"] = list(ports)
    body["spec"].update(spec)
    return body


def deployment(name, replicas):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": "nginx:1"}]}}}}


def apply(kubectl, *objects):
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def get(kubectl, kind, name):
    return json.loads(kubectl("get", kind, name, "-o", "json"))


def endpoints(kubectl, name):
    """The Endpoints object of that name, or None if there is none."""
    res = kubectl("get", "endpoints", name, "-o", "json", check=False)
    if res.returncode != 0:
        assert "NotFound" in res.stderr, res.stderr
        return None
    return json.loads(res.stdout)


def slices(kubectl, service_name):
    return json.loads(kubectl("get", "endpointslices", "-l", f"{SERVICE_NAME}={service_name}", "-o", "json"))["items"]


def listed(ep, key="addresses"):
    """The addresses under `key` in every subset of an Endpoints object, by IP."""
    return {a["ip"]: a for subset in (ep or {}).get("subsets") or [] for a in subset.get(key) or []}


def sliced(items):
    """The endpoints of these EndpointSlices, by address."""
    return {address: e for s in items for e in s.get("endpoints") or [] for address in e.get("addresses") or []}


def settle(what, fetch, condition, timeout=30):
    """Fetches until `condition` holds for what it got, and returns that; on timeout fails
    showing what it got last."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if condition(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen:\n"
                                 f"{json.dumps(value, indent=1, default=str)[:4000]}")
        time.sleep(0.2)


def running(kubectl, *names):
    """Waits until these pods run with an IP; returns them by name."""
    def fetch():
        got = json.loads(kubectl("get", "pods", *names, "-o", "json"))
        # One name gets the pod itself, several a List.
        return {p["metadata"]["name"]: p for p in got.get("items", [got])}
    return settle(f"pods {', '.join(names)} to run", fetch,
                  lambda pods: len(pods) == len(names)
                  and all(p["status"].get("phase") == "Running" and p["status"].get("podIP") for p in pods.values()))


def ip(pod):
    return pod["status"]["podIP"]


def target_ref(pod):
    meta = pod["metadata"]
    return {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]}


def address_of(pod):
    """The pod as an Endpoints address."""
    return {"ip": ip(pod), "nodeName": pod["spec"]["nodeName"], "targetRef": target_ref(pod)}


def endpoint_of(pod, ready=True, serving=True, terminating=False):
    """The pod as an EndpointSlice endpoint."""
    return {"addresses": [ip(pod)], "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
            "nodeName": pod["spec"]["nodeName"], "targetRef": target_ref(pod)}


def endpoints_with(kubectl, name, ready=(), not_ready=()):
    """Waits until the Endpoints list exactly these IPs as ready and not ready; returns them."""
    want = (set(ready), set(not_ready))
    return settle(f"Endpoints {name} to list {len(want[0])} ready and {len(want[1])} unready addresses",
                  lambda: endpoints(kubectl, name),
                  lambda ep: ep is not None and (set(listed(ep)), set(listed(ep, "notReadyAddresses"))) == want)


def endpoints_listing(kubectl, name, ready=(), not_ready=()):
    """Waits until the Endpoints list exactly these pods as ready and not ready; returns them."""
    return endpoints_with(kubectl, name, map(ip, ready), map(ip, not_ready))


def slices_listing(kubectl, name, *pods):
    """Waits until the Service's EndpointSlices hold exactly these pods' addresses; returns the slices."""
    want = {ip(p) for p in pods}
    return settle(f"the EndpointSlices of {name} to hold {len(want)} endpoints", lambda: slices(kubectl, name),
                  lambda items: set(sliced(items)) == want and sum(len(s.get("endpoints") or []) for s in items) == len(want))


def test_endpoints_list_the_ready_pods_behind_the_service_ports(kubectl):
    dns = {"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}
    apply(kubectl, pod("web-0", "web", 0), pod("web-1", "web", 1), service("web", "web", ports=[HTTP, dns]))
    pods = running(kubectl, "web-0", "web-1")
    ep = endpoints_listing(kubectl, "web", ready=pods.values())
    [subset] = ep["subsets"]
    assert sorted(subset["addresses"], key=lambda a: a["ip"]) == sorted(map(address_of, pods.values()), key=lambda a: a["ip"])
    assert "notReadyAddresses" not in subset
    assert sorted(subset["ports"], key=lambda p: p["name"]) == [{"name": "dns", "port": 5353, "protocol": "UDP"}, HTTP_ENDPOINT]
    assert HEADLESS not in ep["metadata"].get("labels", {})


def test_an_endpoint_slice_describes_each_ready_pod(kubectl):
    apply(kubectl, pod("sliced-0", "sliced", 0), pod("sliced-1", "sliced", 2), service("sliced", "sliced"))
    pods = running(kubectl, "sliced-0", "sliced-1")
    [s] = slices_listing(kubectl, "sliced", *pods.values())
    uid = get(kubectl, "service", "sliced")["metadata"]["uid"]
    assert s["metadata"]["name"].startswith("sliced-")
    labels = s["metadata"]["labels"]
    assert (labels[SERVICE_NAME], labels[MANAGED_BY]) == ("sliced", "endpointslice-controller.k8s.io")
    assert HEADLESS not in labels
    [owner] = s["metadata"]["ownerReferences"]
    assert (owner["apiVersion"], owner["kind"], owner["name"], owner["uid"], owner["controller"]) == ("v1", "Service", "sliced", uid, True)
    assert s["addressType"] == "IPv4"
    assert s["ports"] == [HTTP_ENDPOINT]
    assert sliced([s]) == {ip(p): endpoint_of(p) for p in pods.values()}


def test_an_unready_pod_is_listed_as_not_ready(kubectl):
    apply(kubectl, pod("shy-0", "shy", 0), pod("shy-1", "shy", 1, ready=False), service("shy", "shy"))
    pods = running(kubectl, "shy-0", "shy-1")
    ep = endpoints_listing(kubectl, "shy", ready=[pods["shy-0"]], not_ready=[pods["shy-1"]])
    assert listed(ep, "notReadyAddresses") == {ip(pods["shy-1"]): address_of(pods["shy-1"])}
    assert all(subset["ports"] == [HTTP_ENDPOINT] for subset in ep["subsets"])
    found = sliced(slices_listing(kubectl, "shy", *pods.values()))
    assert found[ip(pods["shy-0"])] == endpoint_of(pods["shy-0"])
    assert found[ip(pods["shy-1"])] == endpoint_of(pods["shy-1"], ready=False, serving=False)


def test_a_pod_that_turns_unready_moves_to_not_ready_and_back(kubectl):
    apply(kubectl, pod("flip-0", "flip", 0), pod("flip-1", "flip", 1), service("flip", "flip"))
    pods = running(kubectl, "flip-0", "flip-1")
    endpoints_listing(kubectl, "flip", ready=pods.values())
    flip = ip(pods["flip-1"])

    kubectl("annotate", "pod", "flip-1", "sim.skiff.io/ready=false")
    endpoints_listing(kubectl, "flip", ready=[pods["flip-0"]], not_ready=[pods["flip-1"]])
    settle("flip-1's endpoint to turn unready", lambda: sliced(slices(kubectl, "flip")).get(flip),
           lambda e: e is not None and e["conditions"] == {"ready": False, "serving": False, "terminating": False})

    kubectl("annotate", "pod", "flip-1", "sim.skiff.io/ready=true", "--overwrite")
    endpoints_listing(kubectl, "flip", ready=pods.values())
    settle("flip-1's endpoint to be ready again", lambda: sliced(slices(kubectl, "flip")).get(flip),
           lambda e: e is not None and e["conditions"] == {"ready": True, "serving": True, "terminating": False})


def ready_transition(pod):
    return next(c["lastTransitionTime"] for c in pod["status"]["conditions"] if c["type"] == "Ready")


def test_writes_carry_the_time_of_the_change_that_triggered_them(kubectl):
    apply(kubectl, pod("when-0", "when", 0))
    running(kubectl, "when-0")
    apply(kubectl, service("when", "when"))
    created = get(kubectl, "service", "when")["metadata"]["creationTimestamp"]
    first = endpoints_listing(kubectl, "when", ready=[get(kubectl, "pod", "when-0")])
    # The Service's creation, or the pod's readiness if the controller saw the Service first.
    assert first["metadata"]["annotations"][TRIGGER_TIME] in (created, ready_transition(get(kubectl, "pod", "when-0")))

    # Condition times are in seconds: a change in the same second as the last is no later.
    time.sleep(1.1)
    kubectl("annotate", "pod", "when-0", "sim.skiff.io/ready=false")
    unready = settle("when-0 to turn unready", lambda: get(kubectl, "pod", "when-0"),
                     lambda p: any(c["type"] == "Ready" and c["status"] == "False" for c in p["status"]["conditions"]))
    endpoints_listing(kubectl, "when", not_ready=[unready])
    settle("the Endpoints to carry the pod's change", lambda: endpoints(kubectl, "when"),
           lambda ep: ep["metadata"].get("annotations", {}).get(TRIGGER_TIME) == ready_transition(unready))
    settle("the slice to carry the pod's change", lambda: slices(kubectl, "when"),
           lambda items: [s["metadata"].get("annotations", {}).get(TRIGGER_TIME) for s in items] == [ready_transition(unready)]
           and sliced(items)[ip(unready)]["conditions"]["ready"] is False)


def test_publish_not_ready_addresses_lists_unready_pods_as_ready(kubectl):
    apply(kubectl, pod("eager-0", "eager", 0), pod("eager-1", "eager", 1, ready=False),
          service("eager", "eager", publishNotReadyAddresses=True))
    pods = running(kubectl, "eager-0", "eager-1")
    endpoints_listing(kubectl, "eager", ready=pods.values())
    found = sliced(slices_listing(kubectl, "eager", *pods.values()))
    assert found[ip(pods["eager-0"])] == endpoint_of(pods["eager-0"])
    # Ready is forced; serving still tells the pod's own readiness (as Kubernetes' podToEndpoint).
    assert found[ip(pods["eager-1"])] == endpoint_of(pods["eager-1"], ready=True, serving=False)


def named_port_pods(kubectl):
    """Three pods behind Service `named`, whose targetPort names a container port: 8080 in the
    first, 9090 in the second, and absent from the third."""
    apply(kubectl, pod("named-0", "named", 0, ports={"web": 8080}), pod("named-1", "named", 1, ports={"web": 9090}),
          pod("named-2", "named", 2, ports={"admin": 7070}),
          service("named", "named", ports=[{"name": "http", "port": 80, "targetPort": "web"}]))
    return running(kubectl, "named-0", "named-1", "named-2")


def test_a_named_target_port_is_looked_up_in_each_pod(kubectl):
    pods = named_port_pods(kubectl)
    ep = endpoints_listing(kubectl, "named", ready=[pods["named-0"], pods["named-1"]])
    ports = {a["ip"]: subset["ports"] for subset in ep["subsets"] for a in subset.get("addresses", [])}
    assert ports == {ip(pods["named-0"]): [{"name": "http", "port": 8080, "protocol": "TCP"}],
                     ip(pods["named-1"]): [{"name": "http", "port": 9090, "protocol": "TCP"}]}


def test_slices_group_pods_by_their_resolved_ports(kubectl):
    pods = named_port_pods(kubectl)
    items = slices_listing(kubectl, "named", *pods.values())
    ports = {address: s.get("ports") or [] for s in items for address in sliced([s])}
    # A pod without the named port still has its endpoint, in a slice without ports, as
    # Kubernetes' getEndpointPorts skips the port rather than the pod.
    assert ports == {ip(pods["named-0"]): [{"name": "http", "port": 8080, "protocol": "TCP"}],
                     ip(pods["named-1"]): [{"name": "http", "port": 9090, "protocol": "TCP"}],
                     ip(pods["named-2"]): []}
    assert len(items) == 3


def test_a_terminating_pod_leaves_the_endpoints_and_turns_terminating_in_its_slice(kubectl):
    # Its containers take their whole grace period to stop; the finalizer keeps it after that.
    held = pod("bye-0", "bye", 0, annotations={"sim.skiff.io/stop-seconds": "600"})
    held["metadata"]["finalizers"] = [HOLD]
    apply(kubectl, held, pod("bye-1", "bye", 1), service("bye", "bye"))
    try:
        pods = running(kubectl, "bye-0", "bye-1")
        endpoints_listing(kubectl, "bye", ready=pods.values())
        leaving = ip(pods["bye-0"])
        kubectl("delete", "pod", "bye-0", "--wait=false")
        deleting = get(kubectl, "pod", "bye-0")
        assert deleting["metadata"].get("deletionTimestamp") and deleting["status"]["phase"] == "Running"
        endpoints_listing(kubectl, "bye", ready=[pods["bye-1"]])
        settle("bye-0's endpoint to turn terminating", lambda: sliced(slices(kubectl, "bye")).get(leaving),
               lambda e: e is not None and e["conditions"] == {"ready": False, "serving": True, "terminating": True})
    finally:
        kubectl("patch", "pod", "bye-0", "--type=merge", "-p", '{"metadata":{"finalizers":null}}', check=False)
    slices_listing(kubectl, "bye", pods["bye-1"])
    # And a pod deleted without a finalizer goes from both at once.
    kubectl("delete", "pod", "bye-1", "--wait=false")
    endpoints_listing(kubectl, "bye")
    slices_listing(kubectl, "bye")


def test_a_pod_without_an_ip_is_left_out(kubectl):
    stuck = pod("noip-1", "noip", nodeSelector={"no": "such-node"})
    del stuck["spec"]["nodeName"]
    apply(kubectl, pod("noip-0", "noip", 0), stuck, service("noip", "noip"))
    pods = running(kubectl, "noip-0")
    endpoints_listing(kubectl, "noip", ready=pods.values())
    slices_listing(kubectl, "noip", *pods.values())
    assert not get(kubectl, "pod", "noip-1").get("status", {}).get("podIP")


def test_a_finished_pod_is_left_out(kubectl):
    # Kubernetes' ShouldPodBeInEndpoints drops Succeeded and Failed pods, IP or not.
    apply(kubectl, pod("done-0", "done", 0), pod("done-1", "done", 1, annotations={"sim.skiff.io/run-seconds": "1"}, restartPolicy="Never"),
          service("done", "done"))
    pods = running(kubectl, "done-0")
    settle("done-1 to succeed", lambda: get(kubectl, "pod", "done-1"), lambda p: p["status"].get("phase") == "Succeeded")
    endpoints_listing(kubectl, "done", ready=pods.values())
    slices_listing(kubectl, "done", *pods.values())


def test_a_pod_on_a_node_not_yet_known_joins_the_slices_when_the_node_comes(kubectl):
    """A pod bound to a node the controller does not know is left out of the slices (unless
    its Service publishes not-ready addresses) and added once the node exists."""
    body = pod("late-1", "late")
    body["spec"]["nodeName"] = "ep-late"
    apply(kubectl, body, service("late", "late"), service("late-all", "late", publishNotReadyAddresses=True))
    # No kubelet runs there: the test reports the pod running, as one would.
    status = {"phase": "Running", "podIP": "10.250.0.7", "podIPs": [{"ip": "10.250.0.7"}],
              "conditions": [{"type": "Ready", "status": "True"}]}
    kubectl("patch", "pod", "late-1", "--subresource=status", "--type=merge", "-p", json.dumps({"status": status}))
    late = get(kubectl, "pod", "late-1")
    slices_listing(kubectl, "late-all", late)
    time.sleep(1)
    assert sliced(slices(kubectl, "late")) == {}
    apply(kubectl, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "ep-late"}})
    try:
        assert slices_listing(kubectl, "late", late)[0]["endpoints"] == [endpoint_of(late)]
    finally:
        kubectl("delete", "pod", "late-1", "--grace-period=0", "--force")
        kubectl("delete", "node", "ep-late", "--wait=false")


def test_traffic_distribution_hints_each_ready_endpoint_for_its_node_and_zone(kubectl):
    apply(kubectl, pod("near-1", "near", index=1), pod("near-2", "near", index=2, ready=False),
          service("near", "near", trafficDistribution="PreferSameNode"))
    pods = running(kubectl, "near-1", "near-2")
    ready, unready = pods["near-1"], pods["near-2"]
    hints = lambda: {ip(p): e.get("hints") for p in (ready, unready)
                     for e in sliced(slices(kubectl, "near")).values() if e["addresses"] == [ip(p)]}
    settle("node hints", hints, lambda h: h == {ip(ready): {"forNodes": [{"name": "ep-1"}]}, ip(unready): None})
    kubectl("label", "node", "ep-1", "topology.kubernetes.io/zone=zone-b")
    try:
        kubectl("patch", "service", "near", "-p", '{"spec": {"trafficDistribution": "PreferSameZone"}}')
        settle("zone hints", hints, lambda h: h == {ip(ready): {"forZones": [{"name": "zone-b"}]}, ip(unready): None})
    finally:
        kubectl("label", "node", "ep-1", "topology.kubernetes.io/zone-")
        kubectl("delete", "service", "near")
        kubectl("delete", "pod", "near-1", "near-2", "--grace-period=0", "--force")
    res = kubectl("create", "-f", "-", input=json.dumps(service("far", "far", trafficDistribution="Nearby")),
                  check=False)
    assert 'spec.trafficDistribution: Unsupported value: "Nearby"' in res.stderr, res.stderr


def test_a_headless_service_labels_its_endpoints_and_slices_headless(kubectl):
    apply(kubectl, pod("quiet-0", "quiet", 0), service("quiet", "quiet", clusterIP="None"))
    pods = running(kubectl, "quiet-0")
    ep = endpoints_listing(kubectl, "quiet", ready=pods.values())
    assert ep["metadata"]["labels"][HEADLESS] == ""
    [s] = slices_listing(kubectl, "quiet", *pods.values())
    assert s["metadata"]["labels"][HEADLESS] == ""
    assert s["ports"] == [HTTP_ENDPOINT]


def test_a_headless_service_without_ports_lists_addresses_without_ports(kubectl):
    apply(kubectl, pod("bare-0", "bare", 1), pod("bare-1", "bare", 2), service("bare", "bare", ports=None, clusterIP="None"))
    pods = running(kubectl, "bare-0", "bare-1")
    ep = endpoints_listing(kubectl, "bare", ready=pods.values())
    [subset] = ep["subsets"]
    assert not subset.get("ports")
    assert ep["metadata"]["labels"][HEADLESS] == ""
    [s] = slices_listing(kubectl, "bare", *pods.values())
    assert not s.get("ports")
    assert sliced([s]) == {ip(p): endpoint_of(p) for p in pods.values()}


def test_a_service_selecting_no_pods_has_empty_endpoints_and_one_placeholder_slice(kubectl):
    apply(kubectl, service("lonely", "lonely"))
    ep = settle("Endpoints lonely", lambda: endpoints(kubectl, "lonely"), lambda ep: ep is not None)
    assert not ep.get("subsets")
    items = settle("a placeholder slice for lonely", lambda: slices(kubectl, "lonely"), lambda items: items)
    assert len(items) == 1, items
    [placeholder] = items
    assert not placeholder.get("endpoints")
    assert placeholder["metadata"]["labels"][MANAGED_BY] == "endpointslice-controller.k8s.io"
    assert placeholder["addressType"] == "IPv4"
    assert placeholder["metadata"]["ownerReferences"][0]["name"] == "lonely"


def test_changing_the_selector_changes_the_endpoints(kubectl):
    apply(kubectl, pod("blue-0", "blue", 0), pod("blue-1", "blue", 1), pod("green-0", "green", 2), service("swap", "blue"))
    pods = running(kubectl, "blue-0", "blue-1", "green-0")
    endpoints_listing(kubectl, "swap", ready=[pods["blue-0"], pods["blue-1"]])
    slices_listing(kubectl, "swap", pods["blue-0"], pods["blue-1"])
    kubectl("patch", "service", "swap", "--type=merge", "-p", json.dumps({"spec": {"selector": {"app": "green"}}}))
    endpoints_listing(kubectl, "swap", ready=[pods["green-0"]])
    slices_listing(kubectl, "swap", pods["green-0"])


def test_a_pod_relabelled_out_of_the_selector_leaves(kubectl):
    apply(kubectl, pod("tag-0", "tag", 0), pod("tag-1", "tag", 1), service("tag", "tag"))
    pods = running(kubectl, "tag-0", "tag-1")
    endpoints_listing(kubectl, "tag", ready=pods.values())
    kubectl("label", "pod", "tag-1", "app=elsewhere", "--overwrite")
    endpoints_listing(kubectl, "tag", ready=[pods["tag-0"]])
    slices_listing(kubectl, "tag", pods["tag-0"])


def test_deleting_the_service_deletes_its_endpoints_and_slices(kubectl):
    apply(kubectl, pod("gone-0", "gone", 0), service("gone", "gone"))
    pods = running(kubectl, "gone-0")
    endpoints_listing(kubectl, "gone", ready=pods.values())
    slices_listing(kubectl, "gone", *pods.values())
    kubectl("delete", "service", "gone")
    settle("Endpoints gone to go", lambda: endpoints(kubectl, "gone"), lambda ep: ep is None)
    settle("the slices of gone to go", lambda: slices(kubectl, "gone"), lambda items: not items)


def manual_endpoints(name, ready, not_ready=(), port=8443):
    """Endpoints as a user writes them for a Service without a selector."""
    subset = {"addresses": [{"ip": a} for a in ready], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
    if not_ready:
        subset["notReadyAddresses"] = [{"ip": a} for a in not_ready]
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": "default"}, "subsets": [subset]}


def test_a_service_without_a_selector_gets_no_endpoints_from_the_controllers(kubectl):
    apply(kubectl, service("manual"))
    # A Service with a selector, created after it, marks when the controllers have caught up.
    apply(kubectl, service("marker", "marker"))
    settle("Endpoints marker", lambda: endpoints(kubectl, "marker"), lambda ep: ep is not None)
    settle("a slice for marker", lambda: slices(kubectl, "marker"), lambda items: items)
    assert endpoints(kubectl, "manual") is None
    assert slices(kubectl, "manual") == []


def test_user_endpoints_of_a_service_without_a_selector_are_mirrored_into_a_slice(kubectl):
    https = {"name": "https", "port": 443, "targetPort": 8443}
    apply(kubectl, service("external", ports=[https]),
          manual_endpoints("external", ["192.0.2.10", "192.0.2.11"], not_ready=["192.0.2.12"]))
    [s] = settle("a mirrored slice for external", lambda: slices(kubectl, "external"),
                 lambda items: set(sliced(items)) == {"192.0.2.10", "192.0.2.11", "192.0.2.12"})
    labels = s["metadata"]["labels"]
    assert (labels[SERVICE_NAME], labels[MANAGED_BY]) == ("external", "endpointslicemirroring-controller.k8s.io")
    assert s["addressType"] == "IPv4"
    assert s["ports"] == [{"name": "https", "port": 8443, "protocol": "TCP"}]
    assert {a: e["conditions"]["ready"] for a, e in sliced([s]).items()} == \
        {"192.0.2.10": True, "192.0.2.11": True, "192.0.2.12": False}
    # The user's Endpoints stay as written.
    ep = endpoints(kubectl, "external")
    assert (set(listed(ep)), set(listed(ep, "notReadyAddresses"))) == ({"192.0.2.10", "192.0.2.11"}, {"192.0.2.12"})


def test_updating_mirrored_endpoints_updates_the_slice(kubectl):
    apply(kubectl, service("moving", ports=[{"name": "https", "port": 443, "targetPort": 8443}]),
          manual_endpoints("moving", ["192.0.2.20"]))
    settle("a mirrored slice for moving", lambda: slices(kubectl, "moving"), lambda items: set(sliced(items)) == {"192.0.2.20"})
    apply(kubectl, manual_endpoints("moving", ["192.0.2.21", "192.0.2.22"], not_ready=["192.0.2.23"], port=9443))

    def moved(items):
        return (len(items) == 1 and {a: e["conditions"].get("ready") for a, e in sliced(items).items()}
                == {"192.0.2.21": True, "192.0.2.22": True, "192.0.2.23": False}
                and items[0].get("ports") == [{"name": "https", "port": 9443, "protocol": "TCP"}])

    [s] = settle("the mirrored slice to follow the Endpoints", lambda: slices(kubectl, "moving"), moved)
    assert s["metadata"]["labels"][MANAGED_BY] == "endpointslicemirroring-controller.k8s.io"


def live_pod_ips(kubectl, app):
    """The IPs of the app's running pods that are not being deleted."""
    items = json.loads(kubectl("get", "pods", "-l", f"app={app}", "-o", "json"))["items"]
    return {p["status"].get("podIP") for p in items
            if p["status"].get("phase") == "Running" and p["status"].get("podIP") and not p["metadata"].get("deletionTimestamp")}


def addresses_in(items):
    return [a for s in items for e in s.get("endpoints") or [] for a in e.get("addresses") or []]


def test_a_big_service_spreads_its_endpoints_over_slices_of_at_most_100(kubectl):
    apply(kubectl, deployment("big", 250), service("big", "big"))
    ips = settle("250 running pods", lambda: live_pod_ips(kubectl, "big"), lambda ips: len(ips) == 250, timeout=60)
    items = settle("the slices of big to hold the 250 pods", lambda: slices(kubectl, "big"),
                   lambda items: sorted(addresses_in(items)) == sorted(ips))
    assert len(items) == 3
    assert all(len(s["endpoints"]) <= 100 for s in items)
    assert all(e["conditions"]["ready"] for s in items for e in s["endpoints"])
    endpoints_with(kubectl, "big", ready=ips)


def test_scaling_down_shrinks_the_slices(kubectl):
    kubectl("scale", "deployment/big", "--replicas=40")
    ips = settle("40 running pods", lambda: live_pod_ips(kubectl, "big"), lambda ips: len(ips) == 40, timeout=60)
    items = settle("the slices of big to hold the 40 pods", lambda: slices(kubectl, "big"),
                   lambda items: sorted(addresses_in(items)) == sorted(ips))
    assert 1 <= len(items) <= 3
    assert all(len(s.get("endpoints") or []) <= 100 for s in items)
    endpoints_with(kubectl, "big", ready=ips)
    kubectl("delete", "deployment", "big")
