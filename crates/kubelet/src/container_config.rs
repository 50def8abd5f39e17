//! The runtime's `ContainerSpec` for one run of a pod's container: the command line from the
//! container and its image, its user, its security settings, its limits and its mounts.

use crate::volumes;
use k8s_openapi::api::core::v1::{Container, Pod};
use runtime::cgroup::Limits;
use runtime::container::{ContainerSpec, Mount};
use runtime::image::Image;
use runtime::security::{Seccomp, Security};
use std::path::Path;

/// Where a container's termination message is read from when the pod does not say.
const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";

/// The files the agent writes for every pod and binds into each of its containers.
pub const POD_FILES: [(&str, &str); 3] =
    [("hosts", "/etc/hosts"), ("hostname", "/etc/hostname"), ("resolv.conf", "/etc/resolv.conf")];

/// The command line: `command` replaces the image's entrypoint and drops its cmd; `args`
/// replaces the cmd.
pub fn command_line(container: &Container, image: &Image) -> Vec<String> {
    match (&container.command, &container.args) {
        (Some(command), args) => command.iter().chain(args.iter().flatten()).cloned().collect(),
        (None, Some(args)) => image.config.entrypoint.iter().chain(args).cloned().collect(),
        (None, None) => image.config.entrypoint.iter().chain(&image.config.cmd).cloned().collect(),
    }
}

/// The user and group: the securityContext's (the container's, else the pod's), else the
/// image's numeric USER, else root.
fn identity(pod: &Pod, container: &Container, image: &Image) -> (u32, u32) {
    let pod_ctx = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let ctx = container.security_context.as_ref();
    let (image_uid, image_gid) = match image.config.user.split_once(':') {
        Some((u, g)) => (u.parse().ok(), g.parse().ok()),
        None => (image.config.user.parse().ok(), None),
    };
    let uid = ctx.and_then(|c| c.run_as_user).or(pod_ctx.and_then(|c| c.run_as_user)).map(|u| u as u32).or(image_uid);
    let gid = ctx.and_then(|c| c.run_as_group).or(pod_ctx.and_then(|c| c.run_as_group)).map(|g| g as u32).or(image_gid);
    (uid.unwrap_or(0), gid.unwrap_or(0))
}

/// runAsNonRoot (the container's, else the pod's), checked as the kubelet checks it before
/// the container is made: a root user, or an image user that is a name (which cannot be
/// told from root), refuses the container with the kubelet's message.
pub fn verify_run_as_non_root(pod: &Pod, container: &Container, image: &Image) -> Result<(), String> {
    let pod_ctx = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let ctx = container.security_context.as_ref();
    let non_root = ctx.and_then(|c| c.run_as_non_root).or(pod_ctx.and_then(|c| c.run_as_non_root));
    if non_root != Some(true) {
        return Ok(());
    }
    let meta = &pod.metadata;
    let who = format!(
        "pod: \"{}_{}({})\", container: {}",
        meta.name.as_deref().unwrap_or(""),
        meta.namespace.as_deref().unwrap_or(""),
        meta.uid.as_deref().unwrap_or(""),
        container.name
    );
    if ctx.and_then(|c| c.run_as_user).or(pod_ctx.and_then(|c| c.run_as_user)) == Some(0) {
        return Err(format!("container's runAsUser breaks non-root policy ({who})"));
    }
    let image_user = image.config.user.split(':').next().unwrap_or("");
    if ctx.and_then(|c| c.run_as_user).or(pod_ctx.and_then(|c| c.run_as_user)).is_none()
        && !image_user.is_empty()
        && image_user.parse::<u32>().is_err()
    {
        return Err(format!(
            "container has runAsNonRoot and image has non-numeric user ({image_user}), cannot verify user is non-root ({who})"
        ));
    }
    match identity(pod, container, image).0 {
        0 => Err(format!("container has runAsNonRoot and image will run as root ({who})")),
        _ => Ok(()),
    }
}

/// The securityContext settings the runtime enforces. The seccomp profile is the
/// container's, else the pod's; a localhost profile is a file under the agent's `seccomp/`
/// folder, as under the kubelet's root.
fn security(pod: &Pod, container: &Container, pod_dir: &Path) -> Security {
    let ctx = container.security_context.as_ref();
    let pod_ctx = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let capabilities = ctx.and_then(|c| c.capabilities.as_ref());
    let profile = ctx.and_then(|c| c.seccomp_profile.as_ref()).or(pod_ctx.and_then(|c| c.seccomp_profile.as_ref()));
    let seccomp = match profile.map(|p| p.type_.as_str()) {
        Some("RuntimeDefault") => Seccomp::RuntimeDefault,
        Some("Localhost") => Seccomp::Localhost(runtime::paths::seccomp_profile(
            pod_dir,
            profile.and_then(|p| p.localhost_profile.as_deref()).unwrap_or_default(),
        )),
        _ => Seccomp::Unconfined,
    };
    Security {
        privileged: ctx.and_then(|c| c.privileged).unwrap_or(false),
        add_capabilities: capabilities.and_then(|c| c.add.clone()).unwrap_or_default(),
        drop_capabilities: capabilities.and_then(|c| c.drop.clone()).unwrap_or_default(),
        no_new_privileges: ctx.and_then(|c| c.allow_privilege_escalation) == Some(false),
        seccomp,
    }
}

