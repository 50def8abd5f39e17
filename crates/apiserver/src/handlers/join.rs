//! What servers and nodes joining the cluster fetch from a server already in it, on the same
//! port, as k3s serves it:
//! - `/cacerts`, the cluster CA's certificate, to anyone (the joiner checks it against the hash
//!   its join token carries before trusting it);
//! - `/v1-skiff/server-bootstrap`, the CA's certificate and key, for a server that shows the
//!   join token's password (HTTP basic authentication as user `server`). Servers sharing the CA
//!   trust each other's certificates;
//! - `/v1-skiff/node-bootstrap`, for a node agent that shows the password as user `node` and
//!   posts a certificate signing request for `system:node:NAME`: a client certificate for that
//!   node in the `system:nodes` group (so a node gets a node's rights, never the CA), and the
//!   cluster's pod range.

use crate::authn::{NODE_USER_PREFIX, NODES};
use crate::certs::leaf_params;
use crate::http_util::{Body, RequestBody, full, read_body, text};
use base64::Engine;
use http::{Method, Request, Response};
use rcgen::{CertificateSigningRequestParams, DnType, DnValue, ExtendedKeyUsagePurpose, Issuer, KeyPair};
use std::path::PathBuf;

pub const CACERTS: &str = "/cacerts";
pub const SERVER_BOOTSTRAP: &str = "/v1-skiff/server-bootstrap";
pub const NODE_BOOTSTRAP: &str = "/v1-skiff/node-bootstrap";
/// The users of the basic authentication, as in k3s's tokens (`K10<hash>::server:<password>`).
const SERVER_USER: &str = "server";
const NODE_USER: &str = "node";

/// The CA's files, the password that opens the bootstraps, and what nodes are told.
pub struct Join {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub password: String,
    /// The range pod addresses come from (the controller manager's --cluster-cidr), which
    /// nodes keep from masquerading.
    pub cluster_cidr: String,
}

/// Whether `path` is one of the join endpoints, which are served before authentication.
pub fn serves(path: &str) -> bool {
    [CACERTS, SERVER_BOOTSTRAP, NODE_BOOTSTRAP].contains(&path)
}

impl Join {
    /// The answer to a request for one of the paths [`serves`] takes.
    pub async fn serve(&self, req: Request<RequestBody>) -> Response<Body> {
        let path = req.uri().path().to_owned();
        let method = if path == NODE_BOOTSTRAP { Method::POST } else { Method::GET };
        if req.method() != method {
            return text(405, format!("{path} answers {method} only"));
        }
        if path == CACERTS {
            return file_response(&self.ca_cert, "application/x-pem-file");
        }
        let user = if path == SERVER_BOOTSTRAP { SERVER_USER } else { NODE_USER };
        let authorization = req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if !authorization.is_some_and(|header| opens(header, user, &self.password)) {
            return Response::builder()
                .status(401)
                .header(http::header::WWW_AUTHENTICATE, "Basic realm=\"skiff\"")
                .body(full("the join token's password is wrong or missing"))
                .expect("static response parts are valid");
        }
        let answer = if path == SERVER_BOOTSTRAP {
            self.server_bootstrap()
        } else {
            match read_body(req.into_body()).await {
                Ok(csr) => self.node_bootstrap(&csr),
                Err(e) => Err((400, format!("reading the request: {}", e.message))),
            }
        };
        match answer {
            Ok(body) => Response::builder()
                .status(200)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(full(body.to_string()))
                .expect("static response parts are valid"),
            Err((code, message)) => text(code, message),
        }
    }

    fn server_bootstrap(&self) -> Result<serde_json::Value, (u16, String)> {
        let (cert, key) = self.read_ca()?;
        Ok(serde_json::json!({ "ca.crt": cert, "ca.key": key }))
    }

    /// Signs the node's request with the CA, whatever else it asked for: a client certificate
    /// for the node it names and the nodes group.
    fn node_bootstrap(&self, csr: &[u8]) -> Result<serde_json::Value, (u16, String)> {
        let invalid = |why: String| (400, why);
        let pem = std::str::from_utf8(csr).map_err(|_| invalid("the request is not a PEM text".into()))?;
        let mut csr = CertificateSigningRequestParams::from_pem(pem)
            .map_err(|e| invalid(format!("the request is not a certificate signing request: {e}")))?;
        let user = match csr.params.distinguished_name.get(&DnType::CommonName) {
            Some(DnValue::Utf8String(name)) => name.clone(),
            Some(DnValue::PrintableString(name)) => name.as_str().to_owned(),
            _ => String::new(),
        };
        let node = user.strip_prefix(NODE_USER_PREFIX).unwrap_or_default();
        let problems = registry::names::NameRule::Subdomain.check(node);
        if !problems.is_empty() {
            return Err(invalid(format!(
                "the request's common name is {user:?}: it must be {NODE_USER_PREFIX}NAME, NAME a node name \
                 ({}); give the agent one with --node-name",
                problems.join("; ")
            )));
        }
        let failed = |e: rcgen::Error| (500, format!("signing the node's certificate: {e}"));
        csr.params = leaf_params(&user, Some(NODES), &[], ExtendedKeyUsagePurpose::ClientAuth).map_err(failed)?;
        let (ca_cert, ca_key) = self.read_ca()?;
        let key = KeyPair::from_pem(&ca_key).map_err(failed)?;
        let issuer = Issuer::from_ca_cert_pem(&ca_cert, key).map_err(failed)?;
        let cert = csr.signed_by(&issuer).map_err(failed)?;
        tracing::info!(node, "signed a node's client certificate");
        Ok(serde_json::json!({ "client.crt": cert.pem(), "ca.crt": ca_cert, "clusterCIDR": self.cluster_cidr }))
    }

