//! Seccomp profiles, in the OCI runtime spec's form (`linux.seccomp`, the form of the
//! kubelet's localhost profiles and of the runtime's own default, `seccomp_default.rs`),
//! compiled to BPF filters for this machine's architecture and installed before exec.
//!
//! A profile gives each syscall rule its own action, while a seccompiler filter has a
//! single action for what matches and one for what does not. A profile is therefore
//! compiled to several filters, relying on the kernel running every installed filter and
//! keeping the most restrictive answer: one filter returns the default action for every
//! syscall no rule matches (and allows the rest), and one filter per other action returns
//! that action for the rules that have it (and allows the rest).
//!
//! Syscall names this architecture lacks are skipped, as libseccomp skips them, so that one
//! profile serves every architecture. The filters check the architecture first: a syscall
//! made through another ABI (32-bit x86 on x86_64, say) kills the process.

use anyhow::{Context, bail};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::Path;

/// The answer when a rule with `SCMP_ACT_ERRNO` gives no errno.
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: Action,
    /// The errno of an `SCMP_ACT_ERRNO` default action (EPERM if unset).
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    #[serde(default)]
    pub syscalls: Vec<Rule>,
}

/// What some syscalls get, when their arguments meet every condition of `args`.
/// Unknown fields are refused: Docker's `includes` and `excludes` are not OCI, and ignoring
/// them would allow what the profile's author meant to restrict.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    pub names: Vec<String>,
    pub action: Action,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default)]
    pub args: Vec<Arg>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
pub enum Action {
    #[serde(rename = "SCMP_ACT_ALLOW")]
    Allow,
    #[serde(rename = "SCMP_ACT_ERRNO")]
    Errno,
    #[serde(rename = "SCMP_ACT_LOG")]
    Log,
    #[serde(rename = "SCMP_ACT_TRAP")]
    Trap,
    #[serde(rename = "SCMP_ACT_TRACE")]
    Trace,
    /// libseccomp's `SCMP_ACT_KILL` kills the thread.
    #[serde(rename = "SCMP_ACT_KILL", alias = "SCMP_ACT_KILL_THREAD")]
    KillThread,
    #[serde(rename = "SCMP_ACT_KILL_PROCESS")]
    KillProcess,
}

/// A condition on argument `index`: `arg op value`, or for `SCMP_CMP_MASKED_EQ`,
/// `arg & value == value_two`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: u8,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: Op,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
pub enum Op {
    #[serde(rename = "SCMP_CMP_EQ")]
    Eq,
    #[serde(rename = "SCMP_CMP_NE")]
    Ne,
    #[serde(rename = "SCMP_CMP_LT")]
    Lt,
    #[serde(rename = "SCMP_CMP_LE")]
    Le,
    #[serde(rename = "SCMP_CMP_GT")]
    Gt,
    #[serde(rename = "SCMP_CMP_GE")]
    Ge,
    #[serde(rename = "SCMP_CMP_MASKED_EQ")]
    MaskedEq,
}

/// Syscall numbers and the rules under which each matches (none: whatever its arguments),
/// as seccompiler takes them.
type Matches = BTreeMap<i64, Vec<SeccompRule>>;

impl Profile {
    /// Reads a profile file (a node's localhost profile).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading the seccomp profile {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("reading the seccomp profile {}", path.display()))
    }

    /// The filters that together enforce the profile, to install in order (none if the
    /// profile allows everything).
    pub fn compile(&self) -> anyhow::Result<Vec<BpfProgram>> {
        let arch = seccompiler::TargetArch::try_from(std::env::consts::ARCH)
            .map_err(|_| anyhow::anyhow!("seccomp profiles are not supported on {}", std::env::consts::ARCH))?;
        let default = kernel_action(self.default_action, self.default_errno_ret);
        // Syscalls that escape the default action, and those that get each other action.
        let mut escapes = Matches::new();
        let mut by_action: Vec<(SeccompAction, Matches)> = Vec::new();
        for rule in &self.syscalls {
            let action = kernel_action(rule.action, rule.errno_ret);
            if action == default {
                continue;
            }
            let conditions = rule.args.iter().map(condition).collect::<anyhow::Result<Vec<_>>>()?;
            let matching = match by_action.iter().position(|(a, _)| *a == action) {
                Some(i) => i,
                None => {
                    by_action.push((action.clone(), Matches::new()));
                    by_action.len() - 1
                }
            };
            for sysno in rule.names.iter().filter_map(|name| name.parse::<syscalls::Sysno>().ok()) {
                let nr = i64::from(sysno.id());
                add(&mut escapes, nr, &conditions)?;
                add(&mut by_action[matching].1, nr, &conditions)?;
            }
        }
        let mut filters: Vec<BpfProgram> = Vec::new();
        if default != SeccompAction::Allow {
            filters.push(SeccompFilter::new(escapes, default, SeccompAction::Allow, arch)?.try_into()?);
        }
        for (action, matches) in by_action.into_iter().filter(|(a, _)| *a != SeccompAction::Allow) {
            filters.push(SeccompFilter::new(matches, SeccompAction::Allow, action, arch)?.try_into()?);
        }
        Ok(filters)
    }
}

