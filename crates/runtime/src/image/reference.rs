//! Image references, normalized the way Docker and Kubernetes do it, so that `busybox`,
//! `library/busybox` and `docker.io/library/busybox:latest` all name the same image.
//!
//! ```
//! use runtime::image::reference::{normalize, Reference};
//! assert_eq!(normalize("busybox").unwrap(), "docker.io/library/busybox:latest");
//! let r: Reference = "localhost:5000/app:v2".parse().unwrap();
//! assert_eq!((r.registry.as_str(), r.repository.as_str()), ("localhost:5000", "app"));
//! ```
//!
//! The grammar is the one of `distribution/reference`:
//! `[registry/]path[:tag][@digest]`, where the first component of the name is a registry
//! only when it has a `.` or a `:`, or is `localhost`, and there is more than one component.

use anyhow::{Context, bail};
use std::fmt;
use std::str::FromStr;

/// The registry of names that do not say which registry they come from.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// Where Docker Hub's official images live: `busybox` is `docker.io/library/busybox`.
const OFFICIAL_NAMESPACE: &str = "library";
/// Docker Hub's legacy host name, which means the same registry as `docker.io`.
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
/// The longest name (registry and repository) the reference grammar allows.
const NAME_MAX: usize = 255;
/// The longest tag the reference grammar allows.
const TAG_MAX: usize = 128;

/// A parsed, normalized image reference; what a registry client needs to pull it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// Host and optional port, e.g. `docker.io` or `localhost:5000`.
    pub registry: String,
    /// The path within the registry, e.g. `library/busybox`.
    pub repository: String,
    /// The tag; `latest` when the reference names neither a tag nor a digest.
    pub tag: Option<String>,
    /// The manifest digest, `sha256:<hex>`, when the reference pins one.
    pub digest: Option<String>,
}

impl Reference {
    /// `registry/repository`, without tag or digest: the part a repo digest is built on.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = anyhow::Error;

    fn from_str(reference: &str) -> anyhow::Result<Reference> {
        parse(reference).with_context(|| format!("invalid image reference {reference:?}"))
    }
}

/// The normalized form of a reference: `busybox` → `docker.io/library/busybox:latest`.
pub fn normalize(reference: &str) -> anyhow::Result<String> {
    Ok(reference.parse::<Reference>()?.to_string())
}

fn parse(reference: &str) -> anyhow::Result<Reference> {
    if reference.is_empty() {
        bail!("the reference is empty");
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) => (rest, Some(parse_digest(digest)?)),
        None => (reference, None),
    };
    // A `:` after the last `/` starts the tag; one before it belongs to a registry port.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        check_tag(tag)?;
    }
    if name.len() > NAME_MAX {
        bail!("the name is longer than {NAME_MAX} characters");
    }
    let (registry, repository) = split_registry(name);
    check_registry(registry)?;
    for component in repository.split('/') {
        check_path_component(component)?;
    }
    let registry = if registry == LEGACY_DEFAULT_REGISTRY { DEFAULT_REGISTRY } else { registry };
    let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
        format!("{OFFICIAL_NAMESPACE}/{repository}")
    } else {
        repository.to_string()
    };
    let tag = match (tag, &digest) {
        (Some(tag), _) => Some(tag.to_string()),
        (None, Some(_)) => None,
        (None, None) => Some("latest".to_string()),
    };
    Ok(Reference { registry: registry.to_string(), repository, tag, digest })
}

/// Splits off the registry when the first component looks like a host (has a `.` or `:`, is
/// `localhost`, or has capitals, which repositories may not); otherwise it is Docker Hub.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':']) || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => (DEFAULT_REGISTRY, name),
    }
}

/// `host[:port]`, where host is DNS labels separated by dots or a bracketed IPv6 address.
fn check_registry(registry: &str) -> anyhow::Result<()> {
    let (host, port) = if let Some(v6) = registry.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').with_context(|| format!("registry {registry:?} lacks a closing ]"))?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            bail!("registry {registry:?} is not a valid IPv6 address");
        }
        match after {
            "" => return Ok(()),
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => bail!("registry {registry:?} has text after its address"),
            },
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            bail!("registry host {host:?} is not a valid host name");
        }
    }
    if let Some(port) = port
        && (port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()))
    {
        bail!("registry port {port:?} is not a number");
    }
    Ok(())
}

