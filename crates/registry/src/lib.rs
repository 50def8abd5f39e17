//! Per-kind behaviour of the Kubernetes API: which resources exist, how their objects are
//! named, defaulted and validated, and what create and update do with their metadata.
//! The API server is generic; everything particular to one kind lives here, one file a kind.

pub mod apply;
mod catalog;
pub mod conversion;
pub mod field_error;
pub mod labels;
pub mod names;
pub mod object_meta;
pub mod patch;
pub mod pod_spec;
pub mod protobuf;
mod resource;
pub mod schema;
pub mod strategy;
pub mod table;
pub mod unknown_fields;
mod workload;

mod autoscaler;
mod config_data;
mod cronjob;
mod daemonset;
mod deployment;
mod disruption_budget;
mod job;
mod job_policies;
mod limit_range;
mod namespace;
mod pod;
mod pod_template;
mod replicaset;
mod replication_controller;
mod service;
mod statefulset;
mod volumes;

pub use field_error::FieldError;
pub use resource::{ResourceInfo, Verbs};
pub use service::NODE_PORT_RANGE;
pub use strategy::AdmitError;

use std::collections::HashMap;

/// Sets an optional field to a default when the author left it out.
pub(crate) fn set_default<T>(field: &mut Option<T>, value: T) {
    if field.is_none() {
        *field = Some(value);
    }
}

/// The catalog, indexed the ways the API server looks resources up.
pub struct Registry {
    resources: Vec<ResourceInfo>,
    by_path: HashMap<(&'static str, &'static str, &'static str), usize>,
}

impl Registry {
    pub fn builtin() -> Self {
        let resources = catalog::builtin();
        let by_path = resources.iter().enumerate().map(|(i, r)| ((r.group, r.version, r.plural), i)).collect();
        Registry { resources, by_path }
    }

    /// The resource served at `/api(s)/<group>/<version>/<plural>`.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceInfo> {
        self.by_path.get(&(group, version, plural)).map(|&i| &self.resources[i])
    }

    /// The OpenAPI definition of objects of `api_version` and `kind` (`apps/v1`, `Deployment`).
    pub fn definition_of(&self, api_version: &str, kind: &str) -> Option<String> {
        if kind == "DeleteOptions" {
            return Some("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions".into());
        }
        self.resources.iter().find(|r| r.kind == kind && r.api_version() == api_version).map(|r| r.definition.clone())
    }

    pub fn all(&self) -> &[ResourceInfo] {
        &self.resources
    }

    /// The groups and their versions, in discovery order; the first version is preferred.
    pub fn groups(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        let mut groups: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
        for r in &self.resources {
            match groups.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) if !versions.contains(&r.version) => versions.push(r.version),
                Some(_) => {}
                None => groups.push((r.group, vec![r.version])),
            }
        }
        groups
    }
}