fn kernel_action(action: Action, errno: Option<u32>) -> SeccompAction {
    match action {
        Action::Allow => SeccompAction::Allow,
        Action::Errno => SeccompAction::Errno(errno.unwrap_or(DEFAULT_ERRNO)),
        Action::Log => SeccompAction::Log,
        Action::Trap => SeccompAction::Trap,
        Action::Trace => SeccompAction::Trace(errno.unwrap_or(DEFAULT_ERRNO)),
        Action::KillThread => SeccompAction::KillThread,
        Action::KillProcess => SeccompAction::KillProcess,
    }
}

/// Arguments are compared whole (64 bits), as libseccomp compares them.
fn condition(arg: &Arg) -> anyhow::Result<SeccompCondition> {
    let (op, value) = match arg.op {
        Op::Eq => (SeccompCmpOp::Eq, arg.value),
        Op::Ne => (SeccompCmpOp::Ne, arg.value),
        Op::Lt => (SeccompCmpOp::Lt, arg.value),
        Op::Le => (SeccompCmpOp::Le, arg.value),
        Op::Gt => (SeccompCmpOp::Gt, arg.value),
        Op::Ge => (SeccompCmpOp::Ge, arg.value),
        Op::MaskedEq => (SeccompCmpOp::MaskedEq(arg.value), arg.value_two),
    };
    Ok(SeccompCondition::new(arg.index, SeccompCmpArgLen::Qword, op, value)?)
}

/// Adds one rule for syscall `nr`: with no conditions it matches whatever the arguments,
/// which no further rule for `nr` can narrow.
fn add(matches: &mut Matches, nr: i64, conditions: &[SeccompCondition]) -> anyhow::Result<()> {
    let rule = match conditions {
        [] => None,
        _ => Some(SeccompRule::new(conditions.to_vec())?),
    };
    match (matches.entry(nr), rule) {
        (Entry::Vacant(entry), rule) => {
            entry.insert(rule.into_iter().collect());
        }
        (Entry::Occupied(mut entry), None) => entry.get_mut().clear(),
        (Entry::Occupied(mut entry), Some(rule)) => {
            if !entry.get().is_empty() {
                entry.get_mut().push(rule);
            }
        }
    }
    Ok(())
}

/// Installs `filters` on the calling thread, the container's process just before exec;
/// they pass to what it execs and to every child. Needs no_new_privs or CAP_SYS_ADMIN.
/// (seccompiler's own install sets no_new_privs, which the container may not want.)
pub fn install(filters: &[BpfProgram]) -> anyhow::Result<()> {
    for filter in filters {
        let Ok(len) = u16::try_from(filter.len()) else { bail!("a seccomp filter of {} instructions", filter.len()) };
        let program = libc::sock_fprog { len, filter: filter.as_ptr() as *mut libc::sock_filter };
        // SAFETY: seccompiler's sock_filter has the kernel's layout, as libc's does; the
        // kernel copies the program before returning.
        let rc = unsafe {
            libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &program as *const libc::sock_fprog)
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error()).context("installing the seccomp filter");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> Profile {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn allow_all_needs_no_filter() {
        assert!(profile(r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#).compile().unwrap().is_empty());
    }

    #[test]
    fn one_filter_per_action_beside_the_default() {
        let p = profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [
                    {"names": ["read", "write", "no_such_syscall"], "action": "SCMP_ACT_ALLOW"},
                    {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                    {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
                ]}"#,
        );
        // The default (EPERM, escaped by all three rules), then ENOSYS for clone3.
        assert_eq!(p.compile().unwrap().len(), 2);
    }

    #[test]
    fn rules_with_the_default_action_change_nothing() {
        let p = profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#,
        );
        assert!(p.compile().unwrap().is_empty());
    }

    #[test]
    fn the_kubernetes_examples_read() {
        let audit = profile(r#"{"defaultAction": "SCMP_ACT_LOG"}"#);
        assert_eq!(audit.compile().unwrap().len(), 1);
        let fine_grained = profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [{"names": ["accept4", "epoll_wait", "pselect6", "futex", "madvise"],
                              "action": "SCMP_ACT_ALLOW"}]}"#,
        );
        assert_eq!(fine_grained.compile().unwrap().len(), 1);
    }

    #[test]
    fn docker_extensions_are_refused_not_ignored() {
        let err = serde_json::from_str::<Profile>(
            r#"{"defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ALLOW",
                              "includes": {"caps": ["CAP_SYS_ADMIN"]}}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("includes"), "{err}");
    }

    #[test]
    fn an_unconditional_rule_is_not_narrowed_by_a_conditional_one() {
        let mut matches = Matches::new();
        let cond = [SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, 1).unwrap()];
        add(&mut matches, 1, &[]).unwrap();
        add(&mut matches, 1, &cond).unwrap();
        add(&mut matches, 2, &cond).unwrap();
        add(&mut matches, 2, &[]).unwrap();
        assert!(matches[&1].is_empty() && matches[&2].is_empty());
        add(&mut matches, 3, &cond).unwrap();
        add(&mut matches, 3, &cond).unwrap();
        assert_eq!(matches[&3].len(), 2);
    }
}
