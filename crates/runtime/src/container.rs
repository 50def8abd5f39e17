//! One run of a container: what the agent asks for (`ContainerSpec`), how it starts one
//! (through the shim), and what it reads back (`Started`, `Exited`).
//!
//! The agent writes `spec.json` into the run's folder and starts `skiff shim <folder>`. The
//! shim answers through files in the same folder, so that an agent that restarts reads the
//! same answers: `state.json` once the container runs, `exit.json` once it has ended (or
//! could not start).

use crate::cgroup::Limits;
use crate::security::Security;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything the shim needs to set up and run one container.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// The image's unpacked layers, bottom first.
    pub layers: Vec<PathBuf>,
    /// The command line; the first word is looked up in the container's PATH.
    pub args: Vec<String>,
    /// `NAME=value` pairs.
    pub env: Vec<String>,
    /// Working directory inside the container (made if missing).
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub supplemental_groups: Vec<u32>,
    /// Namespaces of the pod sandbox to join (bind-mounted files); `None` keeps the host's.
    pub net_ns: Option<PathBuf>,
    pub ipc_ns: Option<PathBuf>,
    pub uts_ns: Option<PathBuf>,
    /// Mounts made inside the container after its root, in order.
    pub mounts: Vec<Mount>,
    pub read_only_root: bool,
    /// Relative cgroup path (the same under every hierarchy) and its limits.
    pub cgroup: String,
    pub limits: Limits,
    /// The CRI-format log file the shim writes the container's output to.
    pub log_path: PathBuf,
    /// The container reads what attachers type (`stdin`), until the first attacher leaves
    /// (`stdin_once`); its streams are a terminal (`tty`).
    #[serde(default)]
    pub stdin: bool,
    #[serde(default)]
    pub stdin_once: bool,
    #[serde(default)]
    pub tty: bool,
    /// Capabilities, privileged, no_new_privs and seccomp. Absent from the specs of
    /// containers started before skiff enforced them: commands run in those get the defaults.
    #[serde(default)]
    pub security: Security,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Mount {
    /// A path on the host to bind, or `None` for a fresh tmpfs.
    pub source: Option<PathBuf>,
    /// Absolute path inside the container.
    pub destination: String,
    pub read_only: bool,
    /// Size of a tmpfs in bytes (`None`: the kernel's default, half of memory).
    pub tmpfs_size: Option<u64>,
}

/// Written by the shim once the container's process runs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Started {
    /// The container's first process, as the host sees it.
    pub pid: i32,
    /// The shim that waits for it.
    pub shim_pid: i32,
    pub started_at: chrono::DateTime<chrono::Utc>,
}

/// Written by the shim once the container has ended, or failed to start.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Exited {
    pub exit_code: i32,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Kubernetes' reason: Completed, Error, OOMKilled or StartError.
    pub reason: String,
    pub message: String,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: chrono::DateTime<chrono::Utc>,
}

pub const SPEC_FILE: &str = "spec.json";
pub const STARTED_FILE: &str = "state.json";
pub const EXITED_FILE: &str = "exit.json";

/// Writes `value` as JSON to `path` whole or not at all (a temporary file renamed over it),
/// so that a reader never sees half of it.
pub fn write_json_atomically(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(value)?)?;
    std::fs::rename(&tmp, path)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// What is known of one run of a container from its folder.
#[derive(Clone, Debug, PartialEq)]
pub enum RunState {
    /// Not started (or the shim has not answered yet).
    Created,
    Running(Started),
    Exited(Exited),
}

pub fn run_state(dir: &Path) -> RunState {
    if let Some(exited) = read_json::<Exited>(&dir.join(EXITED_FILE)) {
        return RunState::Exited(exited);
    }
    match read_json::<Started>(&dir.join(STARTED_FILE)) {
        Some(started) => RunState::Running(started),
        None => RunState::Created,
    }
}

/// Starts one run of a container: writes its spec and runs `shim_program shim <dir>`, which
/// returns once the container runs or has failed to start (see `shim::run`).
pub fn start(shim_program: &Path, dir: &Path, spec: &ContainerSpec) -> anyhow::Result<RunState> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_json_atomically(&dir.join(SPEC_FILE), spec)?;
    let output = std::process::Command::new(shim_program)
        .arg("shim")
        .arg(dir)
        // The shim idles beside its container for as long as it runs: it should hold only the
        // memory it uses. skiff's allocator (mimalloc) commits its first arena eagerly, about
        // 6 MB a process, unless told not to. (The container gets its own environment.)
        .env("MIMALLOC_ARENA_EAGER_COMMIT", "0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .with_context(|| format!("running the shim {}", shim_program.display()))?;
    if !output.status.success() {
        anyhow::bail!("the container shim failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    match run_state(dir) {
        // The detached shim gave up before the container ran (it could not make the cgroup,
        // say): its log says why.
        RunState::Created => {
            let log = std::fs::read_to_string(dir.join("shim.log")).unwrap_or_default();
            anyhow::bail!("the container shim failed: {}", log.trim())
        }
        state => Ok(state),
    }
}

/// Sends `signal` to the container's first process; a container that has ended is not an error.
pub fn signal(started: &Started, signal: nix::sys::signal::Signal) -> std::io::Result<()> {
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(started.pid), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether the shim that watches the container is still alive.
pub fn shim_alive(started: &Started) -> bool {
    Path::new(&format!("/proc/{}", started.shim_pid)).exists()
}

/// What a command run in a container (`exec_in`) did.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecOutcome {
    pub exit_code: i32,
    /// Its output, stdout then stderr.
    pub output: String,
}

/// Runs `command` inside the running container of `run_dir` (through `shim_program
/// shim-exec`), within `timeout`; a command still running then is killed and reported as an
/// error.
pub async fn exec_in(
    shim_program: &Path,
    run_dir: &Path,
    command: &[String],
    timeout: std::time::Duration,
) -> anyhow::Result<ExecOutcome> {
    let child = tokio::process::Command::new(shim_program)
        .arg("shim-exec")
        .arg(run_dir)
        .args(command)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .env("MIMALLOC_ARENA_EAGER_COMMIT", "0")
        .kill_on_drop(true)
        .spawn()?;
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| anyhow::anyhow!("command timed out after {}s", timeout.as_secs()))??;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Ok(ExecOutcome { exit_code: output.status.code().unwrap_or(128), output: text })
}
