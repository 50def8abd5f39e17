//! What a node may do with the objects its role lets it write, as kube-apiserver's
//! NodeRestriction admission keeps it: only the pods bound to it (their status, their deletion,
//! and the mirror pods of its static pods), and only its own Node and Lease when it creates
//! them (the authorizer holds it to them when the request names them). Not yet checked, as
//! NodeRestriction does: a node changing its own taints or restricted labels, and a mirror pod's
//! owner reference and the Secrets, ConfigMaps and claims it names.

use crate::authn::User;
use crate::authz::NODE_LEASE_NAMESPACE;
use crate::error::{ApiError, ApiResult};
use registry::ResourceInfo;
use serde_json::Value;

/// The annotation that marks a pod as the mirror of a static pod.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// What a write does to an object: make it, change its status, or delete it.
pub enum Write<'a> {
    Create(&'a Value),
    UpdateStatus { current: &'a Value },
    Delete { current: &'a Value },
}

/// Refuses a node's write to an object that is not its own; every other user's writes pass.
pub fn admit(user: &User, info: &ResourceInfo, write: Write) -> ApiResult<()> {
    let Some(node) = user.node_name().filter(|_| !user.is_master()) else { return Ok(()) };
    let str_at = |obj: &Value, pointer: &str| obj.pointer(pointer).and_then(Value::as_str).unwrap_or("").to_owned();
    let name = |obj: &Value| str_at(obj, "/metadata/name");
    let bound = |obj: &Value| str_at(obj, "/spec/nodeName") == node;
    let refuse = |obj: &Value, why: String| {
        Err(ApiError::forbidden(format!("{} \"{}\" is forbidden: {why}", info.plural, name(obj))))
    };
    match (info.group, info.plural, write) {
        ("", "pods", Write::Create(pod)) => {
            if pod.pointer(&format!("/metadata/annotations/{}", MIRROR_ANNOTATION.replace('/', "~1"))).is_none() {
                return refuse(
                    pod,
                    format!(
                        "pod does not have \"{MIRROR_ANNOTATION}\" annotation, node \"{node}\" can only create mirror pods"
                    ),
                );
            }
            if !bound(pod) {
                return refuse(pod, format!("node \"{node}\" can only create pods with spec.nodeName set to itself"));
            }
        }
        ("", "pods", Write::UpdateStatus { current }) if !bound(current) => {
            return refuse(
                current,
                format!("node \"{node}\" can only update pod status for pods with spec.nodeName set to itself"),
            );
        }
        ("", "pods", Write::Delete { current }) if !bound(current) => {
            return refuse(current, format!("node \"{node}\" can only delete pods with spec.nodeName set to itself"));
        }
        ("", "nodes", Write::Create(obj)) if name(obj) != node => {
            return refuse(obj, format!("node \"{node}\" is not allowed to modify node \"{}\"", name(obj)));
        }
        ("coordination.k8s.io", "leases", Write::Create(obj))
            if str_at(obj, "/metadata/namespace") != NODE_LEASE_NAMESPACE || name(obj) != node =>
        {
            return refuse(obj, format!("node \"{node}\" can only create its own Lease in {NODE_LEASE_NAMESPACE}"));
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn admitted(user: &User, group: &str, version: &str, plural: &str, write: Write) -> bool {
        let registry = registry::Registry::builtin();
        admit(user, registry.get(group, version, plural).unwrap(), write).is_ok()
    }

    fn pod(node: &str, mirror: bool) -> Value {
        let annotations = if mirror { json!({MIRROR_ANNOTATION: "hash"}) } else { json!({}) };
        json!({"metadata": {"name": "web", "namespace": "default", "annotations": annotations},
               "spec": {"nodeName": node}})
    }

    #[test]
    fn a_node_writes_only_the_pods_bound_to_it() {
        let n1 = User::node("n1");
        let (mine, theirs) = (pod("n1", false), pod("n2", false));
        assert!(admitted(&n1, "", "v1", "pods", Write::UpdateStatus { current: &mine }));
        assert!(admitted(&n1, "", "v1", "pods", Write::Delete { current: &mine }));
        assert!(!admitted(&n1, "", "v1", "pods", Write::UpdateStatus { current: &theirs }));
        assert!(!admitted(&n1, "", "v1", "pods", Write::Delete { current: &theirs }));
        assert!(admitted(&n1, "", "v1", "pods", Write::Create(&pod("n1", true))));
        assert!(!admitted(&n1, "", "v1", "pods", Write::Create(&pod("n2", true))));
        assert!(!admitted(&n1, "", "v1", "pods", Write::Create(&mine)));
        // Others are not held to it.
        let admin = User { name: "admin".into(), uid: String::new(), groups: vec!["system:masters".into()] };
        assert!(admitted(&admin, "", "v1", "pods", Write::Delete { current: &theirs }));
    }

    #[test]
    fn a_node_creates_only_its_own_node_and_lease() {
        let n1 = User::node("n1");
        let named = |name: &str, namespace: &str| json!({"metadata": {"name": name, "namespace": namespace}});
        assert!(admitted(&n1, "", "v1", "nodes", Write::Create(&named("n1", ""))));
        assert!(!admitted(&n1, "", "v1", "nodes", Write::Create(&named("n2", ""))));
        let lease = |name: &str, namespace: &str| {
            admitted(&n1, "coordination.k8s.io", "v1", "leases", Write::Create(&named(name, namespace)))
        };
        assert!(lease("n1", "kube-node-lease"));
        assert!(!lease("n2", "kube-node-lease"));
        assert!(!lease("n1", "kube-system"));
    }
}
