"""Import OpenCV with an install hint that fits the platform, and check how it was built."""
from __future__ import annotations

import math
import os
import platform
from typing import Any, List

from edge_app.errors import UserError

PIP_OPENCV = ("opencv-python", "opencv-python-headless", "opencv-contrib-python",
              "opencv-contrib-python-headless")

MAX_PIXELS_ENV = "EDGE_APP_MAX_IMAGE_PIXELS"
DEFAULT_MAX_PIXELS = 100_000_000   # 100 megapixels: above every camera (8K is 33 MP)
OPENCV_MAX_PIXELS_ENV = "OPENCV_IO_MAX_IMAGE_PIXELS"
_CEILING = 1 << 40                 # OpenCV's own bound: 2**20 pixels a side


def max_image_pixels() -> int:
    """The most pixels (width x height) a picture may have to be decoded: ``EDGE_APP_MAX_IMAGE_PIXELS``
    or 100 megapixels. A small file can declare a huge picture (a 109 KB PNG of 30000x30000
    zeros decodes to 2.7 GB); every image reader checks the header against this first."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value.is_integer() and 1 <= value <= _CEILING):
        raise UserError(f"{MAX_PIXELS_ENV}={text[:40]!r} is not a whole number of pixels between 1 and "
                        f"{_CEILING} (unset it for the default, {DEFAULT_MAX_PIXELS}: 100 megapixels)")
    return int(value)


def limit_decoding() -> None:
    """Give OpenCV the same limit (``OPENCV_IO_MAX_IMAGE_PIXELS``, unless already set), so that
    even a header the project's check misreads cannot make it allocate more. OpenCV reads the
    variable once, when it is loaded: this runs when ``edge_app`` is imported and before
    :func:`cv2` imports it."""
    try:
        limit = max_image_pixels()
    except UserError:   # reported, with the variable's name, by the first image read
        return
    os.environ.setdefault(OPENCV_MAX_PIXELS_ENV, str(limit))


# OpenCV's and FFmpeg's own log lines ("[ WARN:0@1.2] ... Failed to write frame", "[mov,mp4 @
# 0x...] moov atom not found", "[tcp @ 0x...] Connection refused") come before, and say less
# than, the one line the project prints for the same failure; an environment that sets either
# variable keeps its own level.
QUIET_LOGS = {"OPENCV_LOG_LEVEL": "ERROR", "OPENCV_FFMPEG_LOGLEVEL": "-8"}   # -8: AV_LOG_QUIET


def quiet_logs() -> None:
    """Silence OpenCV's warnings and FFmpeg's messages (unless the environment sets their
    levels). Both are read when cv2 is loaded: this runs when ``edge_app`` is imported."""
    for name, value in QUIET_LOGS.items():
        os.environ.setdefault(name, value)


def is_jetson() -> bool:
    """True on an NVIDIA Jetson (L4T)."""
    return os.path.exists("/etc/nv_tegra_release")


def cv2() -> Any:
    """The cv2 module, or a one-line error saying how to install it here."""
    limit_decoding()
    quiet_logs()
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
    mod = cv2()
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        mod.namedWindow("edge-app-probe", mod.WINDOW_AUTOSIZE)
        mod.destroyWindow("edge-app-probe")
    except mod.error:
        return False
    return True
