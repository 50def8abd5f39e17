//! The `RuntimeDefault` seccomp profile: to the same effect as the container runtimes'
//! default profiles, the syscalls that reach kernel state a container does not own (or that
//! have been common ways into the kernel) fail with EPERM, and the others are allowed.
//!
//! It is written the other way round from those profiles' allow lists: every syscall this
//! architecture's table knows is allowed except the ones named here. A syscall newer than the
//! table still fails, since the profile's default answer is EPERM. Some restrictions lift
//! with the capability the kernel checks for the same syscalls, so that `capabilities.add`
//! keeps its meaning under the filter.

use crate::seccomp::{Action, Arg, Op, Profile, Rule};
use caps::{Capability, CapsHashSet};
use std::collections::HashSet;

/// Syscalls allowed only to a container that holds the capability beside them.
const GUARDED: &[(Capability, &[&str])] = &[
    (
        Capability::CAP_SYS_ADMIN,
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "name_to_handle_at",
            "open_tree",
            "open_tree_attr",
            "perf_event_open",
            "pivot_root",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "swapoff",
            "swapon",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    (Capability::CAP_BPF, &["bpf"]),
    (Capability::CAP_PERFMON, &["perf_event_open"]),
    (Capability::CAP_DAC_READ_SEARCH, &["open_by_handle_at"]),
    (Capability::CAP_SYS_BOOT, &["reboot"]),
    (Capability::CAP_SYS_CHROOT, &["chroot"]),
    (Capability::CAP_SYS_MODULE, &["delete_module", "finit_module", "init_module"]),
    (Capability::CAP_SYS_NICE, &["get_mempolicy", "mbind", "move_pages", "set_mempolicy", "set_mempolicy_home_node"]),
    (Capability::CAP_SYS_PACCT, &["acct"]),
    // ptrace and process_vm_* are open to all: since Linux 4.8 a traced process cannot get
    // past its seccomp filter, and the runtimes' profiles allow them there.
    (Capability::CAP_SYS_PTRACE, &["kcmp", "pidfd_getfd", "process_madvise"]),
    (Capability::CAP_SYS_RAWIO, &["ioperm", "iopl"]),
    (Capability::CAP_SYS_TIME, &["clock_settime", "clock_settime64", "settimeofday", "stime"]),
    (Capability::CAP_SYS_TTY_CONFIG, &["vhangup"]),
    (Capability::CAP_SYSLOG, &["syslog"]),
];

/// Syscalls no container may make, whatever its capabilities: the kernel keyring (which
/// namespaces do not separate), loading a new kernel, userfaultfd and io_uring (frequent
/// ways into kernel bugs), and obsolete or unimplemented ones.
const FORBIDDEN: &[&str] = &[
    "add_key",
    "keyctl",
    "request_key",
    "kexec_file_load",
    "kexec_load",
    "userfaultfd",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "_sysctl",
    "afs_syscall",
    "create_module",
    "get_kernel_syms",
    "getpmsg",
    "nfsservctl",
    "putpmsg",
    "query_module",
    "security",
    "sysfs",
    "tuxcall",
    "uselib",
    "ustat",
    "vm86",
    "vm86old",
    "vserver",
];

/// The personalities personality(2) may set (or, for the last, query): Linux's and 32-bit
/// Linux's, each also with UNAME26. Others change how the kernel treats the process.
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// The clone(2) flags that make namespaces, which need CAP_SYS_ADMIN (except a user
/// namespace, which is why the filter checks them at all).
const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// The profile for a container with `capabilities` (its bounding set).
pub fn profile(capabilities: &CapsHashSet) -> Profile {
    let admin = capabilities.contains(&Capability::CAP_SYS_ADMIN);
    let restricted: HashSet<&str> = GUARDED
        .iter()
        .flat_map(|(_, names)| names.iter().copied())
        .chain(FORBIDDEN.iter().copied())
        .chain(["personality"])
        .collect();
    let granted = GUARDED.iter().filter(|(cap, _)| capabilities.contains(cap)).flat_map(|(_, names)| names.iter());
    let allowed = syscalls::Sysno::iter()
        .map(|sysno| sysno.name())
        .filter(|name| !restricted.contains(name))
        .chain(granted.copied())
        .map(String::from)
        .collect();
    let mut rules = vec![allow(allowed, None)];
    rules.extend(
        PERSONALITIES
            .map(|p| allow(vec!["personality".into()], Some(Arg { index: 0, value: p, value_two: 0, op: Op::Eq }))),
    );
    if !admin {
        let no_namespaces = Arg { index: 0, value: NAMESPACE_FLAGS, value_two: 0, op: Op::MaskedEq };
        rules.push(allow(vec!["clone".into()], Some(no_namespaces)));
        // clone3 takes its flags in memory, which a filter cannot read: ENOSYS makes the C
        // library fall back to clone, whose flags it can.
        rules.push(Rule {
            names: vec!["clone3".into()],
            action: Action::Errno,
            errno_ret: Some(libc::ENOSYS as u32),
            args: Vec::new(),
        });
    }
    Profile { default_action: Action::Errno, default_errno_ret: Some(libc::EPERM as u32), syscalls: rules }
}

fn allow(names: Vec<String>, arg: Option<Arg>) -> Rule {
    Rule { names, action: Action::Allow, errno_ret: None, args: arg.into_iter().collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(profile: &Profile) -> HashSet<&str> {
        profile
            .syscalls
            .iter()
            .filter(|r| r.action == Action::Allow && r.args.is_empty())
            .flat_map(|r| r.names.iter().map(String::as_str))
            .collect()
    }

    #[test]
    fn default_capabilities_keep_the_guarded_syscalls_out() {
        let caps = crate::capabilities::DEFAULT.into_iter().collect();
        let profile = profile(&caps);
        let allowed = allowed(&profile);
        for name in ["read", "openat", "execve", "capset", "setuid", "prctl", "chroot", "socket", "ptrace"] {
            assert!(allowed.contains(name), "{name} should be allowed");
        }
        for name in ["mount", "unshare", "setns", "kcmp", "keyctl", "bpf", "kexec_load", "reboot", "clone"] {
            assert!(!allowed.contains(name), "{name} should be blocked");
        }
        assert!(profile.syscalls.iter().any(|r| r.names == ["clone3"] && r.errno_ret == Some(libc::ENOSYS as u32)));
        // Filters: the default's, then clone3's ENOSYS.
        assert_eq!(profile.compile().unwrap().len(), 2);
    }

    #[test]
    fn a_capability_lifts_its_restrictions_only() {
        let caps = CapsHashSet::from([Capability::CAP_SYS_ADMIN, Capability::CAP_SYS_PTRACE]);
        let profile = profile(&caps);
        let allowed = allowed(&profile);
        for name in ["mount", "unshare", "setns", "clone", "clone3", "kcmp", "pidfd_getfd"] {
            assert!(allowed.contains(name), "{name} should be allowed");
        }
        for name in ["keyctl", "reboot", "init_module", "settimeofday"] {
            assert!(!allowed.contains(name), "{name} should be blocked");
        }
        assert_eq!(profile.compile().unwrap().len(), 1);
    }

    /// The errno each probe gets in a child process under the default profile (0: success).
    fn errnos_under_default_profile(probes: &[fn() -> libc::c_long]) -> Vec<i32> {
        let filters = profile(&crate::capabilities::DEFAULT.into_iter().collect()).compile().unwrap();
        probes
            .iter()
            .map(|probe| {
                // SAFETY: the child makes only raw syscalls and exits.
                match unsafe { nix::unistd::fork() }.unwrap() {
                    nix::unistd::ForkResult::Child => {
                        // SAFETY: plain prctl; as a non-root container would, via no_new_privs.
                        unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
                        if crate::seccomp::install(&filters).is_err() {
                            unsafe { libc::_exit(255) };
                        }
                        let errno = match probe() {
                            -1 => std::io::Error::last_os_error().raw_os_error().unwrap_or(254),
                            _ => 0,
                        };
                        unsafe { libc::_exit(errno) }
                    }
                    nix::unistd::ForkResult::Parent { child } => match nix::sys::wait::waitpid(child, None).unwrap() {
                        nix::sys::wait::WaitStatus::Exited(_, code) => code,
                        other => panic!("the probe ended with {other:?}"),
                    },
                }
            })
            .collect()
    }

    #[test]
    fn the_filter_answers_as_the_profile_says() {
        let errnos = errnos_under_default_profile(&[
            || unsafe { libc::syscall(libc::SYS_getpid) },
            || unsafe { libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER) },
            || unsafe { libc::syscall(libc::SYS_keyctl, 0, 0, 0, 0, 0) },
            || unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0) },
            || unsafe { libc::syscall(libc::SYS_personality, 0xffff_ffffu64) },
            || unsafe { libc::syscall(libc::SYS_personality, libc::ADDR_NO_RANDOMIZE as u64) },
        ]);
        assert_eq!(errnos, [0, libc::EPERM, libc::EPERM, libc::ENOSYS, 0, libc::EPERM]);
    }
}
