//! The roles kube-apiserver's RBAC binds at its first start, as fixed tables: cluster-admin
//! for `system:masters`, system:node for the nodes (`system:node:NAME` in `system:nodes`),
//! and system:discovery and system:basic-user for every signed-in user.
//!
//! A node may change only its own Node and its own Lease in kube-node-lease, as
//! kube-apiserver's NodeRestriction admission keeps it to them, so that one node's credentials
//! cannot take over another's.

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
/// volumes and environment read (Secrets, ConfigMaps, claims), and events about them.
const NODE: &[ResourceRule] = &[
    ResourceRule { verbs: &["create"], groups: &["authentication.k8s.io"], resources: &["tokenreviews"] },
    ResourceRule {
        verbs: &["create"],
        groups: &["authorization.k8s.io"],
        resources: &["subjectaccessreviews", "localsubjectaccessreviews"],
    },
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
    ResourceRule { verbs: &["create"], groups: &[""], resources: &["pods/eviction"] },
    ResourceRule { verbs: READ, groups: &[""], resources: &["secrets", "configmaps"] },
    ResourceRule { verbs: &["get"], groups: &[""], resources: &["persistentvolumeclaims", "persistentvolumes"] },
    ResourceRule { verbs: &["get", "update", "patch"], groups: &[""], resources: &["persistentvolumeclaims/status"] },
    ResourceRule { verbs: &["create"], groups: &[""], resources: &["serviceaccounts/token"] },
    ResourceRule {
        verbs: &["create", "get", "list", "watch"],
        groups: &["certificates.k8s.io"],
        resources: &["certificatesigningrequests"],
    },
    ResourceRule {
        verbs: &["get", "create", "update", "patch", "delete"],
        groups: &["coordination.k8s.io"],
        resources: &["leases"],
    },
    ResourceRule { verbs: &["get"], groups: &["storage.k8s.io"], resources: &["volumeattachments"] },
    ResourceRule { verbs: READ, groups: &["storage.k8s.io"], resources: &["csidrivers"] },
    ResourceRule {
        verbs: &["get", "create", "update", "patch", "delete"],
        groups: &["storage.k8s.io"],
        resources: &["csinodes"],
    },
    ResourceRule { verbs: READ, groups: &["node.k8s.io"], resources: &["runtimeclasses"] },
];

const NODES_GROUP: &str = "system:nodes";
const NODE_USER_PREFIX: &str = "system:node:";
/// Where each node's heartbeat Lease lives, named after the node.
pub(crate) const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// The node a user is, if it is one: named `system:node:NAME` and in the nodes group.
pub(crate) fn node_name(user: &User) -> Option<&str> {
    let name = user.name.strip_prefix(NODE_USER_PREFIX)?;
    (!name.is_empty() && user.groups.iter().any(|g| g == NODES_GROUP)).then_some(name)
}

/// The name of another node's own object that the request changes, if it changes one.
fn another_nodes_object<'r>(node: &str, r: &'r ResourceRequest) -> Option<&'r str> {
    let reads = matches!(r.verb, "get" | "list" | "watch");
    let own_kind = (r.group.is_empty() && r.resource == "nodes")
        || (r.group == "coordination.k8s.io"
            && r.resource == "leases"
            && r.namespace.as_deref() == Some(NODE_LEASE_NAMESPACE));
    let name = r.name.as_deref()?;
    (!reads && own_kind && name != node).then_some(name)
}

pub struct BuiltinRoles;

impl Authorizer for BuiltinRoles {
    fn rules(&self, user: &User) -> Rules {
        let mut rules = Rules::default();
        if user.is_master() {
            rules.resource.extend(CLUSTER_ADMIN);
            rules.non_resource.extend(CLUSTER_ADMIN_PATHS);
        }
        if node_name(user).is_some() {
            rules.resource.extend(NODE);
        }
        if !user.is_anonymous() {
            rules.resource.extend(BASIC_USER);
            rules.non_resource.extend(DISCOVERY_PATHS);
        }
        rules
    }

    fn authorize(&self, user: &User, request: &Request) -> Decision {
        if !user.is_master()
            && let (Some(node), Request::Resource(r)) = (node_name(user), request)
            && let Some(other) = another_nodes_object(node, r)
        {
            return Decision::Deny(format!("node \"{node}\" is not allowed to modify the {} \"{other}\"", r.resource));
        }
        if self.rules(user).allow(request) { Decision::Allow } else { Decision::Deny(denial(user, request)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let node = user("system:node:n1", &[NODES_GROUP, "system:authenticated"]);
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
        let unnamed = user("jane", &[NODES_GROUP, "system:authenticated"]);
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