/// A path component: lowercase letters and digits, joined by `.`, `_`, `__` or runs of `-`.
fn check_path_component(component: &str) -> anyhow::Result<()> {
    if component.is_empty() {
        bail!("the repository has an empty path component");
    }
    if component.chars().any(|c| c.is_ascii_uppercase()) {
        bail!("repository names must be lowercase ({component:?})");
    }
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let separator_ok = |s: &str| matches!(s, "." | "_" | "__") || s.chars().all(|c| c == '-');
    let bad = || anyhow::anyhow!("{component:?} is not a valid repository path component");
    if !component.starts_with(alnum) || !component.ends_with(alnum) {
        return Err(bad());
    }
    // Between runs of letters and digits, each run of other characters must be a separator.
    for separator in component.split(alnum).filter(|s| !s.is_empty()) {
        if !separator_ok(separator) {
            return Err(bad());
        }
    }
    Ok(())
}

/// A tag: a word character, then up to 127 word characters, `.` or `-`.
fn check_tag(tag: &str) -> anyhow::Result<()> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let ok = tag.len() <= TAG_MAX && tag.starts_with(word) && tag.chars().all(|c| word(c) || c == '.' || c == '-');
    if !ok {
        bail!("{tag:?} is not a valid tag");
    }
    Ok(())
}

/// Only sha256 is in use by registries; anything else is refused rather than half supported.
fn parse_digest(digest: &str) -> anyhow::Result<String> {
    super::digest::hex_of(digest)?;
    Ok(digest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalizes_like_docker() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            ("foo/bar:1", "docker.io/foo/bar:1"),
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            ("index.docker.io/library/busybox:1", "docker.io/library/busybox:1"),
            ("localhost:5000/x", "localhost:5000/x:latest"),
            ("localhost/x", "localhost/x:latest"),
            ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
            ("ghcr.io/a/b/c:v1.2-rc_3", "ghcr.io/a/b/c:v1.2-rc_3"),
            ("[::1]:5000/app", "[::1]:5000/app:latest"),
            ("my_app__x/a-b--c.d", "docker.io/my_app__x/a-b--c.d:latest"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input).unwrap(), want, "normalizing {input}");
        }
    }

    #[test]
    fn keeps_digests_without_adding_latest() {
        assert_eq!(normalize(&format!("busybox@{DIGEST}")).unwrap(), format!("docker.io/library/busybox@{DIGEST}"));
        assert_eq!(
            normalize(&format!("localhost:5000/x:v1@{DIGEST}")).unwrap(),
            format!("localhost:5000/x:v1@{DIGEST}")
        );
    }

    #[test]
    fn parses_the_parts_a_registry_client_needs() {
        let r: Reference = format!("localhost:5000/team/app@{DIGEST}").parse().unwrap();
        assert_eq!(
            r,
            Reference {
                registry: "localhost:5000".into(),
                repository: "team/app".into(),
                tag: None,
                digest: Some(DIGEST.into()),
            }
        );
        assert_eq!(r.name(), "localhost:5000/team/app");
        let r: Reference = "busybox".parse().unwrap();
        assert_eq!(r.name(), "docker.io/library/busybox");
        assert_eq!(r.tag.as_deref(), Some("latest"));
    }

    #[test]
    fn rejects_invalid_references() {
        let bad = [
            "",
            "Busybox",
            "busybox:",
            "busybox:-x",
            "busybox@sha256:abc",
            "busybox@md5:0123456789abcdef0123456789abcdef",
            "a//b",
            "/busybox",
            "busybox/",
            "foo/-bar",
            "foo/bar_",
            "foo/a...b",
            "foo/a___b",
            "bad_host.io/x",
            "host:port/x",
            "exa mple/x",
        ];
        for input in bad {
            assert!(normalize(input).is_err(), "{input:?} should be rejected");
        }
        let err = normalize("Busybox").unwrap_err();
        assert!(format!("{err:#}").contains("lowercase"), "{err:#}");
    }
}
