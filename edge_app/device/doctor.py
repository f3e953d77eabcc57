"""``edge-app doctor``: what this machine has for edge-app, each line OK or what to do.

Every check is a small function returning :class:`Check` lines; they only read (files, module
versions, short subprocesses with timeouts) and never raise: a broken piece is a line."""
from __future__ import annotations

import importlib
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

from edge_app.bench.environment import JETPACK, l4t_release
from edge_app.camera.check import check_source as check_rotation
from edge_app.camera.check import read_frames
from edge_app.device import power
from edge_app.device.jetpack import UnsupportedRelease, release_for
from edge_app.errors import UserError
from edge_app.export.tensorrt_build import tensorrt_available
from edge_app.sources import FrameReader, open_source
from edge_app.subject.mediapipe_finder import mediapipe_available
from edge_app.subject.search import LookReport, settle_look

OK, WARN, FAIL, INFO = "OK", "WARN", "FAIL", "INFO"
MIN_FREE_GB = 2.0


@dataclass
class Check:
    status: str
    name: str
    message: str
    fix: str = ""

    def line(self) -> str:
        return "{:<5} {:<12} {}{}".format(self.status, self.name, self.message,
                                          "\n{:<18} -> {}".format("", self.fix) if self.fix else "")


def _read(path: str) -> Optional[str]:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip("\x00\n ")
    except OSError:
        return None


def _module(name: str) -> Optional[object]:
    try:
        return importlib.import_module(name)
    except Exception:
        return None


def _run(cmd: List[str], timeout: float = 5.0) -> Optional[str]:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def l4t() -> Optional[str]:
    return l4t_release(_read("/etc/nv_tegra_release"))


def check_platform() -> List[Check]:
    release = l4t()
    model = _read("/proc/device-tree/model") or platform.machine()
    if release is None:
        return [Check(INFO, "platform", f"{model} ({platform.platform()}), not a Jetson: desktop/CI use")]
    jetpack = JETPACK.get(".".join(release.split(".")[:2]), "unknown")
    if release.startswith("32."):
        return [Check(WARN, "platform", f"{model}: L4T {release} = JetPack {jetpack} (the original Jetson Nano's last "
                      "release: Python 3.6, TensorRT 8.2, CUDA 10.2)",
                      "works here with Python 3.8 (sudo apt install python3.8 python3.8-venv): capture, "
                      "the simulator, datasets, the live loop on ONNX Runtime (CPU) and benchmarks. Does "
                      "not: the TensorRT backend (JetPack 4's TensorRT 8.2 has Python bindings for "
                      "Python 3.6 only, and edge-app uses TensorRT 8.5+'s name-based API) and training "
                      "on the board (NVIDIA's torch wheels for JetPack 4 are Python 3.6). Train and "
                      "export on a desktop; run the ONNX model here, or move to an Orin board")]

    try:
        row = release_for(release)   # edge_app/device/jetpack.py: the installer's table
    except UnsupportedRelease as exc:
        return [Check(WARN, "platform", f"{model}: L4T {release} = JetPack {jetpack}", str(exc))]
    return [Check(OK, "platform", f"{model}: L4T {release} = JetPack {jetpack} (Python {row.python}, TensorRT {row.tensorrt}, CUDA {row.cuda})")]


def check_python() -> List[Check]:
    v = sys.version_info
    text = f"Python {v[0]}.{v[1]}.{v[2]} at {sys.executable}"
    if v < (3, 8):
        return [Check(FAIL, "python", text, "edge-app needs Python 3.8 or newer")]
    return [Check(OK, "python", text)]


def check_opencv() -> List[Check]:
    try:
        import cv2
    except Exception as exc:   # ImportError; a numpy-1 build under numpy 2 fails inside numpy
        return [Check(FAIL, "opencv", f"cv2 cannot be imported ({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__})", _opencv_fix(exc))]
    info = cv2.getBuildInformation()
    gst = any("GStreamer" in line and "YES" in line for line in info.splitlines())
    where = str(Path(getattr(cv2, "__file__", "?")).parent)
    pip_cv = "site-packages" in where and ("opencv" in where or (Path(where).parent / "opencv_python.libs").exists())
    out = [Check(OK if gst or not l4t() else WARN, "opencv",
                 "{} ({}), GStreamer {}".format(cv2.__version__, where, "yes" if gst else "no"),  # type: ignore[attr-defined]
                 "" if gst or not l4t() else "CSI cameras need GStreamer: remove pip's OpenCV "
                 "(pip uninstall opencv-python opencv-python-headless) to use JetPack's")]
    if l4t() and pip_cv:
        out.append(Check(WARN, "opencv", "a pip OpenCV shadows JetPack's",
                         "pip uninstall opencv-python opencv-python-headless opencv-contrib-python"))
    elif l4t():
        out += _jetpack_opencv(str(cv2.__version__), where)
    return out


