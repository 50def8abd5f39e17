"""Test images, built by the tests themselves: a busybox image from Debian's busybox-static,
written as a `docker save` archive that `skiff image import` takes."""

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

BUSYBOX = Path("/bin/busybox")


def _add(tar, name, data=b"", mode=0o644, kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def busybox_layer():
    """A layer with busybox, a link per applet, /etc/passwd and a page for httpd."""
    assert BUSYBOX.exists(), "the tests need Debian's busybox-static (apt-get install busybox-static)"
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d, mode in [("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("www", 0o755), ("root", 0o700)]:
            _add(tar, d, kind=tarfile.DIRTYPE, mode=mode)
        _add(tar, "bin/busybox", BUSYBOX.read_bytes(), mode=0o755)
        for applet in applets:
            if applet != "busybox":
                _add(tar, f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox", mode=0o777)
        _add(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
        _add(tar, "etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        _add(tar, "www/index.html", b"hello from a skiff pod\n")
    return buf.getvalue()


def docker_save_archive(path, tag, layer, cmd, env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)):
    """Writes a one-layer image as `docker save` lays it out."""
    layer_id = hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": list(env), "Cmd": list(cmd)},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_id}"]},
    }).encode()
    config_id = hashlib.sha256(config).hexdigest()
    manifest = json.dumps([{"Config": f"{config_id}.json", "RepoTags": [tag], "Layers": [f"{layer_id}/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tar:
        _add(tar, f"{layer_id}/layer.tar", layer)
        _add(tar, f"{config_id}.json", config)
        _add(tar, "manifest.json", manifest)
    return path
