//! What the node knows of a pod's containers, read from the runtime's folders: each
//! container's latest run and the one before it. Reading it from disk, not from memory, is
//! what lets a restarted agent carry on where the last one stopped.

use runtime::container::{Exited, RunState, run_state};
use std::path::{Path, PathBuf};

/// One run of a container.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// The container's restart count when this run began.
    pub attempt: u32,
    pub dir: PathBuf,
    pub state: RunState,
}

/// The runs of one container that its status reports: the latest, and the one before it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub latest: Option<Run>,
    pub previous: Option<Run>,
}

/// Reads the latest two runs of a container.
pub fn history(pod_dir: &Path, container: &str) -> History {
    let folder = pod_dir.join("containers").join(container);
    let mut attempts: Vec<u32> = std::fs::read_dir(&folder)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    attempts.sort_unstable();
    let run = |attempt: u32| {
        let dir = runtime::paths::container_dir(pod_dir, container, attempt);
        Run { attempt, state: lost_if_unwatched(&dir, run_state(&dir)), dir }
    };
    let mut latest = attempts.iter().rev().map(|a| run(*a));
    History { latest: latest.next(), previous: latest.next() }
}

/// A container whose shim is gone without recording its end (the machine restarted, or the
/// shim was killed) cannot be watched or stopped: it is reported ended, as the kubelet
/// reports a container it cannot find. The verdict is recorded where the shim would have.
fn lost_if_unwatched(dir: &Path, state: RunState) -> RunState {
    match state {
        RunState::Running(started) if !runtime::container::shim_alive(&started) => {
            let exited = Exited {
                exit_code: 137,
                signal: None,
                reason: "ContainerStatusUnknown".into(),
                message: "The container could not be located when the pod was terminated".into(),
                started_at: Some(started.started_at),
                finished_at: chrono::Utc::now(),
            };
            if let Err(e) =
                runtime::container::write_json_atomically(&dir.join(runtime::container::EXITED_FILE), &exited)
            {
                tracing::warn!(dir = %dir.display(), error = %e, "could not record a lost container's end");
            }
            RunState::Exited(exited)
        }
        other => other,
    }
}

impl Run {
    pub fn running(&self) -> bool {
        matches!(self.state, RunState::Running(_))
    }

    pub fn exit_code(&self) -> Option<i32> {
        match &self.state {
            RunState::Exited(e) => Some(e.exit_code),
            _ => None,
        }
    }
}
