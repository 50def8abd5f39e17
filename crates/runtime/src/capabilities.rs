//! A container's Linux capabilities: which ones it gets (`resolve`, from the
//! securityContext's `capabilities.add`/`drop` and `privileged`) and how its process ends up
//! holding exactly those after exec (`limit_bounding`, `keep_across_setuid`, `restrict`).
//!
//! As container runtimes do, the set is the container's bounding, permitted and effective
//! set, with nothing inheritable or ambient: a root process keeps the set across exec, a
//! process of another user has no effective capability after exec (unless a file
//! capability grants one, which `allowPrivilegeEscalation: false` forbids).

use crate::security::Security;
use caps::{CapSet, Capability, CapsHashSet};

/// What a container gets unless told otherwise: the container runtimes' default (Docker's,
/// containerd's and CRI-O's alike).
pub const DEFAULT: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// The container's capabilities. A privileged container has them all. Otherwise, as
/// containerd reads `add` and `drop`: `ALL` in `add` starts from every capability and `ALL`
/// in `drop` from none, then the named ones are added, then the named ones dropped (so
/// `drop: [ALL], add: [NET_ADMIN]` leaves only NET_ADMIN). Names may lack the `CAP_` prefix
/// and are read in any case; an unknown name is an error rather than silently ignored.
pub fn resolve(security: &Security) -> anyhow::Result<CapsHashSet> {
    if security.privileged {
        return Ok(caps::all());
    }
    let is_all = |name: &String| name.eq_ignore_ascii_case("ALL");
    let mut set: CapsHashSet = DEFAULT.into_iter().collect();
    if security.add_capabilities.iter().any(is_all) {
        set = caps::all();
    }
    if security.drop_capabilities.iter().any(is_all) {
        set.clear();
    }
    for name in security.add_capabilities.iter().filter(|n| !is_all(n)) {
        set.insert(parse(name)?);
    }
    for name in security.drop_capabilities.iter().filter(|n| !is_all(n)) {
        set.remove(&parse(name)?);
    }
    Ok(set)
}

fn parse(name: &str) -> anyhow::Result<Capability> {
    caps::to_canonical(name).parse().map_err(|_| anyhow::anyhow!("unknown capability {name:?}"))
}

/// Drops from the bounding set every capability not in `set`, so that no exec (of a setuid
/// or file-capability program) can gain one back. Shrinking the bounding set needs
/// CAP_SETPCAP: this comes before the process takes the container's user.
pub fn limit_bounding(set: &CapsHashSet) -> anyhow::Result<()> {
    for cap in caps::read(None, CapSet::Bounding)? {
        if !set.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)?;
        }
    }
    Ok(())
}

/// Keeps the permitted set when the process changes from root to another user, which would
/// otherwise empty it before `restrict` (and the seccomp filter's install) could use it.
/// Exec resets this.
pub fn keep_across_setuid() -> anyhow::Result<()> {
    Ok(caps::securebits::set_keepcaps(true)?)
}

/// Makes every permitted capability effective again: changing to a non-root user empties
/// the effective set, and installing a seccomp filter without no_new_privs needs
/// CAP_SYS_ADMIN in it.
pub fn raise_permitted() -> anyhow::Result<()> {
    Ok(caps::set(None, CapSet::Effective, &caps::read(None, CapSet::Permitted)?)?)
}

/// Leaves the process exactly `set` (as far as the kernel knows them) as its permitted and
/// effective capabilities, and none inheritable or ambient, as the last step before exec.
pub fn restrict(set: &CapsHashSet) -> anyhow::Result<()> {
    let kept: CapsHashSet = caps::read(None, CapSet::Permitted)?.intersection(set).copied().collect();
    // The effective set must stay within the permitted one at every step.
    caps::set(None, CapSet::Effective, &kept)?;
    caps::set(None, CapSet::Permitted, &kept)?;
    caps::clear(None, CapSet::Inheritable)?;
    caps::clear(None, CapSet::Ambient)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(add: &[&str], drop: &[&str]) -> Security {
        Security {
            add_capabilities: add.iter().map(|s| s.to_string()).collect(),
            drop_capabilities: drop.iter().map(|s| s.to_string()).collect(),
            ..Security::default()
        }
    }

    #[test]
    fn default_set_is_the_runtimes() {
        let set = resolve(&Security::default()).unwrap();
        assert_eq!(set.len(), 14);
        assert!(set.contains(&Capability::CAP_NET_BIND_SERVICE));
        assert!(!set.contains(&Capability::CAP_SYS_ADMIN));
        assert!(!set.contains(&Capability::CAP_NET_ADMIN));
    }

    #[test]
    fn add_and_drop_by_name_with_or_without_prefix() {
        let set = resolve(&with(&["NET_ADMIN", "cap_sys_time"], &["CAP_CHOWN", "kill"])).unwrap();
        assert!(set.contains(&Capability::CAP_NET_ADMIN));
        assert!(set.contains(&Capability::CAP_SYS_TIME));
        assert!(!set.contains(&Capability::CAP_CHOWN));
        assert!(!set.contains(&Capability::CAP_KILL));
        assert_eq!(set.len(), 14);
    }

    #[test]
    fn all_is_applied_before_the_named_ones() {
        assert!(resolve(&with(&[], &["ALL"])).unwrap().is_empty());
        assert_eq!(resolve(&with(&["NET_ADMIN"], &["all"])).unwrap(), CapsHashSet::from([Capability::CAP_NET_ADMIN]));
        let everything_but_chown = resolve(&with(&["ALL"], &["CHOWN"])).unwrap();
        assert_eq!(everything_but_chown.len(), caps::all().len() - 1);
        assert!(!everything_but_chown.contains(&Capability::CAP_CHOWN));
        // Both: drop ALL wins over add ALL, then the named ones apply.
        assert_eq!(
            resolve(&with(&["ALL", "SYS_ADMIN"], &["ALL"])).unwrap(),
            CapsHashSet::from([Capability::CAP_SYS_ADMIN])
        );
    }

    #[test]
    fn privileged_has_every_capability_whatever_is_dropped() {
        let security = Security { privileged: true, ..with(&[], &["ALL"]) };
        assert_eq!(resolve(&security).unwrap(), caps::all());
    }

    #[test]
    fn an_unknown_name_is_an_error() {
        let err = resolve(&with(&["NET_FLY"], &[])).unwrap_err();
        assert!(err.to_string().contains("NET_FLY"), "{err}");
    }
}
