//! A kind's behaviour on create and update, written against its typed `k8s-openapi` struct,
//! and the type-erased form the API server calls with JSON values.

use crate::field_error::FieldError;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

/// Per-kind rules, in the spirit of Kubernetes' registry strategies: defaulting, the fields a
/// create may not set, and validation.
pub trait Strategy: Send + Sync + 'static {
    type Object: Serialize + DeserializeOwned + schemars::JsonSchema;

    /// Fills in defaults, as Kubernetes' defaulting functions do.
    fn apply_defaults(&self, _obj: &mut Self::Object) {}

    /// Sets what a new object starts with that its author does not choose (an initial status).
    fn prepare_create(&self, _obj: &mut Self::Object) {}

    /// Carries over from the old object what an update may not change (beyond the generic
    /// metadata and status rules).
    fn prepare_update(&self, _new: &mut Self::Object, _old: &Self::Object) {}

    fn validate(&self, _obj: &Self::Object) -> Vec<FieldError> {
        Vec::new()
    }

    /// Validation of an update: by default the new object alone; kinds with immutable fields
    /// compare with the old one.
    fn validate_update(&self, new: &Self::Object, _old: &Self::Object) -> Vec<FieldError> {
        self.validate(new)
    }
}

/// Why an object was not admitted.
#[derive(Debug)]
pub enum AdmitError {
    /// The body is not a valid object of this kind (a 400 BadRequest).
    BadRequest(String),
    /// The object breaks the kind's rules (a 422 Invalid).
    Invalid(Vec<FieldError>),
}

/// The type-erased strategy the API server uses.
pub trait Behaviour: Send + Sync {
    /// Decodes `value` as this kind, defaults it, applies create preparation when `old` is
    /// `None`, validates it, and returns it re-encoded. With `unknown`, the fields of `value`
    /// that the schema does not have are noted there as it is decoded, even if it is refused.
    fn admit(&self, value: Value, old: Option<&Value>, unknown: Option<&mut Vec<String>>) -> Result<Value, AdmitError>;

    /// The fields of `value` that this kind's schema does not have.
    fn unknown_fields(&self, value: &Value) -> Vec<String>;
}

/// Adapts a typed [`Strategy`] to [`Behaviour`].
pub struct Typed<S>(pub S);

impl<S: Strategy> Typed<S> {
    fn decode(value: Value, unknown: Option<&mut Vec<String>>) -> Result<S::Object, AdmitError> {
        match unknown {
            Some(unknown) => crate::unknown_fields::decode_noting_unknown(value, unknown),
            None => serde_json::from_value(value),
        }
        .map_err(|e| AdmitError::BadRequest(e.to_string()))
    }
}

impl<S: Strategy> Behaviour for Typed<S> {
    fn admit(&self, value: Value, old: Option<&Value>, unknown: Option<&mut Vec<String>>) -> Result<Value, AdmitError> {
        let mut obj = Self::decode(value, unknown)?;
        self.0.apply_defaults(&mut obj);
        let errors = match old {
            None => {
                self.0.prepare_create(&mut obj);
                self.0.validate(&obj)
            }
            Some(old) => {
                // Decoded from the borrowed value: no copy of the stored object.
                let old = S::Object::deserialize(old).map_err(|e| AdmitError::BadRequest(e.to_string()))?;
                self.0.prepare_update(&mut obj, &old);
                self.0.validate_update(&obj, &old)
            }
        };
        if !errors.is_empty() {
            return Err(AdmitError::Invalid(errors));
        }
        serde_json::to_value(&obj).map_err(|e| AdmitError::BadRequest(e.to_string()))
    }

    fn unknown_fields(&self, value: &Value) -> Vec<String> {
        crate::unknown_fields::unknown::<S::Object>(value)
    }
}

/// A kind with no rules beyond its schema.
pub struct Plain<T>(std::marker::PhantomData<fn() -> T>);

impl<T> Default for Plain<T> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<T: Serialize + DeserializeOwned + schemars::JsonSchema + 'static> Strategy for Plain<T> {
    type Object = T;
}
