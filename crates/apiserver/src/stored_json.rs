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
    Some(member_span(text, open, key)?.map(|span| span.value))
}

/// Where a member is in the text, and where its neighbours' separators are.
struct MemberSpan {
    /// The end of the previous member's value (or just after the `{` if this is the first).
    after_previous: usize,
    /// The member's key's opening quote.
    key: usize,
    value: usize,
}

fn member_span(text: &[u8], open: usize, key: &[u8]) -> Option<Option<MemberSpan>> {
    if text.get(open) != Some(&b'{') {
        return None;
    }
    let mut after_previous = open + 1;
    let mut at = skip_space(text, open + 1);
    if text.get(at) == Some(&b'}') {
        return Some(None);
    }
    loop {
        let key_start = at;
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
            return Some(Some(MemberSpan { after_previous, key: key_start, value }));
        }
        after_previous = value_end(text, value)?;
        at = skip_space(text, after_previous);
        match text.get(at) {
            Some(b',') => at = skip_space(text, at + 1),
            Some(b'}') => return Some(None),
            _ => return None,
        }
    }
}

/// `json` (an object, a list of objects or a watch event) without the managedFields in its
/// objects' metadata. `None` when it has none, or is not the plain shape this expects.
pub fn without_managed_fields(json: &[u8]) -> Option<Vec<u8>> {
    let top = skip_space(json, 0);
    let objects = match member(json, top, b"object")? {
        Some(object) if member(json, top, b"type")?.is_some() => vec![object],
        _ => match member(json, top, b"items")? {
            Some(items) if json.get(items) == Some(&b'[') => elements(json, items)?,
            _ => vec![top],
        },
    };
    let mut cuts = Vec::new();
    for object in objects {
        let Some(metadata) = member(json, object, b"metadata")? else { continue };
        if let Some(span) = member_span(json, metadata, b"managedFields")? {
            let end = value_end(json, span.value)?;
            let next = skip_space(json, end);
            // Take the comma after it, or before it if it is the last member.
            cuts.push(match json.get(next)? {
                b',' => (span.key, skip_space(json, next + 1)),
                _ => (span.after_previous, end),
            });
        }
    }
    if cuts.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(json.len());
    let mut from = 0;
    for (start, end) in cuts {
        out.extend_from_slice(&json[from..start]);
        from = end;
    }
    out.extend_from_slice(&json[from..]);
    Some(out)
}

/// The members of the object in `json` that the JSON `pointers` name, and only those, as a
/// skeleton of the object: a selector reads a field or two of objects thousands of bytes long.
/// A pointer to what the object lacks is left out. `None` when the text is not the plain
/// shape this expects (a pointer crosses something other than an object, an escaped key).
pub fn pick(json: &[u8], pointers: &[String]) -> Option<serde_json::Value> {
    let mut skeleton = serde_json::Value::Object(Default::default());
    'pointers: for pointer in pointers {
        let mut at = skip_space(json, 0);
        let mut into = &mut skeleton;
        let names: Vec<&str> = pointer.split('/').skip(1).collect();
        if names.is_empty() || names.iter().any(|n| n.contains('~')) {
            return None;
        }
        for name in &names {
            match member(json, at, name.as_bytes())? {
                Some(value) => at = value,
                None => continue 'pointers,
            }
        }
        let leaf = serde_json::from_slice(&json[at..value_end(json, at)?]).ok()?;
        let (last, parents) = names.split_last()?;
        for name in parents {
            into = into.as_object_mut()?.entry(*name).or_insert_with(|| serde_json::Value::Object(Default::default()));
        }
        into.as_object_mut()?.insert(last.to_string(), leaf);
    }
    Some(skeleton)
}

