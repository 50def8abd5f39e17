"""Test images, built by the tests themselves: a busybox image from Debian's busybox-static,
and the project's own test server (crates/testserver) with the shared libraries it links,
written as a `docker save` archive that `skiff image import` takes, or pushed to a registry."""

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


def testserver_layer(binary):
    """A layer with the test server at /skiff-testserver and the shared libraries (and the
    dynamic loader) it needs, found with ldd."""
    assert Path(binary).exists(), f"build the test server first (cargo build --release -p testserver): {binary}"
    ldd = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    libraries = sorted({part for line in ldd.splitlines() for part in line.split() if part.startswith("/")})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        made = set()
        for path in libraries:
            parents = Path(path).relative_to("/").parents
            for parent in reversed(list(parents)[:-1]):
                if str(parent) not in made:
                    _add(tar, str(parent), kind=tarfile.DIRTYPE, mode=0o755)
                    made.add(str(parent))
            _add(tar, path.lstrip("/"), Path(path).resolve().read_bytes(), mode=0o755)
        _add(tar, "skiff-testserver", Path(binary).read_bytes(), mode=0o755)
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


def image_blobs(layer, cmd, env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)):
    """A one-layer image as a registry holds it: the gzip'd layer, the config and the OCI
    manifest, each as bytes."""
    import gzip
    layer_gz = gzip.compress(layer, mtime=0)
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": list(env), "Cmd": list(cmd)},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer).hexdigest()}"]},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": f"sha256:{hashlib.sha256(config).hexdigest()}", "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": f"sha256:{hashlib.sha256(layer_gz).hexdigest()}", "size": len(layer_gz)}],
    }).encode()
    return layer_gz, config, manifest


def push(registry, repository, tag, blobs, auth=None):
    """Pushes an image's blobs and manifest to a registry at `registry` (host:port, plain
    HTTP) with the distribution API, as `docker push` does; returns the manifest's digest."""
    import base64
    import http.client
    from urllib.parse import urlsplit
    layer_gz, config, manifest = blobs
    headers = {"Authorization": "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()} if auth else {}

    def request(method, url, body=None, extra=None):
        parts = urlsplit(url if "://" in url else f"http://{registry}{url}")
        conn = http.client.HTTPConnection(parts.netloc, timeout=30)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, body=body, headers={**headers, **(extra or {})})
        res = conn.getresponse()
        data = res.read()
        conn.close()
        assert res.status < 300, f"{method} {url}: {res.status} {data[:300]!r}"
        return res

    for blob in (layer_gz, config):
        digest = f"sha256:{hashlib.sha256(blob).hexdigest()}"
        location = request("POST", f"/v2/{repository}/blobs/uploads/").getheader("Location")
        sep = "&" if "?" in location else "?"
        request("PUT", f"{location}{sep}digest={digest}", blob, {"Content-Type": "application/octet-stream"})
    request("PUT", f"/v2/{repository}/manifests/{tag}", manifest,
            {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    return f"sha256:{hashlib.sha256(manifest).hexdigest()}"
