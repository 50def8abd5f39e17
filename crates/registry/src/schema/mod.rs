//! The schemas of the built-in types, built once on first use: the OpenAPI definitions the
//! API server publishes, and the compact [`TypeModel`] that patching and decoding walk.

pub mod definitions;
pub mod facts;
pub mod model;

pub use model::{Def, Field, Scalar, Shape, TypeModel};

use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Every definition of the built-in resources, with the `x-kubernetes-*` extensions. Built on
/// each call: the OpenAPI documents are made from it once and cached as bytes.
pub fn definitions() -> BTreeMap<String, Value> {
    definitions::build(&crate::catalog::builtin(), &facts::parse())
}

/// The type model, built on first use and kept.
pub fn model() -> &'static TypeModel {
    static MODEL: OnceLock<TypeModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        let facts = facts::parse();
        TypeModel::build(&definitions::build(&crate::catalog::builtin(), &facts), &facts)
    })
}
