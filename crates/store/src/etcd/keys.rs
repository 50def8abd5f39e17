//! Where store keys live in etcd, as kube-apiserver's `--etcd-prefix` lays them out.
//!
//! The rule: a store key names the etcd key `prefix + rest`, where `rest` is the store key
//! without its leading `/registry` if it has one (the API server's keys), or the whole key if not
//! (the keys of tests and tools). So with the default prefix `/registry` the API server's keys
//! are stored unchanged, and with `/skiff-a` the key `/registry/core/pods/default/web-0` is
//! stored as `/skiff-a/core/pods/default/web-0`.
//!
//! - Every store key starts with `/`, so every etcd key of a store starts with `prefix + "/"`, and
//!   stores whose prefixes are not nested (`/skiff-a`, `/skiff-ab`) never see each other's keys.
//! - `/registry/x` and `/x` name the same etcd key. Nothing uses both forms: the API server only
//!   ever asks for the first.
//! - Keys read back are given in the form they were asked for: a range under `/p/` returns keys
//!   that start with `/p/`. So no key needs a global inverse of the rule.

use crate::{Error, KeyValue, Result};

/// The leading part of the API server's keys that the prefix replaces.
const API_ROOT: &str = "/registry";

/// The etcd prefix of one store.
#[derive(Clone, Debug)]
pub(super) struct Keys {
    prefix: String,
}

impl Keys {
    /// `prefix` is an absolute path of one or more segments, such as `/registry` or `/skiff-a`; a
    /// trailing `/` is ignored.
    pub fn new(prefix: &str) -> Result<Self> {
        let trimmed = prefix.trim_end_matches('/');
        if !trimmed.starts_with('/') {
            return Err(Error::Backend(format!(
                "the etcd prefix {prefix:?} must be an absolute path such as /registry, and not /"
            )));
        }
        Ok(Keys { prefix: trimmed.to_owned() })
    }

    /// The etcd key that a store key (or key prefix) names.
    pub fn map(&self, key: &str) -> Result<Mapped> {
        if !key.starts_with('/') {
            return Err(Error::Backend(format!("the store key {key:?} does not start with '/'")));
        }
        let rest = key.strip_prefix(API_ROOT).filter(|rest| rest.is_empty() || rest.starts_with('/')).unwrap_or(key);
        let etcd = [self.prefix.as_bytes(), rest.as_bytes()].concat();
        Ok(Mapped { store: key.to_owned(), etcd })
    }
}

/// A store key or key prefix, and the etcd key it names.
#[derive(Clone, Debug)]
pub(super) struct Mapped {
    store: String,
    etcd: Vec<u8>,
}

impl Mapped {
    pub fn etcd(&self) -> &[u8] {
        &self.etcd
    }

    /// The first etcd key after every key that starts with this one (etcd's `range_end` for a
    /// prefix). There always is one: every mapped key starts with `/`.
    pub fn prefix_end(&self) -> Vec<u8> {
        let mut end = self.etcd.clone();
        while let Some(last) = end.pop() {
            if last < u8::MAX {
                end.push(last + 1);
                return end;
            }
        }
        unreachable!("mapped keys start with '/'")
    }

    /// The store key of an etcd key that starts with this one, in the form this one was asked for.
    pub fn store_key(&self, etcd_key: &[u8]) -> Result<String> {
        let rest = etcd_key.strip_prefix(self.etcd.as_slice()).ok_or_else(|| {
            Error::Backend(format!(
                "etcd returned the key {:?} outside the range {:?}",
                String::from_utf8_lossy(etcd_key),
                String::from_utf8_lossy(&self.etcd)
            ))
        })?;
        let rest = std::str::from_utf8(rest).map_err(|_| {
            Error::Backend(format!("etcd holds a key that is not UTF-8: {:?}", String::from_utf8_lossy(etcd_key)))
        })?;
        Ok([self.store.as_str(), rest].concat())
    }

    /// The store's pair for a pair etcd returned under this key.
    pub fn pair(&self, kv: etcd_client::KeyValue) -> Result<KeyValue> {
        let (create_revision, mod_revision) = (kv.create_revision(), kv.mod_revision());
        let (key, value) = kv.into_key_value();
        Ok(KeyValue { key: self.store_key(&key)?, value: value.into(), create_revision, mod_revision })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn etcd_key(prefix: &str, key: &str) -> String {
        String::from_utf8(Keys::new(prefix).unwrap().map(key).unwrap().etcd).unwrap()
    }

    #[test]
    fn the_prefix_replaces_the_api_root() {
        assert_eq!(etcd_key("/registry", "/registry/core/pods/default/web-0"), "/registry/core/pods/default/web-0");
        assert_eq!(etcd_key("/skiff-a", "/registry/core/pods/default/web-0"), "/skiff-a/core/pods/default/web-0");
        assert_eq!(etcd_key("/skiff-a/", "/registry/"), "/skiff-a/");
        assert_eq!(etcd_key("/a/b", "/registry"), "/a/b");
    }

    #[test]
    fn other_keys_go_under_the_prefix_whole() {
        assert_eq!(etcd_key("/registry", "/t/a"), "/registry/t/a");
        assert_eq!(etcd_key("/skiff-a", "/registryx/a"), "/skiff-a/registryx/a");
    }

    #[test]
    fn relative_keys_and_bare_prefixes_are_refused() {
        assert!(Keys::new("registry").is_err());
        assert!(Keys::new("/").is_err());
        assert!(Keys::new("").is_err());
        assert!(Keys::new("/registry").unwrap().map("t/a").is_err());
    }

    #[test]
    fn keys_come_back_in_the_form_they_were_asked_for() {
        let keys = Keys::new("/skiff-a").unwrap();
        let pods = keys.map("/registry/core/pods/").unwrap();
        assert_eq!(pods.store_key(b"/skiff-a/core/pods/default/web-0").unwrap(), "/registry/core/pods/default/web-0");
        assert!(pods.store_key(b"/skiff-ab/core/pods/default/web-0").is_err());
        let short = keys.map("/core/pods/").unwrap();
        assert_eq!(short.store_key(b"/skiff-a/core/pods/x").unwrap(), "/core/pods/x");
    }

    #[test]
    fn prefix_end_is_past_every_key_under_the_prefix() {
        let keys = Keys::new("/registry").unwrap();
        assert_eq!(keys.map("/a/b/").unwrap().prefix_end(), b"/registry/a/b0");
        let mapped = Mapped { store: "/".to_owned(), etcd: vec![b'/', 0xff, 0xff] };
        assert_eq!(mapped.prefix_end(), b"0");
    }
}
