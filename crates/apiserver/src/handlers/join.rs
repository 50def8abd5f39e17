//! What a server joining the cluster fetches from a server already in it, on the same port, as
//! k3s serves it: `/cacerts`, the cluster CA's certificate, to anyone (the joiner checks it
//! against the hash its join token carries before trusting it), and `/v1-skiff/server-bootstrap`,
//! the CA's certificate and key, only to a request with the join token's password (HTTP basic
//! authentication as user `server`). Servers sharing the CA trust each other's certificates.

use crate::http_util::{Body, full, text};
use base64::Engine;
use http::{Method, Request, Response};
use std::path::PathBuf;

pub const CACERTS: &str = "/cacerts";
pub const SERVER_BOOTSTRAP: &str = "/v1-skiff/server-bootstrap";
/// The user of the basic authentication, as in k3s's tokens (`K10<hash>::server:<password>`).
const JOIN_USER: &str = "server";

/// The CA's files, and the password that opens the bootstrap.
pub struct Join {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub password: String,
}

impl Join {
    /// The answer to a join request; `None` for every other request.
    pub fn serve<B>(&self, req: &Request<B>) -> Option<Response<Body>> {
        let path = req.uri().path();
        if path != CACERTS && path != SERVER_BOOTSTRAP {
            return None;
        }
        if req.method() != Method::GET {
            return Some(text(405, format!("{path} answers GET only")));
        }
        if path == CACERTS {
            return Some(file_response(&self.ca_cert, "application/x-pem-file"));
        }
        let authorization = req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if !authorization.is_some_and(|header| opens(header, &self.password)) {
            return Some(
                Response::builder()
                    .status(401)
                    .header(http::header::WWW_AUTHENTICATE, "Basic realm=\"skiff\"")
                    .body(full("the join token's password is wrong or missing"))
                    .expect("static response parts are valid"),
            );
        }
        let read = |path: &PathBuf| std::fs::read_to_string(path);
        Some(match (read(&self.ca_cert), read(&self.ca_key)) {
            (Ok(cert), Ok(key)) => {
                let body = serde_json::json!({ "ca.crt": cert, "ca.key": key });
                Response::builder()
                    .status(200)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(full(body.to_string()))
                    .expect("static response parts are valid")
            }
            (Err(e), _) | (_, Err(e)) => text(500, format!("cannot read the cluster CA: {e}")),
        })
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

/// Whether a basic `Authorization` header carries the join user and `password`, compared in
/// time that does not depend on where they differ.
fn opens(header: &str, password: &str) -> bool {
    let Some(encoded) = header.strip_prefix("Basic ") else { return false };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else { return false };
    let expected = format!("{JOIN_USER}:{password}");
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
        assert!(opens(&basic("server:s3cret"), "s3cret"));
        assert!(!opens(&basic("server:s3cret!"), "s3cret"));
        assert!(!opens(&basic("server:s3cre"), "s3cret"));
        assert!(!opens(&basic("admin:s3cret"), "s3cret"));
        assert!(!opens("Bearer s3cret", "s3cret"));
        assert!(!opens("Basic not-base64!", "s3cret"));
    }
}
