//! A stored object's JSON as served, made without decoding it: stored objects carry no
//! resourceVersion (their revision is it), so serving one means adding that field to its
//! metadata. Watches serve every change to every watcher; scanning the text for where
//! `metadata` opens costs a fraction of decoding and re-encoding the object.

/// `stored` with `"resourceVersion":"<revision>"` added to its top-level metadata; `None`
/// when the text is not the plain shape this expects (no metadata object, escaped keys,
/// a resourceVersion already there, malformed JSON), for the caller to decode it instead.
pub fn with_resource_version(stored: &[u8], revision: i64) -> Option<Vec<u8>> {
    let top = skip_space(stored, 0);
    let metadata = member(stored, top, b"metadata")??;
    if stored.get(metadata) != Some(&b'{') || member(stored, metadata, b"resourceVersion")?.is_some() {
        return None;
    }
    // The metadata's members were checked on the way; of the rest, that its brackets pair
    // up and that the top-level object is all there is.
    if skip_space(stored, value_end(stored, top)?) != stored.len() {
        return None;
    }
    let field = format!("\"resourceVersion\":\"{revision}\"");
    let after_brace = metadata + 1;
    let empty = stored.get(skip_space(stored, after_brace)) == Some(&b'}');
    let mut out = Vec::with_capacity(stored.len() + field.len() + 1);
    out.extend_from_slice(&stored[..after_brace]);
    out.extend_from_slice(field.as_bytes());
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(&stored[after_brace..]);
    Some(out)
}

/// The object, as served in `json`, as a meta.k8s.io/v1 PartialObjectMetadata: its metadata
/// member cut out of the text. `None` when the text is not the plain shape this expects.
pub fn partial_metadata(json: &[u8]) -> Option<Vec<u8>> {
    let start = member(json, skip_space(json, 0), b"metadata")??;
    let metadata = &json[start..value_end(json, start)?];
    const HEAD: &[u8] = br#"{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":"#;
    let mut out = Vec::with_capacity(HEAD.len() + metadata.len() + 1);
    out.extend_from_slice(HEAD);
    out.extend_from_slice(metadata);
    out.push(b'}');
    Some(out)
}

fn skip_space(text: &[u8], mut at: usize) -> usize {
    while text.get(at).is_some_and(|b| b.is_ascii_whitespace()) {
        at += 1;
    }
    at
}

/// Where the value of member `key` starts, in the object opening at `open`: `Some(None)`
/// if it has no such member, `None` if the object is malformed or a key is escaped (it might
/// spell `key` in another way).
fn member(text: &[u8], open: usize, key: &[u8]) -> Option<Option<usize>> {
    if text.get(open) != Some(&b'{') {
        return None;
    }
    let mut at = skip_space(text, open + 1);
    if text.get(at) == Some(&b'}') {
        return Some(None);
    }
    loop {
        let key_end = string_end(text, at)?;
        let name = &text[at + 1..key_end - 1];
        if name.contains(&b'\\') {
            return None;
        }
        at = skip_space(text, key_end);
        if text.get(at) != Some(&b':') {
            return None;
        }
        let value = skip_space(text, at + 1);
        if name == key {
            return Some(Some(value));
        }
        at = skip_space(text, value_end(text, value)?);
        match text.get(at) {
            Some(b',') => at = skip_space(text, at + 1),
            Some(b'}') => return Some(None),
            _ => return None,
        }
    }
}

/// The end (exclusive) of the string whose opening quote is at `at`.
fn string_end(text: &[u8], at: usize) -> Option<usize> {
    if text.get(at) != Some(&b'"') {
        return None;
    }
    let mut i = at + 1;
    loop {
        match text.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The end (exclusive) of the value starting at `at`: a string, an object or array (by
/// counting brackets outside strings), or a number, boolean or null.
fn value_end(text: &[u8], at: usize) -> Option<usize> {
    match text.get(at)? {
        b'"' => string_end(text, at),
        b'{' | b'[' => {
            let (mut depth, mut i) = (0usize, at);
            loop {
                match text.get(i)? {
                    b'"' => {
                        i = string_end(text, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let len = text[at..].iter().position(|b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace());
            Some(at + len.unwrap_or(text.len() - at))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn served(stored: &Value, revision: i64) -> Value {
        let text = serde_json::to_vec(stored).unwrap();
        serde_json::from_slice(&with_resource_version(&text, revision).expect("spliced")).unwrap()
    }

    #[test]
    fn adds_the_revision_to_the_metadata() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": "a", "labels": {"x": "y"}, "annotations": {"q": "\"metadata\":{"}},
                         "spec": {"template": {"metadata": {"name": "inner"}}}});
        let mut want = pod.clone();
        want["metadata"]["resourceVersion"] = json!("42");
        assert_eq!(served(&pod, 42), want);
    }

    #[test]
    fn finds_metadata_after_members_that_hold_objects_with_metadata() {
        // Custom resources may have any top-level members, sorted before metadata.
        let obj = json!({"apiVersion": "x/v1", "aaa": {"metadata": {"name": "not this"}, "list": [1, {"b": "]}"}]},
                         "kind": "X", "metadata": {}, "n": -1.5e3, "t": true});
        let mut want = obj.clone();
        want["metadata"]["resourceVersion"] = json!("7");
        assert_eq!(served(&obj, 7), want);
    }

    #[test]
    fn cuts_out_the_metadata_as_partial_object_metadata() {
        let pod = json!({"apiVersion": "v1", "aaa": {"metadata": {"name": "not this"}}, "kind": "Pod",
                         "metadata": {"name": "a", "resourceVersion": "9", "annotations": {"q": "}"}},
                         "spec": {"containers": []}});
        let cut = partial_metadata(&serde_json::to_vec(&pod).unwrap()).expect("cut");
        let want = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": pod["metadata"]});
        assert_eq!(serde_json::from_slice::<Value>(&cut).unwrap(), want);
        assert_eq!(partial_metadata(br#"{"kind":"X"}"#), None);
    }

    #[test]
    fn leaves_unusual_text_to_the_decoder() {
        for text in [
            r#"{"metadata":{"resourceVersion":"3"}}"#,
            r#"{"meta\u0064ata":{}}"#,
            r#"{"kind":"X"}"#,
            r#"{"metadata":"x"}"#,
            r#"{"metadata":{"name":"a"}"#,
            r#"{"metadata":{"name":"a"}} trailing"#,
            r#"{"metadata":{"name" "a"}}"#,
            r#"[1]"#,
            "",
        ] {
            assert_eq!(with_resource_version(text.as_bytes(), 1), None, "{text}");
        }
    }
}
