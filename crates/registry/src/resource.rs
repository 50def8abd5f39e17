//! What the API server needs to know to serve one resource at one version.

use crate::conversion::Conversion;
use crate::names::NameRule;
use crate::strategy::Behaviour;

/// Which verbs a resource serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbs {
    /// get, list, watch, create, update, patch, delete, deletecollection.
    All,
    /// Only create: reviews, which are answered and never stored.
    CreateOnly,
}

impl Verbs {
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Verbs::All => &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            Verbs::CreateOnly => &["create"],
        }
    }
}

pub struct ResourceInfo {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Has a `status` subresource: the main resource ignores status changes and `/status`
    /// changes nothing else.
    pub status: bool,
    /// Has a `scale` subresource (autoscaling/v1 Scale over spec.replicas).
    pub scale: bool,
    /// `metadata.generation` is kept and bumped on spec changes.
    pub generation: bool,
    pub verbs: Verbs,
    /// Subresources served by other parts (pods/log, pods/exec, ...), listed in discovery.
    pub connect_subresources: &'static [&'static str],
    /// The warning Kubernetes sends with every request to a deprecated resource.
    pub deprecation: Option<&'static str>,
    /// Field selectors beyond metadata.name and metadata.namespace: (selector, JSON path).
    pub field_selectors: &'static [(&'static str, &'static str)],
    pub name_rule: NameRule,
    /// Where objects live in the store: `<group or core>/<plural>`. Versions of one resource
    /// (autoscaling v1 and v2) share it.
    pub storage: String,
    /// How objects of this version are written to and read from storage, when the stored
    /// form is another version's.
    pub conversion: Option<Conversion>,
    /// The OpenAPI definition of this version's objects (`io.k8s.api.core.v1.Pod`).
    pub definition: String,
    /// Adds the definition, and every one it reaches, to an OpenAPI schema generator.
    pub schema: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
    pub behaviour: Box<dyn Behaviour>,
}

impl ResourceInfo {
    /// `v1` for the core group, else `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }
}
