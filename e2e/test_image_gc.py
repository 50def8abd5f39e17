"""Image garbage collection on the node: with the disk over --image-gc-high-threshold (0 here,
so always), images no container uses are removed and those in use stay. Needs root."""

import subprocess

from agent_pods import IMAGE, busybox, create, import_image, node_cleanup, phase_of, pod, testserver  # noqa: F401 (fixtures)
from conftest import SKIFF_BIN, wait_for

SKIFF_AGENT = True
SKIFF_ARGS = ["--image-gc-high-threshold", "0", "--image-gc-low-threshold", "0", "--minimum-image-ttl-duration", "0s"]


def images(skiff):
    res = subprocess.run([SKIFF_BIN, "image", "ls", "--data-dir", str(skiff.data_dir)],
                         capture_output=True, text=True, timeout=30, check=True)
    return res.stdout


def test_unused_images_are_collected_and_used_ones_kept(skiff, kubectl, testserver):
    create(kubectl, pod("user", ["sleep", "3600"]))
    phase_of(kubectl, "user", "Running")
    assert "skiff-testserver" in images(skiff)
    wait_for("the unused test server image collected", lambda: "skiff-testserver" not in images(skiff), timeout=90)
    assert "busybox" in images(skiff)
    # Once its pod is gone, the busybox image is unused too.
    kubectl("delete", "pod", "user", "--grace-period=1")
    wait_for("the busybox image collected", lambda: "busybox" not in images(skiff), timeout=90)


def test_a_low_threshold_above_the_high_one_is_refused(skiff):
    res = subprocess.run([SKIFF_BIN, "server", "--data-dir", str(skiff.data_dir.parent / "refused"),
                          "--image-gc-high-threshold", "50", "--image-gc-low-threshold", "60"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode != 0
    assert "--image-gc-low-threshold (60) must not be above --image-gc-high-threshold (50)" in res.stderr, res.stderr
