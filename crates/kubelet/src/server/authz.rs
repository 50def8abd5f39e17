//! Who may use the kubelet API. The kubelet asks the API server whether the caller may use
//! `nodes/proxy` (a SubjectAccessReview); under skiff's built-in roles only `system:masters`
//! may, so the node checks that group itself, in the client certificate the TLS handshake
//! verified against the cluster CA. A node's own certificate (`system:nodes`) is refused: one
//! node cannot read the logs of, or exec into, another node's pods.

use super::{Body, text};
use http::{Method, Response};

/// The group whose members may use the kubelet API: the API server's kubelet client
/// certificate is in it, as are the cluster's administrators.
const ADMITTED_GROUP: &str = "system:masters";

/// The caller of a connection, as its client certificate names it.
#[derive(Clone, Debug)]
pub struct Caller {
    name: String,
    admitted: bool,
}

impl Caller {
    /// The user (common name) and groups (organizations) of a verified certificate.
    pub fn from_certificate(der: &[u8]) -> Caller {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
            return Caller { name: String::new(), admitted: false };
        };
        let subject = cert.subject();
        let name = subject.iter_common_name().next().and_then(|cn| cn.as_str().ok()).unwrap_or("").to_owned();
        let admitted = subject.iter_organization().any(|o| o.as_str() == Ok(ADMITTED_GROUP));
        Caller { name, admitted }
    }

    /// The kubelet's refusal of a caller that may not, naming the request as the kubelet
    /// names it to the authorizer; `None` for a caller that may.
    pub fn refusal(&self, method: &Method) -> Option<Response<Body>> {
        if self.admitted {
            return None;
        }
        let verb = match *method {
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "get",
        };
        Some(text(403, format!("Forbidden (user={}, verb={verb}, resource=nodes, subresource=proxy)", self.name)))
    }
}
