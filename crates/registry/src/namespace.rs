use crate::strategy::Strategy;
use k8s_openapi::api::core::v1::{Namespace, NamespaceSpec, NamespaceStatus};

pub struct NamespaceStrategy;

impl Strategy for NamespaceStrategy {
    type Object = Namespace;

    /// Every namespace carries its name as the `kubernetes.io/metadata.name` label, so that
    /// selectors (network policies, webhooks) can pick namespaces by name.
    fn apply_defaults(&self, ns: &mut Namespace) {
        if let Some(name) = ns.metadata.name.clone() {
            ns.metadata.labels.get_or_insert_with(Default::default).insert("kubernetes.io/metadata.name".into(), name);
        }
    }

    /// New namespaces are Active and carry the `kubernetes` finalizer, which the namespace
    /// controller removes once everything in the namespace is gone.
    fn prepare_create(&self, ns: &mut Namespace) {
        ns.spec = Some(NamespaceSpec { finalizers: Some(vec!["kubernetes".into()]) });
        ns.status = Some(NamespaceStatus { phase: Some("Active".into()), ..Default::default() });
    }

    /// Only the `finalize` subresource changes spec.finalizers.
    fn prepare_update(&self, new: &mut Namespace, old: &Namespace) {
        new.spec = old.spec.clone();
    }
}
