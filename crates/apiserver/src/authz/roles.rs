//! The roles kube-apiserver's RBAC binds at its first start, as fixed tables: cluster-admin
//! for `system:masters`, system:node for the nodes (`system:node:NAME` in `system:nodes`),
//! and system:discovery and system:basic-user for every signed-in user.
//!
//! A node may change only its own Node, and touch no Lease but its own in kube-node-lease (as
//! kube-apiserver's Node authorizer and NodeRestriction admission keep it), so that one node's
//! credentials can take over neither another node nor the control plane's leader elections.

use super::{Authorizer, Decision, NonResourceRule, Request, ResourceRule, Rules, denial};
use crate::authn::User;
use crate::request_info::ResourceRequest;

const CLUSTER_ADMIN: &[ResourceRule] = &[ResourceRule { verbs: &["*"], groups: &["*"], resources: &["*"] }];
const CLUSTER_ADMIN_PATHS: &[NonResourceRule] = &[NonResourceRule { verbs: &["*"], urls: &["*"] }];

const BASIC_USER: &[ResourceRule] = &[
    ResourceRule {
        verbs: &["create"],
        groups: &["authorization.k8s.io"],
        resources: &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
    },
    ResourceRule { verbs: &["create"], groups: &["authentication.k8s.io"], resources: &["selfsubjectreviews"] },
];
const DISCOVERY_PATHS: &[NonResourceRule] = &[NonResourceRule {
    verbs: &["get"],
    urls: &[
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/openapi",
        "/openapi/*",
        "/version",
        "/version/",
        "/healthz",
        "/livez",
        "/readyz",
    ],
}];

const READ: &[&str] = &["get", "list", "watch"];

/// What a kubelet needs: its Node and Lease, the pods bound to it and their status, what their
/// volumes and environment read (Secrets, ConfigMaps, claims), and events about them. This is
/// Kubernetes' `system:node` role without what skiff does not serve or its kubelet does not
/// use (TokenRequest, reviews, CSRs, CSI objects, evictions), and with Secrets and ConfigMaps
/// read one by one, not listed.
const NODE: &[ResourceRule] = &[
    ResourceRule { verbs: READ, groups: &[""], resources: &["services"] },
    ResourceRule {
        verbs: &["create", "get", "list", "watch", "update", "patch"],
        groups: &[""],
        resources: &["nodes"],
    },
    ResourceRule { verbs: &["update", "patch"], groups: &[""], resources: &["nodes/status"] },
    ResourceRule { verbs: &["create", "update", "patch"], groups: &["", "events.k8s.io"], resources: &["events"] },
    ResourceRule { verbs: &["get", "list", "watch", "create", "delete"], groups: &[""], resources: &["pods"] },
    ResourceRule { verbs: &["update", "patch"], groups: &[""], resources: &["pods/status"] },
    ResourceRule {
        verbs: &["get"],
        groups: &[""],
        resources: &["secrets", "configmaps", "persistentvolumeclaims", "persistentvolumes"],
    },
    ResourceRule {
        verbs: &["get", "create", "update", "patch", "delete"],
        groups: &["coordination.k8s.io"],
        resources: &["leases"],
    },
    ResourceRule { verbs: READ, groups: &["node.k8s.io"], resources: &["runtimeclasses"] },
];

/// Where each node's heartbeat Lease lives, named after the node.
pub(crate) const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Why a node may not make this request whatever its role says: it touches another node's Node
/// or Lease (any Lease but its own, as kube-apiserver's Node authorizer keeps it).
fn outside_its_own(node: &str, r: &ResourceRequest) -> Option<String> {
    let reads = matches!(r.verb, "get" | "list" | "watch");
    let name = r.name.as_deref();
    if r.group.is_empty() && r.resource == "nodes" && !reads && name.is_some_and(|n| n != node) {
        return Some(format!("node \"{node}\" is not allowed to modify node \"{}\"", name.unwrap_or_default()));
    }
    let lease = r.group == "coordination.k8s.io" && r.resource == "leases";
    let own_lease = r.namespace.as_deref() == Some(NODE_LEASE_NAMESPACE) && (r.verb == "create" || name == Some(node));
    (lease && !own_lease).then(|| {
        format!(
            "node \"{node}\" can only access the node lease with its own name in the \"{NODE_LEASE_NAMESPACE}\" namespace"
        )
    })
}

pub struct BuiltinRoles;

