//! ConfigMaps and Secrets: keys must be usable as file names, and the whole payload fits in
//! 1 MiB. A Secret's `stringData` is folded into `data` on write, as Kubernetes does.

use crate::field_error::{FieldError, FieldErrorType, Path};
use crate::set_default;
use crate::strategy::Strategy;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};

const MAX_SIZE: usize = 1024 * 1024;

fn key_errors<'a>(keys: impl Iterator<Item = &'a String>, path: &Path, errs: &mut Vec<FieldError>) {
    for key in keys {
        let ok = !key.is_empty()
            && key.len() <= 253
            && key != "."
            && key != ".."
            && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            errs.push(FieldError::invalid(
                path,
                key,
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
            ));
        }
    }
}

fn size_error(size: usize, path: &str, errs: &mut Vec<FieldError>) {
    if size > MAX_SIZE {
        errs.push(FieldError {
            kind: FieldErrorType::TooLong,
            field: path.into(),
            value: None,
            detail: format!("may not be more than {MAX_SIZE} bytes"),
        });
    }
}

pub struct ConfigMapStrategy;

impl Strategy for ConfigMapStrategy {
    type Object = ConfigMap;

    fn validate(&self, cm: &ConfigMap) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let data = cm.data.iter().flatten();
        let binary = cm.binary_data.iter().flatten();
        key_errors(data.clone().map(|(k, _)| k), &Path::new("data"), &mut errs);
        key_errors(binary.clone().map(|(k, _)| k), &Path::new("binaryData"), &mut errs);
        let size = data.map(|(k, v)| k.len() + v.len()).sum::<usize>()
            + binary.map(|(k, v)| k.len() + v.0.len()).sum::<usize>();
        size_error(size, "data", &mut errs);
        errs
    }

    fn validate_update(&self, new: &ConfigMap, old: &ConfigMap) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        errs.extend(immutable_data(
            old.immutable,
            (&new.data, &new.binary_data, new.immutable),
            (&old.data, &old.binary_data, old.immutable),
        ));
        errs
    }
}

/// Once `immutable` is set, neither the data nor the flag may change.
fn immutable_data<T: PartialEq>(was_immutable: Option<bool>, new: T, old: T) -> Vec<FieldError> {
    if was_immutable == Some(true) && new != old {
        vec![FieldError::forbidden("data", "field is immutable when `immutable` is set")]
    } else {
        Vec::new()
    }
}

pub struct SecretStrategy;

impl Strategy for SecretStrategy {
    type Object = Secret;

    fn apply_defaults(&self, secret: &mut Secret) {
        set_default(&mut secret.type_, "Opaque".to_string());
        if let Some(string_data) = secret.string_data.take() {
            let data = secret.data.get_or_insert_with(Default::default);
            for (k, v) in string_data {
                data.insert(k, ByteString(v.into_bytes()));
            }
        }
    }

    fn validate(&self, secret: &Secret) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let data = secret.data.iter().flatten();
        key_errors(data.clone().map(|(k, _)| k), &Path::new("data"), &mut errs);
        size_error(data.map(|(k, v)| k.len() + v.0.len()).sum(), "data", &mut errs);
        errs
    }

    fn validate_update(&self, new: &Secret, old: &Secret) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        if new.type_ != old.type_ {
            errs.push(FieldError::invalid("type", new.type_.clone().unwrap_or_default(), "field is immutable"));
        }
        errs.extend(immutable_data(old.immutable, (&new.data, new.immutable), (&old.data, old.immutable)));
        errs
    }
}
