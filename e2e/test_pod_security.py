"""The runtime enforces the securityContext: capabilities (the runtimes' default set, add,
drop, ALL), privileged, allowPrivilegeEscalation (no_new_privs), seccompProfile
(RuntimeDefault, Unconfined, Localhost) and the hidden and read-only parts of /proc and /sys,
in a container and in what `kubectl exec` runs in it. Each pod reports what its process sees
in /proc/self/status. Needs root."""

import json
import os

from agent_pods import busybox, node_cleanup, container_status, create, get, phase_of, pod  # noqa: F401 (busybox, node_cleanup: fixtures)
from conftest import wait_for

SKIFF_AGENT = True

# CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW
# SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP: what Docker, containerd and CRI-O give a container.
DEFAULT_CAPS = "00000000a80425fb"
NET_ADMIN = 1 << 12
NONE = "0000000000000000"
STATUS_FIELDS = "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):"
REPORT = f"grep -E '{STATUS_FIELDS}' /proc/self/status"


def status_of(text):
    """The /proc/self/status fields a report printed, by name."""
    fields = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"):
            fields[name] = value.strip()
    return fields


def run_all(kubectl, pods):
    """Creates the pods (name: (command, spec extras)), waits for each to succeed and returns
    each one's output."""
    for name, (command, extras) in pods.items():
        create(kubectl, pod(name, ["sh", "-c", command], **extras))
    out = {}
    for name in pods:
        p = ended(kubectl, name)
        out[name] = kubectl("logs", name)
        assert p["status"]["phase"] == "Succeeded", (name, container_status(p)["state"], out[name])
    return out


def ended(kubectl, name):
    """The pod once it has succeeded or failed."""
    def check():
        p = get(kubectl, name)
        return p if p["status"].get("phase") in ("Succeeded", "Failed") else None
    return wait_for(f"pod {name} to end", check, timeout=60)


def sc(**context):
    return {"container": {"securityContext": context}}


def test_capabilities_are_the_default_set_with_add_and_drop(kubectl):
    out = run_all(kubectl, {
        "caps-default": (REPORT, {}),
        "caps-drop-all": (REPORT, sc(capabilities={"drop": ["ALL"]})),
        "caps-only-net-admin": (REPORT, sc(capabilities={"drop": ["ALL"], "add": ["NET_ADMIN"]})),
        "caps-add": (REPORT, sc(capabilities={"add": ["CAP_NET_ADMIN"], "drop": ["chown"]})),
        "caps-non-root": (REPORT, sc(runAsUser=1000, runAsGroup=1000)),
    })
    default = status_of(out["caps-default"])
    assert default == {"CapInh": NONE, "CapPrm": DEFAULT_CAPS, "CapEff": DEFAULT_CAPS, "CapBnd": DEFAULT_CAPS,
                       "CapAmb": NONE, "NoNewPrivs": "0", "Seccomp": "0"}, default
    dropped = status_of(out["caps-drop-all"])
    assert dropped["CapEff"] == dropped["CapBnd"] == dropped["CapPrm"] == NONE, dropped
    only = status_of(out["caps-only-net-admin"])
    assert only["CapEff"] == only["CapBnd"] == f"{NET_ADMIN:016x}", only
    added = status_of(out["caps-add"])
    assert added["CapEff"] == added["CapBnd"] == f"{(int(DEFAULT_CAPS, 16) | NET_ADMIN) & ~1:016x}", added
    # Another user keeps the bounding set but, as in Docker and Kubernetes, holds nothing.
    non_root = status_of(out["caps-non-root"])
    assert non_root["CapEff"] == non_root["CapPrm"] == NONE and non_root["CapBnd"] == DEFAULT_CAPS, non_root


def test_capabilities_decide_what_root_may_do(kubectl):
    # chown needs CAP_CHOWN even as root; mknod needs CAP_MKNOD.
    out = run_all(kubectl, {
        "may-chown": ("touch /tmp/f && chown 123 /tmp/f && echo chowned", {}),
        "may-not-chown": ("touch /tmp/f; chown 123 /tmp/f 2>&1; mknod /tmp/null c 1 3 2>&1; true",
                          sc(capabilities={"drop": ["CHOWN", "MKNOD"]})),
    })
    assert out["may-chown"] == "chowned\n"
    assert out["may-not-chown"].count("Operation not permitted") == 2, out["may-not-chown"]