/// Where each element of the array opening at `open` starts.
fn elements(text: &[u8], open: usize) -> Option<Vec<usize>> {
    let mut starts = Vec::new();
    let mut at = skip_space(text, open + 1);
    if text.get(at) == Some(&b']') {
        return Some(starts);
    }
    loop {
        starts.push(at);
        at = skip_space(text, value_end(text, at)?);
        match text.get(at)? {
            b',' => at = skip_space(text, at + 1),
            b']' => return Some(starts),
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
        let want =
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": pod["metadata"]});
        assert_eq!(serde_json::from_slice::<Value>(&cut).unwrap(), want);
        assert_eq!(partial_metadata(br#"{"kind":"X"}"#), None);
    }

    fn cut(value: &Value) -> Option<Value> {
        let text = serde_json::to_vec(value).unwrap();
        without_managed_fields(&text).map(|out| serde_json::from_slice(&out).expect("still JSON"))
    }

    #[test]
    fn cuts_managed_fields_out_of_an_object_a_list_and_a_watch_event() {
        let fields = json!([{"manager": "m", "fieldsV1": {"f:metadata": {"f:managedFields": {}}}}]);
        let pod = |mut metadata: Value| {
            metadata["managedFields"] = fields.clone();
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": {"managedFields": [1]}})
        };
        let without = |mut object: Value| {
            object["metadata"].as_object_mut().unwrap().remove("managedFields");
            object
        };
        // First, last and only member of the metadata.
        for metadata in [json!({"name": "a", "uid": "u"}), json!({"name": "a"}), json!({})] {
            let object = pod(metadata);
            assert_eq!(cut(&object), Some(without(object.clone())));
        }
        let list = json!({"kind": "PodList", "metadata": {"resourceVersion": "5"},
                          "items": [pod(json!({"name": "a"})), pod(json!({"name": "b"})), {"metadata": {"name": "c"}}]});
        let want = json!({"kind": "PodList", "metadata": {"resourceVersion": "5"},
                          "items": [without(pod(json!({"name": "a"}))), without(pod(json!({"name": "b"}))), {"metadata": {"name": "c"}}]});
        assert_eq!(cut(&list), Some(want));
        let event = json!({"type": "MODIFIED", "object": pod(json!({"name": "a"}))});
        assert_eq!(cut(&event), Some(json!({"type": "MODIFIED", "object": without(pod(json!({"name": "a"})))})));
    }

    #[test]
    fn leaves_text_without_managed_fields_alone() {
        assert_eq!(cut(&json!({"kind": "Pod", "metadata": {"name": "a"}})), None);
        assert_eq!(cut(&json!({"kind": "Status", "code": 404})), None);
        assert_eq!(without_managed_fields(br#"{"metadata":{"managedFields":[}"#), None);
        assert_eq!(without_managed_fields(b"{\"type\":\"ADDED\",\"object\":{\"metad"), None);
    }

    #[test]
    fn picks_the_members_pointers_name() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": "a", "labels": {"app": "web", "q": "\"spec\":{"}},
                         "spec": {"containers": [{"name": "c"}], "nodeName": "n1", "hostNetwork": true},
                         "status": {"phase": "Running"}});
        let text = serde_json::to_vec(&pod).unwrap();
        let pointers: Vec<String> =
            ["/metadata/labels", "/spec/nodeName", "/spec/hostNetwork", "/status/podIP"].map(String::from).to_vec();
        let want = json!({"metadata": {"labels": pod["metadata"]["labels"]},
                          "spec": {"nodeName": "n1", "hostNetwork": true}});
        assert_eq!(pick(&text, &pointers), Some(want));
        for pointer in pointers.iter().chain(&["/metadata/name".to_string(), "/kind".to_string()]) {
            let picked = pick(&text, std::slice::from_ref(pointer)).unwrap();
            assert_eq!(picked.pointer(pointer), pod.pointer(pointer), "{pointer}");
        }
        assert_eq!(pick(&text, &[]), Some(json!({})));
        assert_eq!(pick(br#"{"spec":null}"#, &["/spec/nodeName".to_string()]), None);
        assert_eq!(pick(br#"{"sp\u0065c":{}}"#, &["/spec/nodeName".to_string()]), None);
        assert_eq!(pick(br#"{"spec":{"nodeName":"#, &["/spec/nodeName".to_string()]), None);
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
