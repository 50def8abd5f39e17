//! `WWW-Authenticate` challenges (RFC 7235), as registries send them with a 401:
//! `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="..."` or
//! `Basic realm="..."`. Values may be quoted, and quoted values may hold commas
//! (`scope="repository:x:pull,push"`), so parameters are split only outside quotes.

use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// Get a token from `realm` (with `service` and `scope`), then send it as a Bearer token.
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
    /// Send the credentials with every request.
    Basic,
}

/// The challenge to answer among those of a response's `WWW-Authenticate` headers: Bearer
/// if offered, else Basic.
pub fn parse<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
    let mut basic = false;
    for header in headers {
        for (scheme, params) in challenges(header) {
            if scheme.eq_ignore_ascii_case("bearer")
                && let Some(realm) = params.get("realm")
            {
                return Some(Challenge::Bearer {
                    realm: realm.clone(),
                    service: params.get("service").cloned(),
                    scope: params.get("scope").cloned(),
                });
            }
            basic |= scheme.eq_ignore_ascii_case("basic");
        }
    }
    basic.then_some(Challenge::Basic)
}

/// Every challenge of one header: its scheme and its parameters (names lowercased).
fn challenges(header: &str) -> Vec<(String, HashMap<String, String>)> {
    let mut out: Vec<(String, HashMap<String, String>)> = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        // A token followed by `=` is a parameter of the current challenge; one followed by a
        // space (or the end) starts a new challenge.
        let token_end = rest.find(|c: char| c == '=' || c == ',' || c.is_whitespace()).unwrap_or(rest.len());
        let token = &rest[..token_end];
        let after = rest[token_end..].trim_start();
        if let Some(value_part) = after.strip_prefix('=') {
            let (value, remaining) = value(value_part.trim_start());
            if let Some((_, params)) = out.last_mut() {
                params.insert(token.to_ascii_lowercase(), value);
            }
            rest = remaining.trim_start().trim_start_matches(',').trim_start();
        } else {
            if !token.is_empty() {
                out.push((token.to_string(), HashMap::new()));
            }
            rest = after.trim_start_matches(',').trim_start();
        }
    }
    out
}

/// A quoted string (with `\` escapes) or a token, and what follows it.
fn value(input: &str) -> (String, &str) {
    let Some(quoted) = input.strip_prefix('"') else {
        let end = input.find(|c: char| c == ',' || c.is_whitespace()).unwrap_or(input.len());
        return (input[..end].to_string(), &input[end..]);
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            '"' => return (value, &quoted[i + 1..]),
            c => value.push(c),
        }
    }
    (value, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_keep_commas_inside_quotes() {
        let header = r#"Bearer realm="http://127.0.0.1:5058/token",service="test-registry",scope="repository:test/hello:pull,push",error="insufficient_scope""#;
        assert_eq!(
            parse([header]),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:5058/token".into(),
                service: Some("test-registry".into()),
                scope: Some("repository:test/hello:pull,push".into()),
            })
        );
        let bare = r#"bearer realm="https://auth.docker.io/token",service="registry.docker.io""#;
        assert!(matches!(parse([bare]), Some(Challenge::Bearer { scope: None, .. })));
    }

    #[test]
    fn bearer_is_preferred_to_basic_and_basic_is_understood() {
        assert_eq!(parse([r#"Basic realm="basic-realm""#]), Some(Challenge::Basic));
        let both = r#"Basic realm="x", Bearer realm="https://t/token",service=reg"#;
        assert!(matches!(parse([both]), Some(Challenge::Bearer { service: Some(s), .. }) if s == "reg"));
        assert_eq!(parse([r#"Negotiate abc"#]), None);
        assert_eq!(
            parse([r#"Bearer realm="a\"b""#]),
            Some(Challenge::Bearer { realm: "a\"b".into(), service: None, scope: None })
        );
    }
}