impl Authorizer for BuiltinRoles {
    fn rules(&self, user: &User) -> Rules {
        let mut rules = Rules::default();
        if user.is_master() {
            rules.resource.extend(CLUSTER_ADMIN);
            rules.non_resource.extend(CLUSTER_ADMIN_PATHS);
        }
        if user.node_name().is_some() {
            rules.resource.extend(NODE);
        }
        if !user.is_anonymous() {
            rules.resource.extend(BASIC_USER);
            rules.non_resource.extend(DISCOVERY_PATHS);
        }
        rules
    }

    fn authorize(&self, user: &User, request: &Request) -> Decision {
        if user.is_master() {
            return Decision::Allow;
        }
        if let (Some(node), Request::Resource(r)) = (user.node_name(), request)
            && let Some(why) = outside_its_own(node, r)
        {
            return Decision::Deny(why);
        }
        if self.rules(user).allow(request) { Decision::Allow } else { Decision::Deny(denial(user, request)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::NODES;

    fn user(name: &str, groups: &[&str]) -> User {
        User { name: name.into(), uid: String::new(), groups: groups.iter().map(|g| g.to_string()).collect() }
    }

    fn request(
        verb: &'static str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> ResourceRequest {
        let (resource, subresource) = match resource.split_once('/') {
            Some((resource, sub)) => (resource.to_string(), Some(sub.to_string())),
            None => (resource.to_string(), None),
        };
        ResourceRequest {
            verb,
            group: group.into(),
            version: "v1".into(),
            namespace: namespace.map(String::from),
            resource,
            name: name.map(String::from),
            subresource,
        }
    }

    fn allowed(user: &User, r: &ResourceRequest) -> bool {
        BuiltinRoles.authorize(user, &Request::Resource(r)) == Decision::Allow
    }

    #[test]
    fn a_node_runs_its_pods_and_changes_only_its_own_node_and_lease() {
        let node = user("system:node:n1", &[NODES, "system:authenticated"]);
        assert!(allowed(&node, &request("watch", "", "pods", None, None)));
        assert!(allowed(&node, &request("patch", "", "pods/status", Some("default"), Some("web"))));
        assert!(allowed(&node, &request("get", "", "secrets", Some("default"), Some("pull"))));
        assert!(allowed(&node, &request("create", "", "events", Some("default"), None)));
        assert!(allowed(&node, &request("patch", "", "nodes", None, Some("n1"))));
        assert!(allowed(&node, &request("patch", "", "nodes/status", None, Some("n1"))));
        assert!(allowed(&node, &request("get", "", "nodes", None, Some("n2"))));
        assert!(allowed(
            &node,
            &request("patch", "coordination.k8s.io", "leases", Some("kube-node-lease"), Some("n1"))
        ));

        assert!(!allowed(&node, &request("patch", "", "nodes/status", None, Some("n2"))));
        assert!(!allowed(
            &node,
            &request("patch", "coordination.k8s.io", "leases", Some("kube-node-lease"), Some("n2"))
        ));
        assert!(!allowed(&node, &request("delete", "", "nodes", None, Some("n1"))));
        assert!(!allowed(&node, &request("create", "", "namespaces", None, None)));
        assert!(!allowed(&node, &request("update", "", "secrets", Some("default"), Some("pull"))));
        assert!(!allowed(&node, &request("create", "apps", "deployments", Some("default"), None)));
        assert!(!allowed(&node, &request("get", "", "pods/exec", Some("default"), Some("web"))));
    }

    #[test]
    fn the_node_role_needs_both_the_name_and_the_group() {
        let impostor = user("system:node:n1", &["system:authenticated"]);
        assert!(!allowed(&impostor, &request("watch", "", "pods", None, None)));
        let unnamed = user("jane", &[NODES, "system:authenticated"]);
        assert!(!allowed(&unnamed, &request("watch", "", "pods", None, None)));
    }

    #[test]
    fn masters_may_do_anything_and_other_users_only_discover_and_ask() {
        let admin = user("admin", &["system:masters"]);
        assert!(allowed(&admin, &request("delete", "", "nodes", None, Some("n2"))));
        let jane = user("jane", &["system:authenticated"]);
        assert!(allowed(&jane, &request("create", "authorization.k8s.io", "selfsubjectaccessreviews", None, None)));
        assert!(!allowed(&jane, &request("list", "", "pods", Some("default"), None)));
        let discovery = Request::NonResource { verb: "get", path: "/apis/apps/v1" };
        assert_eq!(BuiltinRoles.authorize(&jane, &discovery), Decision::Allow);
        let metrics = Request::NonResource { verb: "get", path: "/metrics" };
        assert_eq!(
            BuiltinRoles.authorize(&jane, &metrics),
            Decision::Deny("forbidden: User \"jane\" cannot get path \"/metrics\"".into())
        );
    }
}
