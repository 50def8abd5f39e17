//! Where an image is pulled from: the node's registry configuration, in the shape of k3s's
//! `registries.yaml`, turned into the endpoints to try in order for one image.
//!
//! ```yaml
//! mirrors:
//!   docker.io:
//!     endpoint: ["http://127.0.0.1:5000"]
//!     rewrite: {"^library/(.*)": "mirrored/$1"}
//!   "*":
//!     endpoint: ["https://mirror.example.com"]
//! configs:
//!   mirror.example.com:
//!     auth: {username: u, password: p}
//!     tls: {ca_file: /etc/ssl/mirror-ca.pem, insecure_skip_verify: false}
//! ```
//!
//! A registry's mirror endpoints come first, in order, with the rewrites applied to the
//! repository; the registry itself (its default endpoint, never rewritten) comes last. `"*"`
//! stands for every registry without an entry of its own. `configs` are looked up by the
//! endpoint's host. An endpoint without a scheme is https, except on a loopback host with a
//! port other than 443, which is http; its path is the API root (`/v2` when it has none).

use super::super::image::reference::Reference;
use anyhow::Context;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where Docker Hub's API is served.
const DOCKER_HUB_HOST: &str = "registry-1.docker.io";

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RegistriesConfig {
    #[serde(default)]
    mirrors: BTreeMap<String, Mirror>,
    #[serde(default)]
    configs: BTreeMap<String, HostConfig>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Mirror {
    #[serde(default)]
    endpoint: Vec<String>,
    /// Regular expressions over the repository, and their replacements (`$1` for a group).
    #[serde(default)]
    rewrite: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct HostConfig {
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct AuthConfig {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// base64 of `username:password`, instead of the two.
    #[serde(default)]
    pub auth: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct TlsConfig {
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// One place to try an image at.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// `host` or `host:port`.
    pub authority: String,
    /// The API root, `/v2` unless the endpoint's URL says otherwise.
    pub root: String,
    /// The repository to ask for here (rewritten for a mirror).
    pub repository: String,
    /// For a mirror: the registry the image is from, which it is told as `?ns=`.
    pub namespace: Option<String>,
    /// The image's own registry (its default endpoint), as opposed to a mirror.
    pub is_default: bool,
    pub config: HostConfig,
}

impl Endpoint {
    /// The URL of a path under the repository (`manifests/latest`, `blobs/sha256:...`).
    pub fn url(&self, path: &str) -> String {
        let mut url = format!("{}://{}{}/{}/{path}", self.scheme, self.authority, self.root, self.repository);
        if let Some(ns) = &self.namespace {
            url.push_str(&format!("?ns={ns}"));
        }
        url
    }
}

fn host_of(authority: &str) -> &str {
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl RegistriesConfig {
    /// Reads the configuration at `path`; a file that does not exist is no configuration.
    pub fn load(path: &Path) -> anyhow::Result<RegistriesConfig> {
        match std::fs::read(path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(RegistriesConfig::default()),
            Ok(bytes) => {
                let config: RegistriesConfig = serde_yaml::from_slice(&bytes)
                    .with_context(|| format!("{} is not a registries.yaml", path.display()))?;
                for mirror in config.mirrors.values() {
                    for pattern in mirror.rewrite.keys() {
                        regex::Regex::new(pattern).with_context(|| {
                            format!("{}: the rewrite {pattern:?} is not a regular expression", path.display())
                        })?;
                    }
                }
                Ok(config)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RegistriesConfig::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The endpoints to try for an image, in order: its mirrors, then its registry.
    pub fn endpoints(&self, image: &Reference) -> Vec<Endpoint> {
        let default = self.endpoint(&default_url(&image.registry), image.repository.clone(), None);
        let mirror = self.mirrors.get(&image.registry).or_else(|| self.mirrors.get("*"));
        let mut endpoints: Vec<Endpoint> = mirror
            .into_iter()
            .flat_map(|m| m.endpoint.iter().map(move |url| (m, url)))
            .map(|(m, url)| self.endpoint(url, rewrite(&m.rewrite, &image.repository), Some(image.registry.clone())))
            // A mirror that is the registry itself is its default endpoint, not rewritten.
            .filter(|e| (e.scheme, &e.authority, &e.root) != (default.scheme, &default.authority, &default.root))
            .collect();
        endpoints.push(Endpoint { is_default: true, ..default });
        endpoints
    }

    fn endpoint(&self, url: &str, repository: String, namespace: Option<String>) -> Endpoint {
        let (scheme, rest) = match url.split_once("://") {
            Some(("http", rest)) => ("http", rest),
            Some((_, rest)) => ("https", rest),
            None => ("", url),
        };
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        let scheme = match scheme {
            "" if is_loopback(host_of(authority)) && !authority.ends_with(":443") => "http",
            "" => "https",
            s => s,
        };
        let root = match path.trim_end_matches('/') {
            "" | "v2" => "/v2".to_string(),
            other => format!("/{other}"),
        };
        let config = self.host_config(authority);
        Endpoint { scheme, authority: authority.to_string(), root, repository, namespace, is_default: false, config }
    }

    /// The auth and TLS settings for an endpoint's host: its own, Docker Hub's for Docker
    /// Hub's hosts, or the `"*"` ones.
    fn host_config(&self, authority: &str) -> HostConfig {
        let docker_hub = matches!(authority, DOCKER_HUB_HOST | "index.docker.io");
        self.configs
            .get(authority)
            .or_else(|| docker_hub.then(|| self.configs.get("docker.io")).flatten())
            .or_else(|| self.configs.get("*"))
            .cloned()
            .unwrap_or_default()
    }
}

/// The registry's own endpoint: Docker Hub's API host for docker.io.
fn default_url(registry: &str) -> String {
    match registry {
        "docker.io" => format!("https://{DOCKER_HUB_HOST}/v2"),
        other => other.to_string(),
    }
}

/// The repository as the first rewrite that changes it makes it.
fn rewrite(rules: &BTreeMap<String, String>, repository: &str) -> String {
    for (pattern, replacement) in rules {
        if let Ok(re) = regex::Regex::new(pattern) {
            let rewritten = re.replace_all(repository, replacement.as_str());
            if rewritten != repository {
                return rewritten.into_owned();
            }
        }
    }
    repository.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> RegistriesConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn urls(config: &RegistriesConfig, image: &str) -> Vec<String> {
        config.endpoints(&image.parse().unwrap()).iter().map(|e| e.url("manifests/latest")).collect()
    }

    #[test]
    fn without_configuration_the_registry_itself_is_asked() {
        let none = RegistriesConfig::default();
        assert_eq!(urls(&none, "busybox"), ["https://registry-1.docker.io/v2/library/busybox/manifests/latest"]);
        assert_eq!(urls(&none, "quay.io/org/app:v1"), ["https://quay.io/v2/org/app/manifests/latest"]);
        // A registry on the loopback speaks plain HTTP, as k3s assumes.
        assert_eq!(urls(&none, "127.0.0.1:5000/app"), ["http://127.0.0.1:5000/v2/app/manifests/latest"]);
        assert_eq!(urls(&none, "localhost:443/app"), ["https://localhost:443/v2/app/manifests/latest"]);
    }

    #[test]
    fn mirrors_come_first_rewritten_and_told_the_registry() {
        let c = config(
            r#"
mirrors:
  docker.io:
    endpoint: ["http://127.0.0.1:5000", "https://mirror.example.com/some/prefix"]
    rewrite: {"^library/(.*)": "mirrored/$1"}
  "*":
    endpoint: ["mirror.example.com:8443"]
configs:
  mirror.example.com:8443:
    auth: {username: u, password: p}
"#,
        );
        assert_eq!(
            urls(&c, "busybox"),
            [
                "http://127.0.0.1:5000/v2/mirrored/busybox/manifests/latest?ns=docker.io",
                "https://mirror.example.com/some/prefix/mirrored/busybox/manifests/latest?ns=docker.io",
                "https://registry-1.docker.io/v2/library/busybox/manifests/latest",
            ]
        );
        let endpoints = c.endpoints(&"quay.io/org/app".parse().unwrap());
        assert_eq!(
            endpoints[0].url("manifests/v1"),
            "https://mirror.example.com:8443/v2/org/app/manifests/v1?ns=quay.io"
        );
        assert_eq!(endpoints[0].config.auth.as_ref().unwrap().username, "u");
        assert!(endpoints[1].is_default && endpoints[1].config.auth.is_none());
    }

    #[test]
    fn a_mirror_that_is_the_registry_is_its_default_endpoint() {
        let c = config("mirrors:\n  quay.io:\n    endpoint: [\"https://quay.io\"]\n");
        assert_eq!(urls(&c, "quay.io/org/app"), ["https://quay.io/v2/org/app/manifests/latest"]);
    }

    #[test]
    fn bad_files_are_refused_and_missing_ones_are_empty() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(RegistriesConfig::load(&tmp.path().join("none.yaml")).unwrap().mirrors.is_empty());
        let bad = tmp.path().join("bad.yaml");
        std::fs::write(&bad, "mirrors:\n  docker.io:\n    rewrite: {\"(\": \"x\"}\n").unwrap();
        assert!(format!("{:#}", RegistriesConfig::load(&bad).unwrap_err()).contains("not a regular expression"));
    }
}
