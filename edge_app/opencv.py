"""Import OpenCV with an install hint that fits the platform, and check how it was built."""
from __future__ import annotations

import platform
from typing import Any, List

from edge_app.errors import UserError

PIP_OPENCV = ("opencv-python", "opencv-python-headless", "opencv-contrib-python",
              "opencv-contrib-python-headless")


def is_jetson() -> bool:
    """True on an NVIDIA Jetson (L4T)."""
    import os

    return os.path.exists("/etc/nv_tegra_release")


def cv2() -> Any:
    """The cv2 module, or a one-line error saying how to install it here."""
    try:
        import cv2 as mod
    except ImportError as exc:
        if is_jetson():
            hint = ("use JetPack's OpenCV (sudo apt install python3-opencv, or nvidia-opencv), "
                    "not a pip wheel: pip's OpenCV has no GStreamer for CSI cameras")
        elif platform.machine() == "aarch64":
            hint = "pip install 'edge-app[headless]' (or your distribution's python3-opencv)"
        else:
            hint = "pip install 'edge-app[cv]' (with windows) or 'edge-app[headless]' (servers)"
        raise UserError(f"OpenCV (cv2) is not importable ({exc}): {hint}")
    return mod


def pip_opencv_distributions() -> List[str]:
    """The pip OpenCV distributions installed here (more than one breaks cv2)."""
    from importlib import metadata

    found = []
    for name in PIP_OPENCV:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return found


def has_gstreamer() -> bool:
    """True when this cv2 was built with GStreamer (JetPack's is; pip wheels are not)."""
    for line in cv2().getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line.split(":", 1)[1]
    return False


def has_gui() -> bool:
    """True when cv2 can open windows (not a headless build, and a display exists)."""
    import os

    mod = cv2()
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        mod.namedWindow("edge-app-probe", mod.WINDOW_AUTOSIZE)
        mod.destroyWindow("edge-app-probe")
    except mod.error:
        return False
    return True
