//! The REST operations of each resource, as OpenAPI describes them: the paths, verbs,
//! parameters, request bodies and responses, with the `x-kubernetes-action` and
//! `x-kubernetes-group-version-kind` extensions clients look for (kubectl finds out from the
//! PATCH operation of a kind whether the server takes strategic merge patches and
//! `fieldValidation`). Written in a neutral form that the v2 and v3 documents render.

use registry::{ResourceInfo, Verbs};

pub struct PathItem {
    pub path: String,
    /// `name` and `namespace` as they appear in the path.
    pub path_params: Vec<(&'static str, String)>,
    pub operations: Vec<Operation>,
}

pub struct Operation {
    pub method: &'static str,
    pub id: String,
    pub description: String,
    pub action: &'static str,
    pub tag: String,
    pub gvk: (&'static str, &'static str, String),
    pub query: &'static [(&'static str, &'static str, &'static str)],
    /// Request body media types and the definition they carry.
    pub body: Option<(&'static [&'static str], String)>,
    /// Response codes with the definition of their body.
    pub responses: Vec<(u16, String)>,
    /// Media types of the response bodies.
    pub produces: &'static [&'static str],
}

const OBJECT_TYPES: &[&str] = &["application/json", "application/yaml"];
const LIST_TYPES: &[&str] = &["application/json", "application/yaml", "application/json;stream=watch"];
const BODY_TYPES: &[&str] = &["application/json", "application/yaml"];
const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];
const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";

// (name, type, description) of the query parameters, per kind of operation.
const WRITE: &[(&str, &str, &str)] = &[
    ("dryRun", "string", "When present, the change is validated and not persisted. The only value is All."),
    ("fieldManager", "string", "A name for the actor making the change, recorded in managedFields."),
    ("fieldValidation", "string", "What to do with unknown or duplicate fields: Ignore, Warn (the default) or Strict."),
];
const PATCH_QUERY: &[(&str, &str, &str)] = &[
    ("dryRun", "string", "When present, the change is validated and not persisted. The only value is All."),
    ("fieldManager", "string", "A name for the actor making the change; required for apply patches."),
    ("fieldValidation", "string", "What to do with unknown or duplicate fields: Ignore, Warn (the default) or Strict."),
    ("force", "boolean", "For apply patches: take over the fields other managers own instead of conflicting."),
];
const DELETE: &[(&str, &str, &str)] = &[
    ("dryRun", "string", "When present, the deletion is validated and not persisted. The only value is All."),
    ("gracePeriodSeconds", "integer", "Seconds before the object is deleted; zero deletes immediately."),
    ("propagationPolicy", "string", "Garbage collection of dependents: Orphan, Background or Foreground."),
    ("orphanDependents", "boolean", "Deprecated: use propagationPolicy."),
];
const LIST: &[(&str, &str, &str)] = &[
    ("allowWatchBookmarks", "boolean", "Asks a watch for BOOKMARK events."),
    ("continue", "string", "The continue token of the previous page of a paginated list."),
    ("fieldSelector", "string", "Restricts the objects returned by their fields."),
    ("labelSelector", "string", "Restricts the objects returned by their labels."),
    ("limit", "integer", "The most objects to return in one page."),
    ("resourceVersion", "string", "Which version of the collection to read or watch from."),
    ("resourceVersionMatch", "string", "How resourceVersion applies to a list: Exact or NotOlderThan."),
    ("sendInitialEvents", "boolean", "Starts a watch with the current objects, ended by a BOOKMARK."),
    ("timeoutSeconds", "integer", "How long a list or watch may take."),
    ("watch", "boolean", "Watch for changes instead of listing."),
];
const NONE: &[(&str, &str, &str)] = &[];

/// The group as it appears in operation ids: `Core`, `Apps`, `RbacAuthorization`.
fn group_id(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    group.trim_end_matches(".k8s.io").split('.').map(capitalize).collect()
}

/// The tag of the group version: `core_v1`, `apps_v1`, `rbacAuthorization_v1`.
fn tag(group: &str, version: &str) -> String {
    let mut id = group_id(group);
    if let Some(first) = id.get_mut(..1) {
        first.make_ascii_lowercase();
    }
    format!("{id}_{version}")
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
}

impl Operation {
    fn new(r: &ResourceInfo, method: &'static str, action: &'static str, id: String, description: String) -> Operation {
        Operation {
            method,
            id,
            description,
            action,
            tag: tag(r.group, r.version),
            gvk: (r.group, r.version, r.kind.to_string()),
            query: NONE,
            body: None,
            responses: Vec::new(),
            produces: OBJECT_TYPES,
        }
    }
    fn query(mut self, query: &'static [(&'static str, &'static str, &'static str)]) -> Self {
        self.query = query;
        self
    }
    fn body(mut self, types: &'static [&'static str], def: &str) -> Self {
        self.body = Some((types, def.to_string()));
        self
    }
    fn responds(mut self, codes: &[u16], def: &str) -> Self {
        self.responses.extend(codes.iter().map(|c| (*c, def.to_string())));
        self
    }
    fn produces(mut self, types: &'static [&'static str]) -> Self {
        self.produces = types;
        self
    }
}

