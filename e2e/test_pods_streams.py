"""Streams to and from running containers, driven by the real kubectl and the Python client:
`kubectl exec` (with and without a TTY, over WebSocket and over kubectl's SPDY fallback),
`cp`, `port-forward` (WebSocket-tunnelled SPDY, and direct SPDY), `attach` and
`run -it --rm`. Needs root, as every test of the node agent does."""

import json
import os
import pty
import select
import struct
import subprocess
import termios
import fcntl
import time
import urllib.request

import pytest
from kubernetes import client as k8s_client
from kubernetes.stream import stream as k8s_stream
from kubernetes.stream import portforward as k8s_portforward

from agent_pods import IMAGE, busybox, node_cleanup, create, get, phase_of, pod  # noqa: F401 (busybox, node_cleanup: fixtures)
from conftest import free_port, wait_for

SKIFF_AGENT = True

# kubectl's switches back to SPDY, which it uses when a WebSocket upgrade fails.
SPDY_EXEC = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}
SPDY_PORT_FORWARD = {"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}


@pytest.fixture(scope="module")
def shell(kubectl):
    """A long-running pod to exec into, with a web server on 8080."""
    create(kubectl, pod("shell", ["sh", "-c", "httpd -p 8080 -h /www; sleep 3600"], restart="Always"))
    phase_of(kubectl, "shell", "Running")
    return "shell"


def test_exec_runs_a_command_with_its_output_and_exit_code(skiff, shell):
    for env in [None, SPDY_EXEC]:
        res = skiff.kubectl("exec", shell, "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False, env=env)
        assert res.returncode == 3, (env, res.stderr)
        assert res.stdout == "out\n", (env, res.stdout)
        assert "err\n" in res.stderr, (env, res.stderr)
        # The command runs inside the container: its hostname, its filesystem.
        assert skiff.kubectl("exec", shell, "--", "hostname", env=env).strip() == shell
        assert skiff.kubectl("exec", shell, "--", "cat", "/www/index.html", env=env) == "hello from a skiff pod\n"


def test_exec_passes_stdin_to_its_end(skiff, shell):
    data = "".join(f"line {i}\n" for i in range(2000))
    for env in [None, SPDY_EXEC]:
        assert skiff.kubectl("exec", "-i", shell, "--", "cat", input=data, env=env) == data, env
        assert skiff.kubectl("exec", "-i", shell, "--", "wc", "-l", input=data, env=env).strip() == "2000"


def test_a_missing_command_or_container_is_a_clear_error(skiff, shell):
    res = skiff.kubectl("exec", shell, "--", "no-such-command", check=False)
    assert res.returncode != 0
    assert "no-such-command" in res.stderr and "not found" in res.stderr, res.stderr
    res = skiff.kubectl("exec", shell, "-c", "nope", "--", "true", check=False)
    assert res.returncode != 0 and "container nope is not valid for pod shell" in res.stderr, res.stderr


def run_in_terminal(skiff, args, typed, rows=33, cols=111, env=None, timeout=60):
    """Runs kubectl with a terminal of rows x cols as its stdin and stdout, types `typed`
    (a line at a time, once output has begun), and returns what it printed and its exit code."""
    env = dict(os.environ, **(env or {}), KUBECONFIG=str(skiff.kubeconfig))
    env["KUBECACHEDIR"] = str(skiff.data_dir.parent / "kubecache")
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(["kubectl", *args], stdin=terminal, stdout=terminal, stderr=terminal, env=env,
                            start_new_session=True)
    os.close(terminal)
    output = b""
    lines = list(typed)
    deadline = time.monotonic() + timeout
    last_typed = 0.0
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        # A line at a time, once the shell has started talking, half a second apart.
        if lines and output and time.monotonic() - last_typed > 0.5:
            os.write(controller, lines.pop(0).encode())
            last_typed = time.monotonic()
        if proc.poll() is not None and not ready:
            break
    code = proc.wait(timeout=10)
    os.close(controller)
    return output.decode(errors="replace"), code


def test_exec_with_a_tty_is_interactive_and_sized(skiff, shell):
    for env in [None, SPDY_EXEC]:
        out, code = run_in_terminal(skiff, ["exec", "-it", shell, "--", "sh"],
                                    ["echo calc=$((6*7))\r", "stty size; test -t 0 && echo on-a-terminal\r",
                                     "echo name=$(tty)\r", "exit 5\r"],
                                    env=env)
        assert "calc=42" in out, (env, out)
        # The shell's stdin is a terminal, of the size of kubectl's.
        assert "33 111" in out and "\non-a-terminal" in out.replace("\r", ""), (env, out)
        # A terminal of the container's own /dev/pts, so it has a name there.
        assert "name=/dev/pts/0" in out, (env, out)
        assert code == 5, (env, out)


def test_cp_copies_files_both_ways(skiff, shell, tmp_path):
    source = tmp_path / "notes.txt"
    source.write_text("copied in\n" * 1000)
    skiff.kubectl("cp", str(source), f"{shell}:/tmp/notes.txt")
    assert skiff.kubectl("exec", shell, "--", "cat", "/tmp/notes.txt") == source.read_text()
    skiff.kubectl("exec", shell, "--", "sh", "-c", "mkdir -p /tmp/out && echo from the pod > /tmp/out/made.txt")
    skiff.kubectl("cp", f"{shell}:/tmp/out", str(tmp_path / "out"))
    assert (tmp_path / "out" / "made.txt").read_text() == "from the pod\n"


def port_forward(skiff, target, remote, env=None):
    """Starts `kubectl port-forward` and returns it with the local port, once it forwards."""
    local = free_port()
    env = dict(os.environ, **(env or {}), KUBECONFIG=str(skiff.kubeconfig))
    env["KUBECACHEDIR"] = str(skiff.data_dir.parent / "kubecache")
    proc = subprocess.Popen(["kubectl", "port-forward", target, f"{local}:{remote}"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    assert "Forwarding from" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc, local


def test_port_forward_reaches_a_port_of_the_pod(skiff, shell):
    for env in [None, SPDY_PORT_FORWARD]:
        proc, local = port_forward(skiff, f"pod/{shell}", 8080, env=env)
        try:
            for _ in range(3):
                body = urllib.request.urlopen(f"http://127.0.0.1:{local}/index.html", timeout=10).read()
                assert body == b"hello from a skiff pod\n", env
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_port_forward_to_a_closed_port_reports_it(skiff, shell):
    proc, local = port_forward(skiff, f"pod/{shell}", 9999)
    try:
        with pytest.raises(Exception):
            urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10).read()
        time.sleep(1)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "error forwarding port 9999 to pod shell" in err, err


def test_attach_joins_the_containers_own_streams(skiff, kubectl):
    reader = pod("reader", ["sh", "-c", "echo ready; while read line; do echo got $line; done; echo bye"],
                 container={"stdin": True})
    create(kubectl, reader)
    phase_of(kubectl, "reader", "Running")
    wait_for("the reader's first words", lambda: "ready" in kubectl("logs", "reader"))
    res = skiff.kubectl("attach", "-i", "reader", input="one\ntwo\n", check=False, timeout=60)
    assert "got one\ngot two\n" in res.stdout, (res.stdout, res.stderr)
    # Its stdin ended with the attach (stdinOnce is not set, but kubectl closed it): it finished.
    assert phase_of(kubectl, "reader", "Succeeded")
    assert kubectl("logs", "reader") == "ready\ngot one\ngot two\nbye\n"


def test_run_it_rm_gives_a_shell_then_removes_the_pod(skiff, kubectl):
    out, code = run_in_terminal(
        skiff, ["run", "-it", "--rm", "--restart=Never", f"--image={IMAGE}", "scratch", "--", "sh"],
        ["\r", "echo sum=$((40+2))\r", "echo name=$(tty)\r", "exit 0\r"])
    assert "sum=42" in out, out
    assert "name=/dev/pts/0" in out, out
    assert code == 0, out
    assert 'pod "scratch" deleted' in out, out
    wait_for("the pod gone", lambda: kubectl("get", "pods", "scratch", "--ignore-not-found").strip() == "", timeout=60)


def test_the_python_client_execs_and_forwards_ports(skiff, shell):
    api = k8s_client.CoreV1Api(skiff.client())
    out = k8s_stream(api.connect_get_namespaced_pod_exec, shell, "default", command=["sh", "-c", "echo py-$((1+2))"],
                     stderr=True, stdin=False, stdout=True, tty=False)
    assert out == "py-3\n"
    forward = k8s_portforward(api.connect_get_namespaced_pod_portforward, shell, "default", ports="8080")
    sock = forward.socket(8080)
    sock.setblocking(True)
    sock.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
    reply = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    sock.close()
    assert reply.startswith(b"HTTP/1.") and reply.endswith(b"hello from a skiff pod\n"), reply


def test_nodes_proxy_reaches_the_kubelet(kubectl, shell):
    node = json.loads(kubectl("get", "nodes", "-o", "json"))["items"][0]["metadata"]["name"]
    assert kubectl("get", "--raw", f"/api/v1/nodes/{node}/proxy/healthz") == "ok"
    pods = json.loads(kubectl("get", "--raw", f"/api/v1/nodes/{node}/proxy/pods"))
    assert pods["kind"] == "PodList"
    assert shell in [p["metadata"]["name"] for p in pods["items"]]
