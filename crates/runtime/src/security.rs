//! What a container's processes may do beyond what their user may: the capabilities they
//! hold (`capabilities.rs`), whether exec may raise their privileges (no_new_privs) and the
//! syscalls they may make (`seccomp.rs`). The same confinement applies to the container's
//! first process and to every command run in it (`enter.rs`), as `runc exec` does.

use crate::{capabilities, seccomp, seccomp_default};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The securityContext fields the runtime enforces, as the agent resolved them for one
/// container. A spec written before these existed reads as the defaults.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Security {
    /// Every capability, no seccomp filter, and (`rootfs.rs`) the host's devices, a writable
    /// /sys and nothing in /proc hidden.
    pub privileged: bool,
    /// `capabilities.add` and `.drop`, as written (see `capabilities::resolve`).
    pub add_capabilities: Vec<String>,
    pub drop_capabilities: Vec<String>,
    /// `allowPrivilegeEscalation: false`: no exec grants more privileges (setuid programs,
    /// file capabilities) than the process has.
    pub no_new_privileges: bool,
    pub seccomp: Seccomp,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub enum Seccomp {
    /// No filter: the kubelet's default unless it runs with `--seccomp-default`.
    #[default]
    Unconfined,
    /// The runtime's default profile (`seccomp_default.rs`).
    RuntimeDefault,
    /// A profile in the OCI runtime spec's JSON form, at this path on the node.
    Localhost(PathBuf),
}

/// A container's confinement, worked out (its seccomp profile read and compiled) while the
/// host's files are still in sight and before anything is set up, then applied as the last
/// steps before exec.
pub struct Confinement {
    capabilities: caps::CapsHashSet,
    no_new_privileges: bool,
    filters: Vec<seccompiler::BpfProgram>,
}

impl Confinement {
    pub fn new(security: &Security) -> anyhow::Result<Self> {
        let capabilities = capabilities::resolve(security)?;
        let profile = match &security.seccomp {
            // As containerd does, a privileged container runs unfiltered whatever it asks.
            _ if security.privileged => None,
            Seccomp::Unconfined => None,
            Seccomp::RuntimeDefault => Some(seccomp_default::profile(&capabilities)),
            Seccomp::Localhost(path) => Some(seccomp::Profile::load(path)?),
        };
        let filters = match profile {
            Some(profile) => profile.compile().context("compiling the seccomp profile")?,
            None => Vec::new(),
        };
        Ok(Self { capabilities, no_new_privileges: security.no_new_privileges, filters })
    }

    /// Takes the container's user and groups (`take_identity`) and confines the process.
    /// The order matters: the bounding set shrinks while the process still has CAP_SETPCAP;
    /// the seccomp filter comes after everything it could forbid, with CAP_SYS_ADMIN still
    /// effective (unless no_new_privs makes that unneeded); only capset and exec follow it.
    pub fn apply(&self, take_identity: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
        // skiff turns transparent huge pages off for itself (see its main); the container runs
        // under the host's policy, as it would under any other runtime.
        nix::sys::prctl::set_thp_disable(false).context("restoring the transparent huge page policy")?;
        capabilities::limit_bounding(&self.capabilities).context("limiting the capability bounding set")?;
        capabilities::keep_across_setuid()?;
        take_identity()?;
        if self.no_new_privileges {
            // SAFETY: a plain prctl on the calling thread.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                return Err(std::io::Error::last_os_error()).context("setting no_new_privs");
            }
        }
        if !self.filters.is_empty() {
            capabilities::raise_permitted()?;
            seccomp::install(&self.filters)?;
        }
        capabilities::restrict(&self.capabilities).context("setting the container's capabilities")
    }
}
