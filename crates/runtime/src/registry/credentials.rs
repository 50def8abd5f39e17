//! Registry credentials from docker config files, as imagePullSecrets carry them
//! (`.dockerconfigjson`: `{"auths": {"<registry>": {...}}}`; the legacy `.dockercfg`: the
//! same map without `auths`), matched to an image the way the kubelet's keyring matches them:
//!
//! - a key is a registry host, maybe with a port and a path (`https://` and a leading
//!   `/v1/` or `/v2/` are dropped: `https://index.docker.io/v1/` is `index.docker.io`);
//! - it matches an image when the ports are equal, the hosts have as many labels and each
//!   label matches as a glob (`*.example.com`), and the image's path starts with the key's;
//! - longer keys are tried first, and Docker Hub images fall back to `index.docker.io`.

use super::super::image::reference::Reference;
use anyhow::Context;
use base64::Engine;
use serde::Deserialize;

/// A user name and password for a registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub password: String,
}

impl Credential {
    /// From a docker config entry: `auth` (base64 of `user:password`) wins over the fields.
    pub fn from_entry(username: &str, password: &str, auth: &str) -> anyhow::Result<Credential> {
        if auth.is_empty() {
            return Ok(Credential { username: username.into(), password: password.into() });
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(auth.trim()))
            .context("the auth field is not base64")?;
        let decoded = String::from_utf8(decoded).context("the auth field is not text")?;
        let (username, password) = decoded.split_once(':').context("the auth field is not user:password")?;
        Ok(Credential { username: username.into(), password: password.into() })
    }
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    auth: String,
}

/// Credentials by registry key, as the kubelet's keyring holds them.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    entries: Vec<(String, Credential)>,
}

impl Keyring {
    /// Adds the entries of a docker config file: `.dockerconfigjson` (with `auths`) or
    /// `.dockercfg` (without).
    pub fn add_docker_config(&mut self, json: &[u8]) -> anyhow::Result<()> {
        let value: serde_json::Value = serde_json::from_slice(json).context("the docker config is not JSON")?;
        let auths = value.get("auths").cloned().unwrap_or(value);
        let entries: std::collections::BTreeMap<String, Entry> =
            serde_json::from_value(auths).context("the docker config's entries are not registry credentials")?;
        for (key, entry) in entries {
            let credential = Credential::from_entry(&entry.username, &entry.password, &entry.auth)
                .with_context(|| format!("the credentials for {key}"))?;
            self.entries.push((normalize_key(&key), credential));
        }
        // Longer, more specific keys first, as the kubelet sorts them.
        self.entries.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(())
    }

    /// The credentials to try for an image, in order.
    pub fn lookup(&self, image: &Reference) -> Vec<Credential> {
        let name = image.name();
        let mut found: Vec<Credential> =
            self.entries.iter().filter(|(key, _)| matches(key, &name)).map(|(_, c)| c.clone()).collect();
        if found.is_empty() && image.registry == "docker.io" {
            found = self.entries.iter().filter(|(key, _)| key == "index.docker.io").map(|(_, c)| c.clone()).collect();
        }
        found
    }
}

/// A key as the keyring indexes it: no scheme, no `/v1/` or `/v2/`, no trailing slash.
fn normalize_key(key: &str) -> String {
    let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let (host, path) = key.split_once('/').map_or((key, ""), |(h, p)| (h, p));
    let path = path.strip_prefix("v1/").or_else(|| path.strip_prefix("v2/")).unwrap_or(path);
    let path = path.trim_end_matches('/');
    if path.is_empty() || path == "v1" || path == "v2" { host.to_string() } else { format!("{host}/{path}") }
}

/// Whether the key `key` covers the image `name` (`registry/repository`).
fn matches(key: &str, name: &str) -> bool {
    let split = |s: &str| -> (String, String, String) {
        let (authority, path) = s.split_once('/').map_or((s, ""), |(a, p)| (a, p));
        let (host, port) = authority.split_once(':').map_or((authority, ""), |(h, p)| (h, p));
        (host.to_string(), port.to_string(), path.to_string())
    };
    let (key_host, key_port, key_path) = split(key);
    let (host, port, path) = split(name);
    let (key_labels, labels): (Vec<&str>, Vec<&str>) = (key_host.split('.').collect(), host.split('.').collect());
    key_port == port
        && key_labels.len() == labels.len()
        && path.starts_with(&key_path)
        && key_labels.iter().zip(&labels).all(|(pattern, label)| glob(pattern, label))
}

/// A shell glob over one host label: `*` any run of characters, `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring(json: &str) -> Keyring {
        let mut k = Keyring::default();
        k.add_docker_config(json.as_bytes()).unwrap();
        k
    }

    fn users(k: &Keyring, image: &str) -> Vec<String> {
        k.lookup(&image.parse().unwrap()).into_iter().map(|c| c.username).collect()
    }

    #[test]
    fn keys_match_as_the_kubelet_matches_them() {
        let k = keyring(
            r#"{"auths": {
                "https://index.docker.io/v1/": {"username": "hub", "password": "p"},
                "reg.example.com:5000": {"auth": "cG9ydDpwdw=="},
                "quay.io/team": {"username": "team", "password": "p"},
                "quay.io": {"username": "quay", "password": "p"},
                "*.corp.example": {"username": "wild", "password": "p"}
            }}"#,
        );
        assert_eq!(users(&k, "busybox"), ["hub"]);
        assert_eq!(users(&k, "reg.example.com:5000/app"), ["port"]);
        assert!(users(&k, "reg.example.com/app").is_empty(), "the port must match");
        assert_eq!(users(&k, "quay.io/team/app"), ["team", "quay"]);
        assert_eq!(users(&k, "quay.io/other/app"), ["quay"]);
        assert_eq!(users(&k, "a.corp.example/x"), ["wild"]);
        assert!(users(&k, "a.b.corp.example/x").is_empty(), "a glob covers one label");
        let c = &k.lookup(&"reg.example.com:5000/app".parse().unwrap())[0];
        assert_eq!(c.password, "pw");
    }

    #[test]
    fn the_legacy_format_has_no_auths() {
        let k = keyring(r#"{"docker.io": {"username": "legacy", "password": "p"}}"#);
        assert_eq!(users(&k, "docker.io/library/busybox"), ["legacy"]);
        let mut bad = Keyring::default();
        assert!(bad.add_docker_config(br#"{"auths": {"x": {"auth": "bm9jb2xvbg=="}}}"#).is_err());
    }
}
