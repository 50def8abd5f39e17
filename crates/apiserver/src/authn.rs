//! Who is asking: a TLS client certificate signed by the cluster CA (CN is the user, O the
//! groups), a bearer token from the static token file, or nobody (anonymous).

use crate::error::ApiError;
use std::collections::HashMap;
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

pub const ANONYMOUS: &str = "system:anonymous";

/// The group whose members may do anything (the admin kubeconfig's, and the in-process
/// components').
pub const MASTERS: &str = "system:masters";

/// Nodes are users named `system:node:NAME` in this group (as the kubelet's certificates name them).
pub const NODES: &str = "system:nodes";
pub const NODE_USER_PREFIX: &str = "system:node:";

impl User {
    fn authenticated(name: String, uid: String, mut groups: Vec<String>) -> Self {
        if !groups.iter().any(|g| g == "system:authenticated") {
            groups.push("system:authenticated".into());
        }
        User { name, uid, groups }
    }

    /// The node agent of the node `name`.
    pub fn node(name: &str) -> Self {
        User::authenticated(format!("{NODE_USER_PREFIX}{name}"), String::new(), vec![NODES.into()])
    }

    /// The node this user is, if it is one: named `system:node:NAME` and in the nodes group.
    pub fn node_name(&self) -> Option<&str> {
        let name = self.name.strip_prefix(NODE_USER_PREFIX)?;
        (!name.is_empty() && self.groups.iter().any(|g| g == NODES)).then_some(name)
    }

    pub fn anonymous() -> Self {
        User { name: ANONYMOUS.into(), uid: String::new(), groups: vec!["system:unauthenticated".into()] }
    }

    pub fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == MASTERS)
    }

    pub fn is_anonymous(&self) -> bool {
        self.name == ANONYMOUS
    }

    /// The user named by a verified client certificate's subject.
    pub fn from_certificate(der: &[u8]) -> Option<User> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let subject = cert.subject();
        let name = subject.iter_common_name().next()?.as_str().ok()?.to_string();
        let groups = subject.iter_organization().filter_map(|o| o.as_str().ok().map(String::from)).collect();
        Some(User::authenticated(name, String::new(), groups))
    }
}

/// The static token file, in kube-apiserver's `--token-auth-file` format:
/// `token,user,uid,"group1,group2"` on each line.
#[derive(Default)]
pub struct TokenFile {
    tokens: HashMap<String, User>,
}

impl TokenFile {
    pub fn load(path: &Path) -> anyhow::Result<TokenFile> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read token file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("token file {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<TokenFile, String> {
        let mut tokens = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.splitn(4, ',');
            let (Some(token), Some(user), Some(uid)) = (fields.next(), fields.next(), fields.next()) else {
                return Err(format!("line {}: expected token,user,uid[,\"groups\"]", n + 1));
            };
            let groups = fields
                .next()
                .map(|g| {
                    g.trim()
                        .trim_matches('"')
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            if token.is_empty() || user.is_empty() {
                return Err(format!("line {}: token and user must not be empty", n + 1));
            }
            tokens.insert(token.to_string(), User::authenticated(user.to_string(), uid.to_string(), groups));
        }
        Ok(TokenFile { tokens })
    }

    fn lookup(&self, token: &str) -> Option<&User> {
        self.tokens.get(token)
    }
}

/// Decides who made a request from its connection's certificate and its headers.
/// A bearer token that is not known is refused outright, as kube-apiserver does.
pub fn authenticate(
    cert_user: Option<&User>,
    authorization: Option<&str>,
    tokens: &TokenFile,
) -> Result<User, ApiError> {
    if let Some(header) = authorization
        && let Some(token) = header.strip_prefix("Bearer ").map(str::trim)
    {
        return tokens.lookup(token).cloned().ok_or_else(ApiError::unauthorized);
    }
    Ok(cert_user.cloned().unwrap_or_else(User::anonymous))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file() {
        let f = TokenFile::parse("abc,alice,1,\"dev,ops\"\n# c\nxyz,bob,2\n").unwrap();
        let alice = authenticate(None, Some("Bearer abc"), &f).unwrap();
        assert_eq!(alice.groups, vec!["dev", "ops", "system:authenticated"]);
        assert_eq!(authenticate(None, Some("Bearer xyz"), &f).unwrap().name, "bob");
        assert!(authenticate(None, Some("Bearer nope"), &f).is_err());
        assert!(authenticate(None, None, &f).unwrap().is_anonymous());
        assert!(TokenFile::parse("justone").is_err());
    }
}