def _opencv_fix(exc: BaseException) -> str:
    """What to do when cv2 does not import: numpy's fault, or no OpenCV at all."""
    numpy = _module("numpy")
    version = str(getattr(numpy, "__version__", ""))
    if version.startswith("2.") or "numpy" in str(exc).lower():
        return ("cv2 is built against numpy 1.x and numpy {} is installed: pip install 'numpy<2' (on a "
                "Jetson, deploy/install-jetson.sh pins numpy for the JetPack)".format(version or "?"))
    if l4t():
        return "use NVIDIA's OpenCV: sudo apt install nvidia-opencv"
    return "pip install -e '.[cv]' (or '.[headless]' without a display)"


def _jetpack_opencv(version: str, where: str) -> List[Check]:
    """A WARN when the cv2 found is not the JetPack's own OpenCV (Ubuntu's python3-opencv
    comes first on Python's path and shadows NVIDIA's)."""
    try:
        expected = release_for(l4t() or "").opencv
    except UnsupportedRelease:
        return []
    if version.startswith(expected):
        return []
    return [Check(WARN, "opencv", f"cv2 {version} ({where}) is not JetPack's OpenCV {expected}",
                  "sudo apt-get remove python3-opencv (Ubuntu's shadows NVIDIA's); sudo apt install nvidia-opencv")]


def check_cameras() -> List[Check]:
    devices = sorted(str(p) for p in Path("/dev").glob("video*"))
    if not devices:
        return [Check(INFO, "cameras", "no /dev/video* device (a USB or CSI camera appears there; "
                      "sim:// and files work without one)")]
    out = []
    for dev in devices:
        text = _run(["v4l2-ctl", "--device", dev, "--list-formats-ext"])
        if text is None:
            out.append(Check(OK, "cameras", dev, "sudo apt install v4l-utils to list its modes"))
            continue
        formats = sorted({line.split("'")[1] for line in text.splitlines() if "'" in line and "]" in line})
        sizes = sorted({line.split()[-1] for line in text.splitlines() if "Size:" in line},
                       key=lambda s: [int(v) for v in s.split("x")] if "x" in s else [0])
        out.append(Check(OK, "cameras", "{}: {}{}".format(dev, ", ".join(formats) or "no formats",
                                                        "; " + ", ".join(sizes[-4:]) if sizes else "")))
    return out


def check_tensorrt() -> List[Check]:
    if not tensorrt_available():
        hint = ("JetPack installs it: sudo apt install nvidia-tensorrt (python3-libnvinfer)"
                if l4t() else "desktop: pip install tensorrt (NVIDIA GPU); the onnx and torch backends work without it")
        return [Check(INFO if not l4t() else WARN, "tensorrt", "not installed", hint)]
    import tensorrt as trt

    version = str(trt.__version__)
    major_minor = tuple(int(v) for v in version.split(".")[:2])
    if major_minor < (8, 5):
        return [Check(WARN, "tensorrt", version, "edge-app's trt backend needs TensorRT 8.5+ (JetPack 5.1+)")]
    return [Check(OK, "tensorrt", version)]


def check_cuda() -> List[Check]:
    out = []
    version = _read("/usr/local/cuda/version.json")
    if version and '"cuda"' in version:
        import json

        try:
            out.append(Check(OK, "cuda", "CUDA {} (/usr/local/cuda)".format(
                json.loads(version)["cuda"]["version"])))
        except (ValueError, KeyError):
            pass
    smi = _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"])
    if smi:
        out.append(Check(OK, "gpu", smi.strip().splitlines()[0]))
    torch = _module("torch")
    if torch is None:
        out.append(Check(INFO, "torch", "not installed (only needed to train or for --backend torch)",
                         "Jetson: NVIDIA's torch wheel for your JetPack; elsewhere pip install -e '.[train]'"))
    else:
        cuda_ok = bool(torch.cuda.is_available())  # type: ignore[attr-defined]
        out.append(Check(OK if cuda_ok or not l4t() else WARN, "torch", "{} (CUDA {})".format(
            torch.__version__, "available" if cuda_ok else "not available"),  # type: ignore[attr-defined]
            "" if cuda_ok or not l4t() else "a pip torch has no Jetson CUDA: install NVIDIA's wheel"))
    ort = _module("onnxruntime")
    if ort is None:
        out.append(Check(WARN, "onnxruntime", "not installed", "pip install onnxruntime (NVIDIA's "
                         "onnxruntime-gpu wheel on a Jetson, from the Jetson Zoo)"))
    else:
        out.append(Check(OK, "onnxruntime", "{} ({})".format(
            ort.__version__, ", ".join(ort.get_available_providers())))) # type: ignore[attr-defined]
    return out


