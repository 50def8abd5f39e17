//! Patches that need to know the types: strategic merge patch, and the type cursor it
//! walks objects with.

pub mod strategic;

use crate::schema::{Def, Shape, TypeModel};

/// Where a value sits in the type model while a patch walks it.
#[derive(Clone, Copy)]
pub enum Ty<'a> {
    /// An object of a known definition.
    Def(&'a Def),
    /// An object with arbitrary keys whose values have this shape.
    Map(&'a Shape),
    /// Nothing known: a scalar, free-form JSON, or a field outside the schema.
    Untyped,
}

impl<'a> Ty<'a> {
    pub fn of(model: &'a TypeModel, shape: &'a Shape) -> Ty<'a> {
        match shape {
            Shape::Def(name) => model.def(name).map_or(Ty::Untyped, Ty::Def),
            Shape::Map(values) => Ty::Map(values),
            Shape::List(_) | Shape::Scalar(_) => Ty::Untyped,
        }
    }
}