impl PathItem {
    fn new(r: &ResourceInfo, path: String, named: bool) -> PathItem {
        let mut path_params = Vec::new();
        if named {
            path_params.push(("name", format!("name of the {}", r.kind)));
        }
        if r.namespaced && path.contains("{namespace}") {
            path_params.push(("namespace", "object name and auth scope, such as for teams and projects".into()));
        }
        PathItem { path, path_params, operations: Vec::new() }
    }
}

/// The path items of one resource.
pub fn resource_paths(r: &ResourceInfo) -> Vec<PathItem> {
    let prefix =
        if r.group.is_empty() { format!("/api/{}", r.version) } else { format!("/apis/{}/{}", r.group, r.version) };
    let scope = if r.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{prefix}/{}", r.plural)
    };
    let id = |verb: &str, namespaced: bool, suffix: &str| {
        let ns = if namespaced && r.namespaced { "Namespaced" } else { "" };
        format!("{verb}{}{}{ns}{}{suffix}", group_id(r.group), capitalize(r.version), r.kind)
    };
    let kind_def = r.definition.as_str();
    let list_def = format!("{kind_def}List");

    let mut collection = PathItem::new(r, scope.clone(), false);
    let create = Operation::new(r, "post", "post", id("create", true, ""), format!("create a {}", r.kind))
        .query(WRITE)
        .body(BODY_TYPES, kind_def)
        .responds(&[200, 201, 202], kind_def);
    if r.verbs == Verbs::CreateOnly {
        collection.operations.push(create);
        return vec![collection];
    }
    let list = |namespaced| {
        let suffix = if namespaced { "" } else { "ForAllNamespaces" };
        Operation::new(
            r,
            "get",
            "list",
            id("list", namespaced, suffix),
            format!("list or watch objects of kind {}", r.kind),
        )
        .query(LIST)
        .responds(&[200], &list_def)
        .produces(LIST_TYPES)
    };
    collection.operations.push(list(true));
    collection.operations.push(create);
    collection.operations.push(
        Operation::new(
            r,
            "delete",
            "deletecollection",
            id("deletecollection", true, ""),
            format!("delete collection of {}", r.kind),
        )
        .query(DELETE)
        .body(BODY_TYPES, DELETE_OPTIONS)
        .responds(&[200], STATUS),
    );

    let mut object = PathItem::new(r, format!("{scope}/{{name}}"), true);
    object.operations.extend(object_operations(r, &id, "", kind_def, "the specified"));
    object.operations.push(
        Operation::new(r, "delete", "delete", id("delete", true, ""), format!("delete a {}", r.kind))
            .query(DELETE)
            .body(BODY_TYPES, DELETE_OPTIONS)
            .responds(&[200, 202], STATUS),
    );
    let mut items = vec![collection, object];
    if r.namespaced {
        let mut all = PathItem::new(r, format!("{prefix}/{}", r.plural), false);
        all.operations.push(list(false));
        items.push(all);
    }
    if r.status {
        let mut status = PathItem::new(r, format!("{scope}/{{name}}/status"), true);
        status.operations.extend(object_operations(r, &id, "Status", kind_def, "status of the specified"));
        items.push(status);
    }
    if r.scale {
        let mut scale = PathItem::new(r, format!("{scope}/{{name}}/scale"), true);
        let mut ops = object_operations(r, &id, "Scale", SCALE, "scale of the specified");
        for o in &mut ops {
            o.gvk = ("autoscaling", "v1", "Scale".into());
        }
        scale.operations.extend(ops);
        items.push(scale);
    }
    items
}

/// read, replace and patch of an object or of one of its subresources.
fn object_operations(
    r: &ResourceInfo,
    id: &dyn Fn(&str, bool, &str) -> String,
    suffix: &str,
    def: &str,
    what: &str,
) -> Vec<Operation> {
    vec![
        Operation::new(r, "get", "get", id("read", true, suffix), format!("read {what} {}", r.kind))
            .responds(&[200], def),
        Operation::new(r, "put", "put", id("replace", true, suffix), format!("replace {what} {}", r.kind))
            .query(WRITE)
            .body(BODY_TYPES, def)
            .responds(&[200, 201], def),
        Operation::new(r, "patch", "patch", id("patch", true, suffix), format!("partially update {what} {}", r.kind))
            .query(PATCH_QUERY)
            .body(PATCH_TYPES, PATCH)
            .responds(&[200, 201], def),
    ]
}