def test_allow_privilege_escalation_false_sets_no_new_privs(kubectl):
    out = run_all(kubectl, {"no-escalation": (REPORT, sc(allowPrivilegeEscalation=False, runAsUser=1000))})
    fields = status_of(out["no-escalation"])
    assert fields["NoNewPrivs"] == "1" and fields["CapEff"] == NONE, fields


# `unshare -U` makes a user namespace, which needs no capability: only the filter stops it.
USERNS = "unshare -U true 2>&1 && echo userns made"


def test_runtime_default_seccomp_filters_syscalls(kubectl):
    out = run_all(kubectl, {
        "seccomp-default": (f"{REPORT}; {USERNS}; true", sc(seccompProfile={"type": "RuntimeDefault"})),
        # The pod's profile applies unless the container names its own.
        "seccomp-pod": (f"{REPORT}; {USERNS}; true", {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}),
        "seccomp-override": (f"{REPORT}; {USERNS}; true",
                             {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                              **sc(seccompProfile={"type": "Unconfined"})}),
        "seccomp-unset": (f"{REPORT}; {USERNS}; true", {}),
    })
    for name in ("seccomp-default", "seccomp-pod"):
        fields = status_of(out[name])
        # Seccomp 2 is filter mode; no_new_privs stays off (the runtime does not need it).
        assert fields["Seccomp"] == "2" and fields["NoNewPrivs"] == "0", (name, fields)
        assert fields["CapEff"] == DEFAULT_CAPS, (name, fields)
        assert "Operation not permitted" in out[name] and "userns made" not in out[name], (name, out[name])
    for name in ("seccomp-override", "seccomp-unset"):
        assert status_of(out[name])["Seccomp"] == "0", (name, out[name])
        assert "userns made" in out[name], (name, out[name])


def test_runtime_default_lets_an_added_capability_make_its_syscalls(kubectl):
    mount = "mkdir -p /mnt/t && mount -t tmpfs none /mnt/t 2>&1 && echo mounted"
    out = run_all(kubectl, {
        "seccomp-no-admin": (f"{mount}; true", sc(seccompProfile={"type": "RuntimeDefault"})),
        "seccomp-admin": (f"{mount}; true", sc(seccompProfile={"type": "RuntimeDefault"},
                                                capabilities={"add": ["SYS_ADMIN"]})),
    })
    # busybox's mount words EPERM its own way.
    assert "permission denied" in out["seccomp-no-admin"], out["seccomp-no-admin"]
    assert out["seccomp-admin"].strip() == "mounted", out["seccomp-admin"]


def test_a_localhost_seccomp_profile_is_read_from_the_agents_folder(skiff, kubectl):
    folder = skiff.data_dir / "agent" / "seccomp" / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "no-mkdir.json").write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
    }))
    localhost = {"type": "Localhost", "localhostProfile": "profiles/no-mkdir.json"}
    out = run_all(kubectl, {"seccomp-localhost": (f"{REPORT}; mkdir /tmp/d 2>&1; true", sc(seccompProfile=localhost))})
    assert status_of(out["seccomp-localhost"])["Seccomp"] == "2", out
    assert "Operation not permitted" in out["seccomp-localhost"], out

    missing = {"type": "Localhost", "localhostProfile": "profiles/nowhere.json"}
    create(kubectl, pod("seccomp-missing", ["true"], **sc(seccompProfile=missing)))
    state = container_status(phase_of(kubectl, "seccomp-missing", "Failed"))["state"]["terminated"]
    assert state["reason"] == "StartError" and "nowhere.json" in state["message"], state


