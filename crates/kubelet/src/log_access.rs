//! The kubelet API's view of this node's pods: where each container's log is.

use crate::runs::history;
use crate::server::{LogError, LogSource, Pods};
use k8s_openapi::api::core::v1::Pod;
use runtime::container::RunState;
use std::path::PathBuf;
use std::sync::Arc;

pub struct Logs {
    pub root: PathBuf,
}

impl Logs {
    /// A pod of this node, from its folder's record.
    fn find(&self, namespace: &str, name: &str) -> Option<Pod> {
        let pods = std::fs::read_dir(self.root.join("pods")).ok()?;
        pods.flatten().find_map(|e| {
            let pod: Pod = serde_json::from_slice(&std::fs::read(e.path().join("pod.json")).ok()?).ok()?;
            (pod.metadata.namespace.as_deref() == Some(namespace) && pod.metadata.name.as_deref() == Some(name))
                .then_some(pod)
        })
    }
}

impl Pods for Logs {
    fn log(&self, namespace: &str, name: &str, container: &str, previous: bool) -> Result<LogSource, LogError> {
        let pod = self.find(namespace, name).ok_or_else(|| LogError::pod_not_found(name))?;
        let known = crate::pod_worker::all_containers(&pod).any(|c| c.name == container);
        if !known {
            return Err(LogError::container_not_found(container, name));
        }
        let pod_dir = runtime::paths::pod_dir(&self.root, pod.metadata.uid.as_deref().unwrap_or(""));
        let runs = history(&pod_dir, container);
        let run = if previous {
            runs.previous.ok_or_else(|| LogError::no_previous(container, name))?
        } else {
            runs.latest.ok_or_else(|| LogError::waiting(container, name, "ContainerCreating"))?
        };
        let path = runtime::paths::container_log(&pod_dir, container, run.attempt);
        let dir = run.dir.clone();
        let exited: runtime::cri_log::Exited =
            Arc::new(move || matches!(runtime::container::run_state(&dir), RunState::Exited(_)));
        Ok(LogSource { path, exited })
    }
}