fn limits(container: &Container) -> Limits {
    let resources = container.resources.as_ref();
    let get =
        |set: Option<&std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
         name: &str| { set.and_then(|s| s.get(name)).and_then(|q| quota::quantity::milli(&q.0)) };
    let requests = resources.and_then(|r| r.requests.as_ref());
    let limits = resources.and_then(|r| r.limits.as_ref());
    Limits {
        memory_bytes: get(limits, "memory").map(|m| (m / 1000) as i64),
        cpu_limit_millis: get(limits, "cpu").map(|m| m as i64),
        // A limit with no request requests as much, as the API server defaults it.
        cpu_request_millis: get(requests, "cpu").or(get(limits, "cpu")).map(|m| m as i64),
        pids: None,
    }
}

/// The container's termination message file on the node for this run.
pub fn termination_message_file(run_dir: &Path) -> std::path::PathBuf {
    run_dir.join("termination-log")
}

/// Everything the runtime needs to run attempt `attempt` of `container`.
pub fn spec(
    pod: &Pod,
    container: &Container,
    image: &Image,
    image_layers: Vec<std::path::PathBuf>,
    env: Vec<String>,
    pod_dir: &Path,
    attempt: u32,
) -> ContainerSpec {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let run_dir = runtime::paths::container_dir(pod_dir, &container.name, attempt);
    let pod_spec = pod.spec.as_ref();
    let volumes: Vec<_> = pod_spec.and_then(|s| s.volumes.clone()).unwrap_or_default();
    let mut mounts: Vec<Mount> = POD_FILES
        .iter()
        .map(|(file, destination)| Mount {
            source: Some(pod_dir.join(file)),
            destination: destination.to_string(),
            read_only: false,
            tmpfs_size: None,
        })
        .collect();
    let message_path = container.termination_message_path.as_deref().unwrap_or(DEFAULT_TERMINATION_MESSAGE_PATH);
    mounts.push(Mount {
        source: Some(termination_message_file(&run_dir)),
        destination: message_path.to_string(),
        read_only: false,
        tmpfs_size: None,
    });
    for vm in container.volume_mounts.iter().flatten() {
        let Some(volume) = volumes.iter().find(|v| v.name == vm.name) else { continue };
        let mut source = volumes::host_path(pod_dir, volume);
        if let Some(sub) = vm.sub_path.as_deref().filter(|s| !s.is_empty()) {
            source = source.join(sub);
        }
        mounts.push(Mount {
            source: Some(source),
            destination: vm.mount_path.clone(),
            read_only: vm.read_only.unwrap_or(false),
            tmpfs_size: None,
        });
    }
    let (uid_, gid) = identity(pod, container, image);
    let pod_ctx = pod_spec.and_then(|s| s.security_context.as_ref());
    let mut groups: Vec<u32> =
        pod_ctx.and_then(|c| c.supplemental_groups.clone()).unwrap_or_default().into_iter().map(|g| g as u32).collect();
    groups.extend(pod_ctx.and_then(|c| c.fs_group).map(|g| g as u32));
    let args = crate::env::expand_all(&command_line(container, image), &env);
    let cwd =
        container.working_dir.clone().filter(|w| !w.is_empty()).unwrap_or_else(|| image.config.working_dir.clone());
    ContainerSpec {
        layers: image_layers,
        args,
        env,
        cwd,
        uid: uid_,
        gid,
        supplemental_groups: groups,
        net_ns: runtime::sandbox::existing(pod_dir, "net"),
        ipc_ns: runtime::sandbox::existing(pod_dir, "ipc"),
        uts_ns: runtime::sandbox::existing(pod_dir, "uts"),
        mounts,
        read_only_root: container.security_context.as_ref().and_then(|c| c.read_only_root_filesystem).unwrap_or(false),
        cgroup: runtime::cgroup::container_cgroup(&uid, &container.name, attempt),
        limits: limits(container),
        log_path: runtime::paths::container_log(pod_dir, &container.name, attempt),
        stdin: container.stdin.unwrap_or(false),
        stdin_once: container.stdin_once.unwrap_or(false),
        tty: container.tty.unwrap_or(false),
        security: security(pod, container, pod_dir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    #[test]
    fn the_containers_security_context_wins_over_the_pods() {
        let p = pod(serde_json::json!({
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {"name": "a", "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}},
                {"name": "b", "securityContext": {"seccompProfile": {"type": "Unconfined"}, "privileged": true}},
                {"name": "c", "securityContext": {
                    "seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/audit.json"}}},
            ],
        }));
        let containers = &p.spec.as_ref().unwrap().containers;
        let pod_dir = Path::new("/agent/pods/uid");
        let a = security(&p, &containers[0], pod_dir);
        assert_eq!(a.seccomp, Seccomp::RuntimeDefault);
        assert!(a.no_new_privileges && !a.privileged);
        assert_eq!((a.add_capabilities, a.drop_capabilities), (vec!["NET_ADMIN".into()], vec!["ALL".into()]));
        let b = security(&p, &containers[1], pod_dir);
        assert_eq!(b.seccomp, Seccomp::Unconfined);
        assert!(b.privileged && !b.no_new_privileges);
        let c = security(&p, &containers[2], pod_dir);
        assert_eq!(c.seccomp, Seccomp::Localhost("/agent/seccomp/profiles/audit.json".into()));
    }

    #[test]
    fn without_a_security_context_the_runtime_defaults_apply() {
        let p = pod(serde_json::json!({"containers": [{"name": "a"}]}));
        let security = security(&p, &p.spec.as_ref().unwrap().containers[0], Path::new("/agent/pods/uid"));
        assert_eq!(security, Security::default());
    }
}
