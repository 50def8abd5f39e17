//! Join tokens in k3s's secure form, `K10<sha256 of the CA certificate, hex>::server:<password>`:
//! the hash lets a joining server recognise the cluster's CA before it trusts it, and the
//! password opens the cluster's secrets to it.

use sha2::{Digest, Sha256};

const PREFIX: &str = "K10";
const USER: &str = "::server:";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// The hex SHA-256 of the CA certificate file, as `/cacerts` serves it.
    pub ca_hash: String,
    pub password: String,
}

impl Token {
    pub fn new(ca_cert: &[u8], password: String) -> Token {
        Token { ca_hash: ca_hash(ca_cert), password }
    }

    /// A token in the secure form; `None` for anything else (such as a bare password).
    pub fn parse(text: &str) -> Option<Token> {
        let rest = text.trim().strip_prefix(PREFIX)?;
        let (hash, password) = rest.split_once(USER)?;
        let hex = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        (hex && !password.is_empty())
            .then(|| Token { ca_hash: hash.to_ascii_lowercase(), password: password.to_owned() })
    }

    pub fn matches(&self, ca_cert: &[u8]) -> bool {
        self.ca_hash == ca_hash(ca_cert)
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PREFIX}{}{USER}{}", self.ca_hash, self.password)
    }
}

/// The hex SHA-256 of a CA certificate file.
pub fn ca_hash(ca_cert: &[u8]) -> String {
    hex::encode(Sha256::digest(ca_cert))
}

/// A new password: 16 random bytes, in hex.
pub fn random_password() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reads_back_as_written_and_names_its_ca() {
        let token = Token::new(b"-----BEGIN CERTIFICATE-----", "p4ss:word".to_owned());
        let text = token.to_string();
        assert!(text.starts_with("K10") && text.ends_with("::server:p4ss:word"), "{text}");
        assert_eq!(Token::parse(&format!("{text}\n")), Some(token.clone()));
        assert!(token.matches(b"-----BEGIN CERTIFICATE-----"));
        assert!(!token.matches(b"another CA"));
    }

    #[test]
    fn bare_passwords_and_damaged_tokens_are_not_tokens() {
        assert_eq!(Token::parse("s3cret"), None);
        assert_eq!(Token::parse(&format!("K10{}::server:", "a".repeat(64))), None);
        assert_eq!(Token::parse(&format!("K10{}::server:x", "a".repeat(63))), None);
        assert_eq!(Token::parse(&format!("K10{}::node:x", "a".repeat(64))), None);
    }
}
