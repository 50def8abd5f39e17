"""A user applies one multi-document YAML describing a small application in a new
namespace, then reads every object back and finds Kubernetes' defaults filled in."""

import ipaddress
import json
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest

# The API server's behaviour alone: no controllers, so that these tests see
# resourceVersions and workloads as the API server alone leaves them.
SKIFF_ARGS = ["--disable-controller-manager"]

APP_YAML = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: shop
  labels: {app: web}
data:
  greeting: hello
  color: blue
---
apiVersion: v1
kind: Secret
metadata:
  name: web-secret
  namespace: shop
type: Opaque
stringData:
  password: s3cret
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web-nodeport
  namespace: shop
  labels: {app: web}
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - port: 8080
    targetPort: 80
---
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  namespace: shop
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: busybox:latest
        command: ["sh", "-c", "echo migrated"]
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
  namespace: shop
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: report
            image: busybox
            command: ["echo", "report"]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: config-reader
  namespace: shop
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: config-reader
  namespace: shop
subjects:
- kind: User
  name: alice
  apiGroup: rbac.authorization.k8s.io
roleRef:
  kind: Role
  name: config-reader
  apiGroup: rbac.authorization.k8s.io
"""

# (kubectl resource, name, kind) of everything in APP_YAML but the namespace.
OBJECTS = [
    ("configmap", "web-config", "ConfigMap"),
    ("secret", "web-secret", "Secret"),
    ("deployment.apps", "web", "Deployment"),
    ("service", "web", "Service"),
    ("service", "web-nodeport", "Service"),
    ("job.batch", "migrate", "Job"),
    ("cronjob.batch", "nightly", "CronJob"),
    ("ingress.networking.k8s.io", "web", "Ingress"),
    ("role.rbac.authorization.k8s.io", "config-reader", "Role"),
    ("rolebinding.rbac.authorization.k8s.io", "config-reader", "RoleBinding"),
]


@pytest.fixture(scope="module")
def applied(skiff, tmp_path_factory):
    path = tmp_path_factory.mktemp("manifests") / "app.yaml"
    path.write_text(APP_YAML)
    before = datetime.now(timezone.utc).replace(microsecond=0)
    out = skiff.kubectl("apply", "-f", str(path))
    return out, before


def get_json(kubectl, resource, name, ns="shop"):
    args = ["get", f"{resource}/{name}", "-o", "json"]
    if ns:
        args += ["-n", ns]
    return json.loads(kubectl(*args))


def test_apply_reports_every_object_created(applied):
    out, _ = applied
    lines = out.strip().splitlines()
    expected = ["namespace/shop created"] + [f"{res}/{name} created" for res, name, _ in OBJECTS]
    assert lines == expected


def test_every_object_can_be_read_back(applied, kubectl):
    for resource, name, kind in OBJECTS:
        obj = get_json(kubectl, resource, name)
        assert obj["kind"] == kind
        assert obj["metadata"]["name"] == name
        assert obj["metadata"]["namespace"] == "shop"
        # kubectl apply records what it applied.
        last = json.loads(obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
        assert last["metadata"]["name"] == name
    # The table form of `kubectl get` works for every kind too.
    for resource, name, _ in OBJECTS:
        lines = kubectl("get", resource, name, "-n", "shop").strip().splitlines()
        assert lines[0].split()[0] == "NAME", lines
        assert [l.split()[0] for l in lines[1:]] == [name], lines
    cm = get_json(kubectl, "configmap", "web-config")
    assert cm["data"] == {"greeting": "hello", "color": "blue"}
    secret = get_json(kubectl, "secret", "web-secret")
    # stringData is write-only: it is merged into data, base64-encoded.
    assert secret["data"] == {"password": "czNjcmV0"}
    assert "stringData" not in secret
    assert secret["type"] == "Opaque"
    binding = get_json(kubectl, "rolebinding", "config-reader")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "config-reader"}
    assert binding["subjects"][0]["name"] == "alice"
    ing = get_json(kubectl, "ingress", "web")
    assert ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"] == {"name": "web", "port": {"number": 80}}


def test_namespace_is_active_and_labelled_with_its_name(applied, kubectl):
    ns = get_json(kubectl, "namespace", "shop", ns=None)
    assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == "shop"
    assert ns["status"]["phase"] == "Active"
    assert ns["spec"]["finalizers"] == ["kubernetes"]


def test_server_sets_object_metadata(applied, kubectl):
    _, before = applied
    uids, rvs = set(), []
    for resource, name, _ in OBJECTS:
        meta = get_json(kubectl, resource, name)["metadata"]
        uuid.UUID(meta["uid"])  # a well-formed UUID
        uids.add(meta["uid"])
        created = datetime.strptime(meta["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        assert before - timedelta(seconds=2) <= created <= datetime.now(timezone.utc) + timedelta(seconds=2)
        assert re.fullmatch(r"[1-9][0-9]*", meta["resourceVersion"]), meta["resourceVersion"]
        rvs.append(int(meta["resourceVersion"]))
    assert len(uids) == len(OBJECTS), "every object has its own uid"
    # kubectl applies the documents in order; each write gets a later resourceVersion.
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs), rvs
    # Kinds with a spec get metadata.generation 1 on create; ConfigMaps do not.
    for resource, name in [("deployment", "web"), ("job", "migrate"), ("cronjob", "nightly"), ("ingress", "web")]:
        assert get_json(kubectl, resource, name)["metadata"]["generation"] == 1, resource
    assert "generation" not in get_json(kubectl, "configmap", "web-config")["metadata"]


def test_deployment_defaults(applied, kubectl):
    spec = get_json(kubectl, "deployment", "web")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Always"
    assert pod["dnsPolicy"] == "ClusterFirst"
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pod["schedulerName"] == "default-scheduler"
    container = pod["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"  # tagged, not :latest
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "File"
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]


def test_job_defaults_and_generated_selector(applied, kubectl):
    job = get_json(kubectl, "job", "migrate")
    spec = job["spec"]
    assert spec["completions"] == 1
    assert spec["parallelism"] == 1
    assert spec["backoffLimit"] == 6
    assert spec["completionMode"] == "NonIndexed"
    uid = job["metadata"]["uid"]
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    labels = spec["template"]["metadata"]["labels"]
    assert labels["batch.kubernetes.io/controller-uid"] == uid
    assert labels["batch.kubernetes.io/job-name"] == "migrate"
    assert labels["controller-uid"] == uid
    assert labels["job-name"] == "migrate"
    # :latest is always pulled.
    assert spec["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Always"


def test_cronjob_defaults(applied, kubectl):
    spec = get_json(kubectl, "cronjob", "nightly")["spec"]
    assert spec["concurrencyPolicy"] == "Allow"
    assert spec["suspend"] is False
    assert spec["successfulJobsHistoryLimit"] == 3
    assert spec["failedJobsHistoryLimit"] == 1
    # An untagged image means :latest, so Always.
    container = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "Always"


def test_cluster_ip_service_gets_an_ip_from_the_service_cidr(applied, kubectl):
    spec = get_json(kubectl, "service", "web")["spec"]
    assert spec["type"] == "ClusterIP"
    ip = ipaddress.ip_address(spec["clusterIP"])
    assert ip in ipaddress.ip_network("10.43.0.0/16")
    assert ip != ipaddress.ip_address("10.43.0.1"), "10.43.0.1 belongs to default/kubernetes"
    assert spec["clusterIPs"] == [spec["clusterIP"]]
    assert spec["sessionAffinity"] == "None"
    assert spec["ipFamilies"] == ["IPv4"]
    assert spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert "nodePort" not in spec["ports"][0]


def test_node_port_service_gets_a_node_port_in_range(applied, kubectl):
    spec = get_json(kubectl, "service", "web-nodeport")["spec"]
    other = get_json(kubectl, "service", "web")["spec"]
    assert spec["type"] == "NodePort"
    assert ipaddress.ip_address(spec["clusterIP"]) in ipaddress.ip_network("10.43.0.0/16")
    assert spec["clusterIP"] != other["clusterIP"]
    port = spec["ports"][0]
    assert 30000 <= port["nodePort"] <= 32767
    assert port["port"] == 8080 and port["targetPort"] == 80 and port["protocol"] == "TCP"
    assert spec["externalTrafficPolicy"] == "Cluster"


def test_default_kubernetes_service_exists(applied, kubectl):
    svc = get_json(kubectl, "service", "kubernetes", ns="default")
    assert svc["spec"]["clusterIP"] == "10.43.0.1"
    assert svc["spec"]["ports"][0]["port"] == 443
