//! What a simulated node is: its name, capacity, labels and taints, and its registration.

use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The field manager the simulator writes as.
pub const MANAGER: &str = "skiff-sim";
/// Where node Leases live, as in Kubernetes.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// How many nodes to simulate, and what each looks like.
#[derive(Clone, Debug)]
pub struct NodeTemplate {
    pub count: usize,
    /// Nodes are named `<prefix>-<index>`.
    pub prefix: String,
    pub cpu: String,
    pub memory: String,
    pub ephemeral_storage: String,
    pub pods: String,
    /// Extra labels on every node.
    pub labels: Vec<(String, String)>,
    pub taints: Vec<Taint>,
    /// Nodes are spread round-robin over this many zones (`topology.kubernetes.io/zone`
    /// `zone-<n>`); 0 leaves the label off.
    pub zones: usize,
    /// Writes in flight at once, when registering and heartbeating.
    pub concurrency: usize,
}

impl Default for NodeTemplate {
    fn default() -> Self {
        NodeTemplate {
            count: 1,
            prefix: "sim-node".into(),
            cpu: "32".into(),
            memory: "256Gi".into(),
            ephemeral_storage: "1Ti".into(),
            pods: "110".into(),
            labels: Vec::new(),
            taints: Vec::new(),
            zones: 0,
            concurrency: 64,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: String,
}

impl std::str::FromStr for Taint {
    type Err = String;

    /// `key=value:Effect` or `key:Effect`, as `kubectl taint` writes them.
    fn from_str(s: &str) -> Result<Taint, String> {
        let (kv, effect) =
            s.rsplit_once(':').ok_or_else(|| format!("taint {s:?} has no effect: write key=value:NoSchedule"))?;
        if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            return Err(format!("taint effect {effect:?} is not one of NoSchedule, PreferNoSchedule, NoExecute"));
        }
        let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
        Ok(Taint { key: key.into(), value: value.into(), effect: effect.into() })
    }
}

impl NodeTemplate {
    pub fn name(&self, index: usize) -> String {
        format!("{}-{index}", self.prefix)
    }

    /// The index of one of our nodes, from its name.
    pub fn index_of(&self, node: &str) -> Option<usize> {
        node.strip_prefix(&self.prefix)?.strip_prefix('-')?.parse().ok().filter(|i| *i < self.count)
    }

    fn object(&self, index: usize) -> Value {
        let name = self.name(index);
        let mut labels = json!({
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "type": "skiff-sim",
        });
        if self.zones > 0 {
            labels["topology.kubernetes.io/zone"] = json!(format!("zone-{}", index % self.zones));
        }
        for (k, v) in &self.labels {
            labels[k] = json!(v);
        }
        let taints: Vec<Value> =
            self.taints.iter().map(|t| json!({"key": t.key, "value": t.value, "effect": t.effect})).collect();
        let mut spec = json!({"podCIDR": pod_cidr(index), "podCIDRs": [pod_cidr(index)]});
        if !taints.is_empty() {
            spec["taints"] = json!(taints);
        }
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}, "spec": spec})
    }

    /// The status a healthy node reports, with its heartbeat at `now`.
    pub fn status(&self, index: usize, now: &str) -> Value {
        let resources = json!({
            "cpu": self.cpu, "memory": self.memory, "ephemeral-storage": self.ephemeral_storage, "pods": self.pods,
        });
        let condition = |type_: &str, status: &str, reason: &str, message: &str| {
            json!({"type": type_, "status": status, "reason": reason, "message": message,
                   "lastHeartbeatTime": now, "lastTransitionTime": now})
        };
        json!({"status": {
            "capacity": resources,
            "allocatable": resources,
            "phase": "Running",
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": node_ip(index)},
                {"type": "Hostname", "address": self.name(index)},
            ],
            "nodeInfo": {
                "machineID": format!("{index:032x}"), "systemUUID": format!("{index:032x}"), "bootID": format!("{index:032x}"),
                "kernelVersion": "6.1.0-sim", "osImage": "skiff simulated node", "containerRuntimeVersion": "skiff-sim://1.0",
                "kubeletVersion": "v1.37.0", "kubeProxyVersion": "v1.37.0", "operatingSystem": "linux", "architecture": "amd64",
            },
        }})
    }
}

/// A node's address: 10.128.0.0/9, one per node.
pub fn node_ip(index: usize) -> String {
    format!("10.{}.{}.{}", 128 + index / 65536 % 128, index / 256 % 256, index % 256)
}

/// A node's pod network: one /24 of 10.0.0.0/9 per node, as `--cluster-cidr` hands them out.
fn pod_cidr(index: usize) -> String {
    format!("10.{}.{}.0/24", index / 256 % 128, index % 256)
}

/// The address of the `n`th pod started on node `index`, inside the node's /24.
pub fn pod_ip(index: usize, n: usize) -> String {
    format!("10.{}.{}.{}", index / 256 % 128, index % 256, 2 + n % 250)
}

/// Creates (or takes over) every node and reports it Ready, many at a time.
pub async fn register(client: &kube::Client, template: &NodeTemplate) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let lease_ns = serde_json::from_value(json!({"metadata": {"name": LEASE_NAMESPACE}}))?;
    match namespaces.create(&PostParams::default(), &lease_ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let nodes: Api<Node> = Api::all(client.clone());
    let apply = PatchParams::apply(MANAGER).force();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    crate::for_each_node(template, 0..template.count, |i| {
        let (nodes, apply, now) = (&nodes, &apply, &now);
        async move {
            let name = template.name(i);
            nodes.patch(&name, apply, &Patch::Apply(template.object(i))).await?;
            nodes.patch_status(&name, &PatchParams::default(), &Patch::Merge(template.status(i, now))).await?;
            Ok(())
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taints_parse_as_kubectl_writes_them() {
        assert_eq!(
            "dedicated=gpu:NoSchedule".parse(),
            Ok(Taint { key: "dedicated".into(), value: "gpu".into(), effect: "NoSchedule".into() })
        );
        assert_eq!("spot:PreferNoSchedule".parse::<Taint>().unwrap().value, "");
        assert!("x=y".parse::<Taint>().is_err());
        assert!("x=y:Sometimes".parse::<Taint>().is_err());
    }

    #[test]
    fn names_and_addresses_are_per_node() {
        let t = NodeTemplate { count: 300, zones: 3, ..Default::default() };
        assert_eq!(t.index_of(&t.name(299)), Some(299));
        assert_eq!(t.index_of("sim-node-300"), None);
        assert_eq!(t.index_of("other-1"), None);
        assert_eq!(pod_cidr(257), "10.1.1.0/24");
        assert_eq!(pod_ip(257, 0), "10.1.1.2");
        assert_eq!(t.object(4)["metadata"]["labels"]["topology.kubernetes.io/zone"], "zone-1");
    }
}
