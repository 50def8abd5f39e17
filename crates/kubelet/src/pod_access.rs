//! The kubelet API's view of this node's pods, read from the runtime's folders: where each
//! container's log is, what runs a command in a container or attaches to it, and where a
//! pod's ports are.

use crate::runs::history;
use crate::server::{LogSource, PodError, Pods, Runner, Target};
use crate::streaming::{attach, exec};
use k8s_openapi::api::core::v1::Pod;
use runtime::container::RunState;
use std::path::PathBuf;
use std::sync::Arc;

pub struct NodePods {
    pub root: PathBuf,
    /// The program that runs commands in containers (`<program> shim-exec`): skiff.
    pub shim_program: PathBuf,
}

impl NodePods {
    /// Every pod of this node, from its folder's record.
    fn records(&self) -> impl Iterator<Item = Pod> {
        let pods = std::fs::read_dir(self.root.join("pods")).into_iter().flatten().flatten();
        pods.filter_map(|e| serde_json::from_slice(&std::fs::read(e.path().join("pod.json")).ok()?).ok())
    }

    fn find(&self, namespace: &str, name: &str) -> Result<Pod, PodError> {
        self.records()
            .find(|pod| {
                pod.metadata.namespace.as_deref() == Some(namespace) && pod.metadata.name.as_deref() == Some(name)
            })
            .ok_or_else(|| PodError::pod_not_found(name))
    }

    fn pod_dir(&self, pod: &Pod) -> PathBuf {
        runtime::paths::pod_dir(&self.root, pod.metadata.uid.as_deref().unwrap_or(""))
    }

    /// The run folder of a container of the pod that runs now.
    fn running(&self, namespace: &str, name: &str, container: &str) -> Result<PathBuf, PodError> {
        let pod = self.find(namespace, name)?;
        if !crate::pod_worker::all_containers(&pod).any(|c| c.name == container) {
            return Err(PodError::container_not_found(container, name));
        }
        match history(&self.pod_dir(&pod), container).latest {
            Some(run) if run.running() => Ok(run.dir),
            _ => Err(PodError::not_running(container, name)),
        }
    }
}

impl Pods for NodePods {
    fn log(&self, namespace: &str, name: &str, container: &str, previous: bool) -> Result<LogSource, PodError> {
        let pod = self.find(namespace, name)?;
        let known = crate::pod_worker::all_containers(&pod).any(|c| c.name == container);
        if !known {
            return Err(PodError::container_not_found(container, name));
        }
        let pod_dir = self.pod_dir(&pod);
        let runs = history(&pod_dir, container);
        let run = if previous {
            runs.previous.ok_or_else(|| PodError::no_previous(container, name))?
        } else {
            runs.latest.ok_or_else(|| PodError::waiting(container, name, "ContainerCreating"))?
        };
        let path = runtime::paths::container_log(&pod_dir, container, run.attempt);
        let dir = run.dir.clone();
        // A run whose folder is gone (its pod was deleted and torn down) has ended too.
        let exited: runtime::cri_log::Exited =
            Arc::new(move || !dir.exists() || matches!(runtime::container::run_state(&dir), RunState::Exited(_)));
        Ok(LogSource { path, exited })
    }

    fn exec(&self, namespace: &str, pod: &str, container: &str, command: Vec<String>) -> Result<Runner, PodError> {
        let run_dir = self.running(namespace, pod, container)?;
        let shim = self.shim_program.clone();
        Ok(Box::new(move |session| Box::pin(async move { exec::run(&shim, &run_dir, command, session).await })))
    }

    fn attach(&self, namespace: &str, pod: &str, container: &str) -> Result<Runner, PodError> {
        let run_dir = self.running(namespace, pod, container)?;
        Ok(Box::new(move |session| Box::pin(async move { attach::run(&run_dir, session).await })))
    }

    fn port_forward(&self, namespace: &str, name: &str) -> Result<Target, PodError> {
        let pod = self.find(namespace, name)?;
        Ok(Target {
            name: name.to_string(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            netns: runtime::sandbox::existing(&self.pod_dir(&pod), "net"),
        })
    }

    fn all(&self) -> Vec<serde_json::Value> {
        self.records().filter_map(|pod| serde_json::to_value(pod).ok()).collect()
    }
}
