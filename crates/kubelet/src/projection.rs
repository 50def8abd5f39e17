//! The files of a volume whose content comes from the API. A configMap, secret or
//! downwardAPI volume is read as a projected volume with that one source, so one path
//! builds them all: each source adds its files (later sources win a shared path), each file
//! with its item's mode, else the volume's defaultMode, else 0644.

use crate::atomic_writer::File;
use k8s_openapi::api::core::v1::{
    ConfigMapProjection, DownwardAPIProjection, KeyToPath, Pod, ProjectedVolumeSource, SecretProjection, Volume,
    VolumeProjection,
};
use std::collections::BTreeMap;

/// The files' mode when the volume does not say, as Kubernetes defaults defaultMode.
const DEFAULT_MODE: i32 = 0o644;

/// The volume as a projection, or `None` for a volume of another kind.
pub fn of(volume: &Volume) -> Option<ProjectedVolumeSource> {
    let single = |default_mode, source| ProjectedVolumeSource {
        default_mode,
        sources: Some(vec![source]),
        ..Default::default()
    };
    if let Some(v) = &volume.config_map {
        let source = ConfigMapProjection { name: v.name.clone(), items: v.items.clone(), optional: v.optional };
        return Some(single(v.default_mode, VolumeProjection { config_map: Some(source), ..Default::default() }));
    }
    if let Some(v) = &volume.secret {
        let name = v.secret_name.clone().unwrap_or_default();
        let source = SecretProjection { name, items: v.items.clone(), optional: v.optional };
        return Some(single(v.default_mode, VolumeProjection { secret: Some(source), ..Default::default() }));
    }
    if let Some(v) = &volume.downward_api {
        let source = DownwardAPIProjection { items: v.items.clone() };
        return Some(single(v.default_mode, VolumeProjection { downward_api: Some(source), ..Default::default() }));
    }
    volume.projected.clone()
}

/// The API objects a projection reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    ConfigMap,
    Secret,
}

impl Kind {
    /// As the kubelet's messages name it.
    fn noun(self) -> &'static str {
        match self {
            Kind::ConfigMap => "configmap",
            Kind::Secret => "secret",
        }
    }
}

/// The data of the configMaps and secrets a projection reads, fetched beforehand: `None`
/// for one that does not exist.
pub type Objects = BTreeMap<(Kind, String), Option<BTreeMap<String, Vec<u8>>>>;

/// The configMaps and secrets the projection reads.
pub fn reads(projection: &ProjectedVolumeSource) -> Vec<(Kind, String)> {
    let sources = projection.sources.iter().flatten();
    sources
        .filter_map(|s| {
            s.config_map
                .as_ref()
                .map(|c| (Kind::ConfigMap, c.name.clone()))
                .or_else(|| s.secret.as_ref().map(|c| (Kind::Secret, c.name.clone())))
        })
        .collect()
}