def check_subject() -> List[Check]:
    if mediapipe_available():
        mp = _module("mediapipe")
        return [Check(OK, "subject", "MediaPipe {} (hand and face finder)".format(getattr(mp, "__version__", "?")))]
    return [Check(WARN, "subject", "MediaPipe not installed: models that learn from the hand or face "
                  "crop cannot find it on a camera", "python -m edge_app.subject.install")]


def check_jtop() -> List[Check]:
    if not l4t():
        return []
    if _module("jtop") is None:
        return [Check(WARN, "jtop", "jetson-stats not installed (power and temperature in edge-app bench)",
                      "sudo pip3 install -U jetson-stats, then reboot")]
    state = _run(["systemctl", "is-active", "jtop.service"]) or ""
    if state.strip() != "active":
        return [Check(WARN, "jtop", "the jtop service is not running", "sudo systemctl restart jtop.service")]
    return [Check(OK, "jtop", "jetson-stats service active")]


def check_power() -> List[Check]:
    if not l4t():
        return []

    name, mode_id = power.parse_query(_run(["nvpmodel", "-q"]) or "")
    if name is None:
        return [Check(INFO, "power", "nvpmodel mode unknown (run as a user who may call nvpmodel -q)")]
    modes = power.read_modes()
    best = power.maximum(modes)
    if best is None or power.is_maximum(mode_id, modes) is None:
        return [Check(OK, "power", f"power mode {name}",
                      "for peak figures: the highest mode of /etc/nvpmodel.conf, then sudo jetson_clocks")]
    if power.is_maximum(mode_id, modes):
        return [Check(OK, "power", f"power mode {name} (this board's maximum)",
                      "for peak figures: sudo jetson_clocks")]
    return [Check(OK, "power", f"power mode {name} (this board's maximum is {best.name}, mode {best.id})", f"for peak figures: sudo nvpmodel -m {best.id} && sudo jetson_clocks")]


def check_disk(path: str = ".") -> List[Check]:
    free = shutil.disk_usage(path).free / 1e9
    text = f"{free:.1f} GB free in {os.path.abspath(path)}"
    if free < MIN_FREE_GB:
        return [Check(WARN, "disk", text, "captures, bundles and engines need space: free at least "
                      f"{MIN_FREE_GB:.0f} GB")]
    return [Check(OK, "disk", text)]


CHECKS: List[Callable[[], List[Check]]] = [
    check_platform, check_python, check_opencv, check_cameras, check_cuda, check_tensorrt,
    check_subject, check_jtop, check_power, check_disk]


def check_source(uri: str, seconds: float = 20.0, frames: int = 300, **mode: Optional[float]) -> List[Check]:
    """``--source S``: the source opens and delivers (its mode), and the camera check's
    rotation from upright evidence (faces, open hands) over up to ``frames`` frames."""
    looks: List[LookReport] = []
    try:
        options = {k: v for k, v in mode.items() if v is not None}
        source = open_source(uri, **options)   # type: ignore[arg-type]
        with FrameReader(source) as reader:
            result = check_rotation(reader, seconds=seconds, frames=frames)
            described = source.describe()
        if result.report.frames and mediapipe_available():   # from the first frame again
            with FrameReader(open_source(uri, **options)) as reader:   # type: ignore[arg-type]
                looks = settle_look(read_frames(reader, seconds), limit=min(frames, 90))
    except UserError as exc:
        return [Check(FAIL, "source", str(exc))]
    out = [Check(OK, "source", described)]
    if result.report.frames == 0:
        return out + [Check(FAIL, "source", f"{uri}: delivered no frame")]
    status = {"upright": OK, "turned": WARN, "unknown": INFO}[result.status]
    out.append(Check(status, "rotation", result.line(), result.fix()))
    if looks:
        odd = [r for r in looks if r.found and r.look != "plain"]
        fix = (f"the search learns it on its own; to pin it: --source '{uri}?look={odd[0].look}'"
               if odd else "")
        out.append(Check(INFO, "camera look", "; ".join(r.line() for r in looks), fix))
    return out


def run_checks() -> List[Check]:
    """Every check; one that breaks becomes a FAIL line naming it."""
    out: List[Check] = []
    for check in CHECKS:
        try:
            out.extend(check())
        except Exception as exc:
            out.append(Check(FAIL, check.__name__.replace("check_", ""), f"check failed: {exc}"))
    return out