    fn read_ca(&self) -> Result<(String, String), (u16, String)> {
        let read = |path: &PathBuf| std::fs::read_to_string(path);
        match (read(&self.ca_cert), read(&self.ca_key)) {
            (Ok(cert), Ok(key)) => Ok((cert, key)),
            (Err(e), _) | (_, Err(e)) => Err((500, format!("cannot read the cluster CA: {e}"))),
        }
    }
}

fn file_response(path: &PathBuf, content_type: &str) -> Response<Body> {
    match std::fs::read(path) {
        Ok(bytes) => Response::builder()
            .status(200)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(full(bytes))
            .expect("static response parts are valid"),
        Err(e) => text(500, format!("cannot read {}: {e}", path.display())),
    }
}

/// Whether a basic `Authorization` header carries `user` and `password`, compared in time that
/// does not depend on where they differ.
fn opens(header: &str, user: &str, password: &str) -> bool {
    let Some(encoded) = header.strip_prefix("Basic ") else { return false };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else { return false };
    let expected = format!("{user}:{password}");
    decoded.len() == expected.len()
        && decoded.iter().zip(expected.as_bytes()).fold(0, |diff, (a, b)| diff | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(credentials: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials))
    }

    #[test]
    fn only_the_join_user_with_the_password_opens_the_bootstrap() {
        assert!(opens(&basic("server:s3cret"), "server", "s3cret"));
        assert!(!opens(&basic("server:s3cret!"), "server", "s3cret"));
        assert!(!opens(&basic("server:s3cre"), "server", "s3cret"));
        assert!(!opens(&basic("admin:s3cret"), "server", "s3cret"));
        assert!(!opens(&basic("node:s3cret"), "server", "s3cret"));
        assert!(!opens("Bearer s3cret", "server", "s3cret"));
        assert!(!opens("Basic not-base64!", "server", "s3cret"));
    }

    #[test]
    fn a_node_gets_a_client_certificate_for_its_name_in_the_nodes_group_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        std::fs::write(dir.path().join("ca.crt"), ca_cert.pem()).unwrap();
        std::fs::write(dir.path().join("ca.key"), ca_key.serialize_pem()).unwrap();
        let join = Join {
            ca_cert: dir.path().join("ca.crt"),
            ca_key: dir.path().join("ca.key"),
            password: "s3cret".into(),
            cluster_cidr: "10.42.0.0/16".into(),
        };
        let request = |common_name: &str| {
            let mut params = rcgen::CertificateParams::new(vec!["evil.example".to_string()]).unwrap();
            params.distinguished_name.push(DnType::CommonName, common_name);
            params.distinguished_name.push(DnType::OrganizationName, "system:masters");
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.serialize_request(&KeyPair::generate().unwrap()).unwrap().pem().unwrap()
        };

        let answer = join.node_bootstrap(request("system:node:worker-1").as_bytes()).unwrap();
        assert_eq!(answer["clusterCIDR"], "10.42.0.0/16");
        let pem = answer["client.crt"].as_str().unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        let user = crate::authn::User::from_certificate(&pem.contents).unwrap();
        assert_eq!(user.name, "system:node:worker-1");
        assert_eq!(user.groups, vec![NODES, "system:authenticated"]);
        assert!(!cert.is_ca());
        assert!(cert.subject_alternative_name().unwrap().is_none());
        assert!(cert.extended_key_usage().unwrap().unwrap().value.client_auth);

        for refused in ["admin", "system:node:", "system:node:Worker", "system:node:a/b"] {
            let (code, message) = join.node_bootstrap(request(refused).as_bytes()).unwrap_err();
            assert_eq!(code, 400, "{refused}: {message}");
        }
        assert_eq!(join.node_bootstrap(b"not a request").unwrap_err().0, 400);
    }
}