# Those of the hidden files and of the read-only paths that this host's kernel has.
MASKED_FILES = [f for f in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug") if os.path.exists(f)]
READ_ONLY = [p for p in ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger") if os.path.exists(p)]
# Prints "<file> masked" for each hidden file (a /dev/null bind), the number of entries in
# /sys/firmware, then each read-only mount point with its first option (ro or rw).
KERNEL_FILES = (f"for f in {' '.join(MASKED_FILES)}; do [ -c $f ] && echo $f masked || echo $f visible; done; "
                "ls /sys/firmware | wc -l; "
                f"grep -E ' ({'|'.join(READ_ONLY)}|/sys) ' /proc/mounts | cut -d' ' -f2,4 | cut -d, -f1")


def test_kernel_files_are_hidden_or_read_only(kubectl):
    assert MASKED_FILES and os.listdir("/sys/firmware"), "the host has none of the files to hide"
    out = run_all(kubectl, {"masked": (KERNEL_FILES, {})})
    lines = out["masked"].splitlines()
    assert lines[:len(MASKED_FILES)] == [f"{f} masked" for f in MASKED_FILES], lines
    assert lines[len(MASKED_FILES)] == "0", lines
    assert sorted(lines[len(MASKED_FILES) + 1:]) == sorted(f"{p} ro" for p in READ_ONLY + ["/sys"]), lines


def test_privileged_has_everything(kubectl):
    check = f"{REPORT}; {KERNEL_FILES}; [ -c /dev/kmsg ] && echo has kmsg; true"
    out = run_all(kubectl, {
        "privileged": (check, sc(privileged=True, seccompProfile={"type": "RuntimeDefault"})),
    })
    fields = status_of(out["privileged"])
    # Every capability this kernel has; no filter, whatever the profile says.
    host_caps = status_of(open("/proc/self/status").read())["CapBnd"]
    assert fields["CapEff"] == fields["CapBnd"] == host_caps and fields["Seccomp"] == "0", fields
    lines = out["privileged"].splitlines()
    assert [f"{f} visible" for f in MASKED_FILES] == [line for line in lines if line.endswith("visible")], lines
    assert sorted(line for line in lines if line.endswith(" rw") or line.endswith(" ro")) == ["/sys rw"], lines
    assert "has kmsg" in lines, lines


def test_exec_runs_with_the_containers_confinement(skiff, kubectl):
    context = {"seccompProfile": {"type": "RuntimeDefault"}, "allowPrivilegeEscalation": False,
               "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN", "KILL"]}}
    create(kubectl, pod("exec-confined", ["sh", "-c", f"{REPORT}; sleep 3600"], restart="Always",
                        container={"securityContext": context}))
    phase_of(kubectl, "exec-confined", "Running")
    own_status = wait_for("the container's report", lambda: status_of(kubectl("logs", "exec-confined")))
    exec_status = status_of(kubectl("exec", "exec-confined", "--", "sh", "-c", REPORT))
    assert exec_status == own_status, (exec_status, own_status)
    assert exec_status["CapEff"] == f"{NET_ADMIN | 1 << 5:016x}" and exec_status["Seccomp"] == "2", exec_status
    assert exec_status["NoNewPrivs"] == "1", exec_status
    res = skiff.kubectl("exec", "exec-confined", "--", "unshare", "-U", "true", check=False)
    assert res.returncode != 0 and "Operation not permitted" in res.stdout + res.stderr, res


def test_containers_run_under_the_hosts_transparent_huge_page_policy(skiff, kubectl):
    """skiff turns transparent huge pages off for itself; the flag is inherited across fork
    and exec, so the runtime must hand containers (and what exec runs in them) the host's
    policy back."""
    with open(f"/proc/{skiff.proc.pid}/status") as f:
        assert "THP_enabled:\t0" in f.read(), "the server no longer turns THP off: this test checks nothing"
    report = "grep THP_enabled /proc/self/status"
    create(kubectl, pod("thp", ["sh", "-c", f"{report}; sleep 3600"], restart="Always"))
    phase_of(kubectl, "thp", "Running")
    own = wait_for("the container's report", lambda: kubectl("logs", "thp").strip())
    assert own == "THP_enabled:\t1", own
    assert kubectl("exec", "thp", "--", "sh", "-c", report).strip() == own


def test_run_as_non_root_refuses_root_and_lets_other_users_run(kubectl):
    # busybox's image names no user: it would run as root.
    create(kubectl, pod("nonroot-refused", ["true"], securityContext={"runAsNonRoot": True}))
    create(kubectl, pod("nonroot-uid0", ["true"], securityContext={"runAsNonRoot": True, "runAsUser": 0}))
    create(kubectl, pod("nonroot-ok", ["id", "-u"], securityContext={"runAsNonRoot": True, "runAsUser": 1000}))

    def waiting(name):
        state = container_status(get(kubectl, name))["state"]
        return state.get("waiting") if state.get("waiting", {}).get("reason") == "CreateContainerConfigError" else None

    refused = wait_for("the root container refused", lambda: waiting("nonroot-refused"), timeout=60)
    assert refused["message"].startswith("container has runAsNonRoot and image will run as root (pod: \"nonroot-refused_default("), refused
    uid0 = wait_for("runAsUser 0 refused", lambda: waiting("nonroot-uid0"), timeout=60)
    assert uid0["message"].startswith("container's runAsUser breaks non-root policy"), uid0
    phase_of(kubectl, "nonroot-ok", "Succeeded")
    assert kubectl("logs", "nonroot-ok") == "1000\n"
