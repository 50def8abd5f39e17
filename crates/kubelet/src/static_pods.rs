//! Static pods: pods the node runs from manifest files in a folder (`--pod-manifest-path`),
//! without the API server's say, as the kubelet runs a control plane's own pods. The folder
//! is read again every few seconds: a new file starts a pod, a changed one replaces it, a
//! removed one stops it.
//!
//! Each runs under a uid of its own (a hash of its manifest and the node), named
//! `<name>-<node>`, and the API shows it through a mirror pod: a copy marked with the
//! `kubernetes.io/config.mirror` annotation and owned by the Node, which the agent makes
//! again if it is deleted and reports the static pod's status on.

use crate::Agent;
use k8s_openapi::api::core::v1::{Node, Pod, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, PostParams};
use sha2::Digest;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
const HASH_ANNOTATION: &str = "kubernetes.io/config.hash";
const SOURCE_ANNOTATION: &str = "kubernetes.io/config.source";
/// How often the folder is read (the kubelet's fileCheckFrequency is 20 s).
const RESCAN: Duration = Duration::from_secs(5);

/// Whether a pod from the API is a mirror of a static pod (the agent runs the static pod,
/// not the mirror).
pub fn is_mirror(pod: &Pod) -> bool {
    pod.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
}

/// The static pods of the manifests in `dir`, by uid. A file that is not a pod is logged
/// and passed over, as the kubelet passes it over.
pub fn read(dir: &Path, node_name: &str) -> BTreeMap<String, Pod> {
    let mut pods = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return pods };
    let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let hidden = path.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.'));
        if hidden || !path.is_file() {
            continue;
        }
        match std::fs::read(&path).map_err(anyhow::Error::from).and_then(|bytes| static_pod(&bytes, node_name)) {
            Ok(pod) => {
                pods.insert(pod.metadata.uid.clone().unwrap_or_default(), pod);
            }
            Err(e) => tracing::warn!(file = %path.display(), error = format!("{e:#}"), "not a static pod manifest"),
        }
    }
    pods
}

/// A manifest (YAML or JSON) as the static pod the node runs.
fn static_pod(manifest: &[u8], node_name: &str) -> anyhow::Result<Pod> {
    let mut pod: Pod = serde_yaml::from_slice(manifest)?;
    let name =
        pod.metadata.name.clone().filter(|n| !n.is_empty()).ok_or_else(|| anyhow::anyhow!("no metadata.name"))?;
    let hash = hex::encode(&sha2::Sha256::new().chain_update(manifest).chain_update(node_name).finalize()[..16]);
    let meta = &mut pod.metadata;
    meta.name = Some(format!("{name}-{node_name}"));
    meta.namespace = Some(meta.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into()));
    meta.uid = Some(hash.clone());
    let annotations = meta.annotations.get_or_insert_with(Default::default);
    annotations.insert(HASH_ANNOTATION.into(), hash);
    annotations.insert(SOURCE_ANNOTATION.into(), "file".into());
    let spec = pod.spec.as_mut().ok_or_else(|| anyhow::anyhow!("no spec"))?;
    spec.node_name = Some(node_name.to_string());
    // A static pod stays on its node whatever taints it gets, as the kubelet has it.
    spec.tolerations.get_or_insert_with(Vec::new).push(Toleration {
        operator: Some("Exists".into()),
        effect: Some("NoExecute".into()),
        ..Default::default()
    });
    Ok(pod)
}

/// The mirror pod of a static pod: the same pod, for the API, marked and owned by the node.
fn mirror(pod: &Pod, node: &Node) -> Pod {
    let mut mirror = pod.clone();
    let meta = &mut mirror.metadata;
    let hash = meta.uid.take().unwrap_or_default();
    meta.annotations.get_or_insert_with(Default::default).insert(MIRROR_ANNOTATION.into(), hash);
    meta.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: node.metadata.name.clone().unwrap_or_default(),
        uid: node.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        ..Default::default()
    }]);
    mirror.status = None;
    mirror
}

/// Runs the static pods of `dir` for as long as the agent runs: `known` holds them (by
/// uid), for the pod watch to tell them apart and to pass their mirrors' status on.
pub async fn run(agent: Arc<Agent>, dir: std::path::PathBuf) {
    loop {
        let found = tokio::task::block_in_place(|| read(&dir, &agent.config.node_name));
        let gone: Vec<Pod> = {
            let mut known = agent.static_pods.lock().unwrap();
            let gone = known.iter().filter(|(uid, _)| !found.contains_key(*uid)).map(|(_, p)| p.clone()).collect();
            *known = found.clone();
            gone
        };
        for pod in &gone {
            tracing::info!(pod = pod.metadata.name, "the static pod's manifest is gone; stopping it");
            agent.dispatch(pod.metadata.uid.as_deref().unwrap_or(""), Some(deleted(pod)));
        }
        for (uid, pod) in &found {
            if !agent.has_worker(uid) {
                agent.dispatch(uid, Some(pod.clone()));
            }
        }
        if let Err(e) = sync_mirrors(&agent, &found, &gone).await {
            tracing::warn!(error = format!("{e:#}"), "could not update the static pods' mirror pods");
        }
        tokio::time::sleep(RESCAN).await;
    }
}