/// The files the projection holds, or the reason it cannot be set up.
pub fn files(
    projection: &ProjectedVolumeSource,
    pod: &Pod,
    objects: &Objects,
    allocatable: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, File>, String> {
    let mode = |item_mode: Option<i32>| (item_mode.or(projection.default_mode).unwrap_or(DEFAULT_MODE) & 0o7777) as u32;
    let mut files = BTreeMap::new();
    for source in projection.sources.iter().flatten() {
        let keyed = |kind: Kind, name: &str, items: Option<&Vec<KeyToPath>>, optional: Option<bool>| {
            let optional = optional.unwrap_or(false);
            let data = match objects.get(&(kind, name.to_string())) {
                Some(Some(data)) => data.clone(),
                _ if optional => BTreeMap::new(),
                _ => return Err(format!("{} {name:?} not found", kind.noun())),
            };
            keys(data, items, optional, kind, &mode)
        };
        if let Some(s) = &source.config_map {
            files.extend(keyed(Kind::ConfigMap, &s.name, s.items.as_ref(), s.optional)?);
        } else if let Some(s) = &source.secret {
            files.extend(keyed(Kind::Secret, &s.name, s.items.as_ref(), s.optional)?);
        } else if let Some(s) = &source.downward_api {
            for item in s.items.iter().flatten() {
                let content = crate::downward_api::render(pod, item, allocatable)?.into_bytes();
                files.insert(item.path.clone(), File { content, mode: mode(item.mode) });
            }
        } else if source.service_account_token.is_some() {
            return Err("this node cannot issue service account tokens yet: the API server does not serve \
                        TokenRequest (serviceaccounts/token)"
                .into());
        } else if source.cluster_trust_bundle.is_some() {
            return Err("this node cannot project ClusterTrustBundles yet".into());
        } else if source.pod_certificate.is_some() {
            return Err("this node cannot issue pod certificates yet".into());
        }
    }
    Ok(files)
}

/// A configMap's or secret's files: each key, or each listed item under its path. A listed
/// key the source lacks is an error unless the source is optional.
fn keys(
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    optional: bool,
    kind: Kind,
    mode: &impl Fn(Option<i32>) -> u32,
) -> Result<BTreeMap<String, File>, String> {
    let Some(items) = items else {
        return Ok(data.into_iter().map(|(k, content)| (k, File { content, mode: mode(None) })).collect());
    };
    let mut files = BTreeMap::new();
    for item in items {
        match data.get(&item.key) {
            Some(content) => {
                files.insert(item.path.clone(), File { content: content.clone(), mode: mode(item.mode) });
            }
            None if optional => {}
            None => return Err(format!("{} references non-existent config key: {}", kind.noun(), item.key)),
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn projected(value: serde_json::Value) -> ProjectedVolumeSource {
        serde_json::from_value(value).unwrap()
    }

    fn objects() -> Objects {
        let data = |pairs: &[(&str, &str)]| {
            Some(pairs.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect::<BTreeMap<_, _>>())
        };
        [
            ((Kind::ConfigMap, "app".to_string()), data(&[("color", "blue"), ("size", "L")])),
            ((Kind::ConfigMap, "kube-root-ca.crt".to_string()), data(&[("ca.crt", "PEM")])),
            ((Kind::Secret, "creds".to_string()), data(&[("password", "hunter2")])),
            ((Kind::Secret, "gone".to_string()), None),
        ]
        .into()
    }

    fn pod() -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": "p", "labels": {"app": "shop"}}, "spec": {"containers": []}}),
        )
        .unwrap()
    }

    #[test]
    fn sources_combine_with_their_items_and_modes() {
        let projection = projected(json!({"defaultMode": 0o440, "sources": [
            {"configMap": {"name": "app"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"secret": {"name": "creds", "items": [{"key": "password", "path": "auth/pw", "mode": 0o400}]}},
            {"secret": {"name": "gone", "optional": true}},
            {"downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        ]}));
        assert_eq!(reads(&projection).len(), 4);
        let files = files(&projection, &pod(), &objects(), &BTreeMap::new()).unwrap();
        let names: Vec<&str> = files.keys().map(String::as_str).collect();
        assert_eq!(names, ["auth/pw", "ca.crt", "color", "labels", "size"]);
        assert_eq!(files["auth/pw"], File { content: b"hunter2".to_vec(), mode: 0o400 });
        assert_eq!(files["ca.crt"], File { content: b"PEM".to_vec(), mode: 0o440 });
        assert_eq!(files["labels"].content, b"app=\"shop\"");
    }

    #[test]
    fn missing_sources_and_keys_fail_unless_optional() {
        let fail = |value| files(&projected(value), &pod(), &objects(), &BTreeMap::new()).unwrap_err();
        assert_eq!(fail(json!({"sources": [{"secret": {"name": "gone"}}]})), "secret \"gone\" not found");
        assert_eq!(
            fail(json!({"sources": [{"configMap": {"name": "app", "items": [{"key": "zz", "path": "zz"}]}}]})),
            "configmap references non-existent config key: zz"
        );
        let optional = json!({"sources": [{"configMap": {"name": "app", "optional": true, "items": [{"key": "zz", "path": "zz"}]}}]});
        assert!(files(&projected(optional), &pod(), &objects(), &BTreeMap::new()).unwrap().is_empty());
        assert!(
            fail(json!({"sources": [{"serviceAccountToken": {"path": "token"}}]})).contains("service account tokens")
        );
    }

    #[test]
    fn single_source_volumes_read_as_projections() {
        let volume: Volume = serde_json::from_value(json!({
            "name": "v", "secret": {"secretName": "creds", "defaultMode": 0o600}
        }))
        .unwrap();
        let files = files(&of(&volume).unwrap(), &pod(), &objects(), &BTreeMap::new()).unwrap();
        assert_eq!(files["password"], File { content: b"hunter2".to_vec(), mode: 0o600 });
        assert!(of(&serde_json::from_value(json!({"name": "v", "emptyDir": {}})).unwrap()).is_none());
    }
}
