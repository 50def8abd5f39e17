//! The pods bound to this node, from a watch, each handed to its worker; and pods left on
//! disk that the API no longer has (deleted while the agent was down) are taken down.
//! Mirror pods go to `static_pods.rs`: the agent runs their static pods instead.

use crate::{Agent, static_pods};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher;
use std::collections::HashSet;
use std::sync::Arc;

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

pub async fn watch(agent: Arc<Agent>) -> anyhow::Result<()> {
    let pods: Api<Pod> = Api::all(agent.client.clone());
    let selector = format!("spec.nodeName={}", agent.config.node_name);
    let mut events = std::pin::pin!(watcher(pods, watcher::Config::default().fields(&selector)));
    // The pods a (re)list has seen, to find those gone when it ends.
    let mut listed: HashSet<String> = HashSet::new();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => listed.clear(),
            Ok(watcher::Event::InitApply(pod) | watcher::Event::Apply(pod)) if static_pods::is_mirror(&pod) => {
                static_pods::mirror_seen(&agent, pod)
            }
            Ok(watcher::Event::Delete(pod)) if static_pods::is_mirror(&pod) => {}
            Ok(watcher::Event::InitApply(pod)) => {
                listed.insert(uid(&pod));
                agent.dispatch(&uid(&pod), Some(pod));
            }
            Ok(watcher::Event::InitDone) => {
                // Static pods run from their manifests, whatever the API has.
                listed.extend(agent.static_pods.lock().unwrap().keys().cloned());
                for gone in on_disk(&agent).difference(&listed) {
                    agent.dispatch(gone, None);
                }
            }
            Ok(watcher::Event::Apply(pod)) => agent.dispatch(&uid(&pod), Some(pod)),
            Ok(watcher::Event::Delete(pod)) => agent.dispatch(&uid(&pod), None),
            Err(e) => tracing::warn!(error = %e, "watching the node's pods failed; retrying"),
        }
    }
    Ok(())
}

/// The pods that have a folder on this node.
fn on_disk(agent: &Agent) -> HashSet<String> {
    let pods = agent.config.root.join("pods");
    std::fs::read_dir(pods).into_iter().flatten().flatten().filter_map(|e| e.file_name().into_string().ok()).collect()
}