/// The static pod as deleted now: its worker stops it as any deleted pod, within its grace
/// period and with its preStop hooks.
fn deleted(pod: &Pod) -> Pod {
    let grace = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30);
    let mut pod = pod.clone();
    let at = jiff::Timestamp::now().saturating_add(jiff::SignedDuration::from_secs(grace.max(0)));
    pod.metadata.deletion_timestamp = at.ok().map(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time);
    pod
}

/// Makes the mirror pods that are missing or stale, and deletes those of static pods gone.
async fn sync_mirrors(agent: &Agent, found: &BTreeMap<String, Pod>, gone: &[Pod]) -> anyhow::Result<()> {
    let api = |pod: &Pod| -> Api<Pod> {
        Api::namespaced(agent.client.clone(), pod.metadata.namespace.as_deref().unwrap_or("default"))
    };
    for pod in gone {
        delete_mirror(&api(pod), pod.metadata.name.as_deref().unwrap_or("")).await?;
    }
    let node: Node = Api::all(agent.client.clone()).get(&agent.config.node_name).await?;
    for (uid, pod) in found {
        let pods = api(pod);
        let name = pod.metadata.name.as_deref().unwrap_or("");
        match pods.get_opt(name).await? {
            Some(existing) if mirror_hash(&existing) == Some(uid.as_str()) => continue,
            // A mirror of an older manifest.
            Some(existing) if mirror_hash(&existing).is_some() && bound_here(&existing, agent) => {
                delete_mirror(&pods, name).await?
            }
            // A pod of the API's own took the name: it is not the node's to delete.
            Some(_) => {
                tracing::warn!(pod = name, "another pod has the static pod's name: no mirror pod is made for it");
                continue;
            }
            None => {}
        }
        match pods.create(&PostParams::default(), &mirror(pod, &node)).await {
            Ok(_) => tracing::info!(pod = name, "made the static pod's mirror pod"),
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A mirror pod from the API's watch: its status is passed to the static pod's worker (so
/// that the worker sees what it last reported); a mirror deleted through the API goes at
/// once, and comes back on the next pass while its static pod runs.
pub fn mirror_seen(agent: &Arc<Agent>, mirror: Pod) {
    if mirror.metadata.deletion_timestamp.is_some() {
        let pods: Api<Pod> =
            Api::namespaced(agent.client.clone(), mirror.metadata.namespace.as_deref().unwrap_or("default"));
        let name = mirror.metadata.name.clone().unwrap_or_default();
        tokio::spawn(async move {
            if let Err(e) = delete_mirror(&pods, &name).await {
                tracing::warn!(pod = name, error = format!("{e:#}"), "could not delete a mirror pod");
            }
        });
        return;
    }
    let Some(uid) = mirror_hash(&mirror).map(String::from) else { return };
    let Some(mut pod) = agent.static_pods.lock().unwrap().get(&uid).cloned() else { return };
    pod.status = mirror.status;
    agent.dispatch(&uid, Some(pod));
}

fn bound_here(pod: &Pod, agent: &Agent) -> bool {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(agent.config.node_name.as_str())
}

fn mirror_hash(pod: &Pod) -> Option<&str> {
    pod.metadata.annotations.as_ref()?.get(MIRROR_ANNOTATION).map(String::as_str)
}

async fn delete_mirror(pods: &Api<Pod>, name: &str) -> anyhow::Result<()> {
    match pods.delete(name, &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str =
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: busybox\n";

    #[test]
    fn a_manifest_becomes_a_pod_of_this_node_named_after_it() {
        let pod = static_pod(MANIFEST.as_bytes(), "node-1").unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("web-node-1"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(pod.spec.as_ref().unwrap().node_name.as_deref(), Some("node-1"));
        let uid = pod.metadata.uid.clone().unwrap();
        assert_eq!(pod.metadata.annotations.as_ref().unwrap()[HASH_ANNOTATION], uid);
        // The same manifest on the same node is the same pod; a change makes another.
        assert_eq!(static_pod(MANIFEST.as_bytes(), "node-1").unwrap().metadata.uid, Some(uid.clone()));
        let changed = MANIFEST.replace("busybox", "busybox:1");
        assert_ne!(static_pod(changed.as_bytes(), "node-1").unwrap().metadata.uid, Some(uid));
        assert!(static_pod(b"kind: Pod\nspec: {}\n", "node-1").is_err());
    }

    #[test]
    fn the_mirror_is_marked_owned_by_the_node_and_has_no_uid_of_its_own() {
        let pod = static_pod(MANIFEST.as_bytes(), "node-1").unwrap();
        let node = Node {
            metadata: kube::api::ObjectMeta {
                name: Some("node-1".into()),
                uid: Some("n-uid".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let mirror = mirror(&pod, &node);
        assert!(is_mirror(&mirror) && !is_mirror(&pod));
        assert_eq!(mirror_hash(&mirror), pod.metadata.uid.as_deref());
        assert_eq!(mirror.metadata.uid, None);
        assert_eq!(mirror.metadata.owner_references.as_ref().unwrap()[0].uid, "n-uid");
    }

    #[test]
    fn the_folder_is_read_skipping_hidden_files_and_bad_manifests() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("web.yaml"), MANIFEST).unwrap();
        std::fs::write(dir.path().join(".web.yaml.swp"), MANIFEST).unwrap();
        std::fs::write(dir.path().join("broken.yaml"), "not: [a pod").unwrap();
        let pods = read(dir.path(), "node-1");
        assert_eq!(pods.len(), 1);
        assert!(read(&dir.path().join("missing"), "node-1").is_empty());
    }
}
