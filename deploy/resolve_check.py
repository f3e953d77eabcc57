"""Resolve what deploy/install-jetson.sh installs, for each supported JetPack release, with pip's
own resolver for that release's Python on aarch64, and fail when numpy would leave its pin.

    python deploy/resolve_check.py [--release 6.0] [--unpinned] [--keep DIR]

JetPack's OpenCV and NVIDIA's torch wheels are numpy-1 builds: a numpy 2 (or any numpy other
than the one the constraints file pins) in the board's venv breaks ``import cv2``. pip resolves
on this machine for the board (``--platform manylinux_2_NN_aarch64 --python-version X.Y
--only-binary=:all: --dry-run --report``), under an interpreter of the board's Python where
one is installed so that environment markers match it. Packages installed with ``--no-deps``
(MediaPipe, ...) are checked against their own declared numpy range. NVIDIA's torch wheel is
left out: CI cannot reach NVIDIA's server. Needs the package index (PyPI).
``--unpinned`` resolves without the constraints files, as the installer did before them.
Exit status 0 when every release resolves at its pins, 1 with one line per problem.
"""
from __future__ import annotations

import argparse
import glob
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_app.device import jetpack  # noqa: E402  (the table the installer reads)
from edge_app.subject import install as subject_install  # noqa: E402

# glibc of each release's Ubuntu (20.04: 2.31, 22.04: 2.35): the newest manylinux tag it runs.
GLIBC = {"3.8": 31, "3.10": 35}
# MediaPipe's solutions package imports matplotlib; its wheel goes in with --no-deps.
SUBJECT_EXTRA = ["matplotlib"]
# Pure-Python dependencies published only as source (norfair's filterpy): the board builds them
# at install time; here they are built into wheels once so that --only-binary=:all: holds.
SOURCE_ONLY = ["filterpy==1.4.5"]


def interpreter(version: str) -> Tuple[str, str]:
    """A Python of ``version`` to run pip under (markers then match the board), else this one."""
    candidates = [shutil.which("python" + version) or ""] + sorted(
        glob.glob(str(Path.home() / f".pyenv/versions/{version}.*/bin/python")))
    for exe in candidates:
        check = "import sys, pip; assert sys.version_info[:2] == ({},)".format(version.replace(".", ", "))
        if exe and subprocess.run([exe, "-c", check], capture_output=True).returncode == 0:
            return exe, ""
    return sys.executable, "no Python {} here: markers evaluated for {}.{}".format(
        version, *sys.version_info[:2])


def target_args(release: jetpack.JetPack) -> List[str]:
    """pip options that resolve for the board instead of this machine."""
    out = ["--python-version", release.python, "--implementation", "cp", "--only-binary=:all:"]
    for minor in range(17, GLIBC[release.python] + 1):
        out += ["--platform", f"manylinux_2_{minor}_aarch64"]
    return out + ["--platform", "manylinux2014_aarch64"]


def build_wheel(work: Path) -> Path:
    """edge-app's own wheel (pure Python, so it installs on any platform), built from a copy of
    the sources so that nothing is written into the work tree."""
    src = work / "src"
    src.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("edge_app", "configs", "train", "export"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"), str(src)]
    cmd += SOURCE_ONLY
    if _has_setuptools():
        cmd.insert(4, "--no-build-isolation")   # offline-friendly where setuptools is here
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit("cannot build the wheels to resolve with: " + result.stderr.strip()[-400:])
    return next((work / "dist").glob("edge_app-*.whl"))


def _has_setuptools() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("setuptools", "wheel"))


def install_sets(release: jetpack.JetPack, wheel: Path) -> Tuple[List[str], List[str], List[str]]:
    """The installer's steps for this release: its first pip install (which fixes numpy for
    every later step), everything resolved together, and what goes in with --no-deps."""
    python = tuple(int(v) for v in release.python.split("."))
    src = str(wheel)
    first = jetpack.packages("runtime", src)
    together = (first + subject_install.dependencies(python)  # type: ignore[arg-type]
                + [subject_install.NORFAIR] + SUBJECT_EXTRA + jetpack.packages("train", src))
    no_deps = [subject_install.pick_mediapipe(python, "aarch64", 1)]  # type: ignore[arg-type]
    return first, together, no_deps + jetpack.packages("train-nodeps", src)


def resolve(python: str, release: jetpack.JetPack, requirements: Sequence[str], report: Path,
            constraints: Optional[Path], links: Path, no_deps: bool = False) -> List[Dict]:
    """pip's dry run for the board; the report's install list (or a RuntimeError, pip's last lines)."""
    cmd = [python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
           "--report", str(report), "--disable-pip-version-check",
           "--target", str(report.parent / "target")] + target_args(release)   # pip < 23.1 wants one
    if no_deps:
        cmd = [c for c in cmd if c != "--only-binary=:all:"] + ["--no-deps"]
    if constraints is not None:
        cmd += ["-c", str(constraints)]
    cmd += ["--find-links", str(links)]   # edge-app's wheel and the SOURCE_ONLY ones
    result = subprocess.run(cmd + list(requirements), capture_output=True, text=True)
    if result.returncode != 0:
        lines = [ln for ln in result.stderr.splitlines() if ln.strip() and "WARNING" not in ln]
        raise RuntimeError(" | ".join(lines[-4:]) or "pip failed")
    return list(json.loads(report.read_text())["install"])


def pins(constraints: Path) -> Dict[str, str]:
    """name -> version for every ``name==version`` line of a constraints file."""
    out = {}
    for line in constraints.read_text().splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s;#]+)", line)
        if match:
            out[_norm(match.group(1))] = match.group(2)
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def numpy_problems(installed: List[Dict], numpy: str, release: jetpack.JetPack) -> List[str]:
    """Packages (installed with --no-deps) whose declared numpy range excludes ``numpy``."""
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.version import Version

    env = {"python_version": release.python, "python_full_version": release.python + ".0",
           "platform_machine": "aarch64", "sys_platform": "linux", "platform_system": "Linux",
           "os_name": "posix", "implementation_name": "cpython", "extra": ""}
    out = []
    for item in installed:
        for text in item["metadata"].get("requires_dist") or []:
            req = Requirement(text)
            if _norm(req.name) != "numpy" or (req.marker and not req.marker.evaluate(env)):
                continue
            if Version(numpy) not in req.specifier:
                out.append("{} {} declares numpy{} but numpy {} is installed".format(
                    item["metadata"]["name"], item["metadata"]["version"], req.specifier, numpy))
    return out


def check_release(release: jetpack.JetPack, wheel: Path, work: Path, unpinned: bool = False) -> List[str]:
    """One line per problem with this release's install set (none: it resolves at its pins)."""
    constraints = ROOT / "deploy" / release.constraints
    python, note = interpreter(release.python)
    if note:
        print(f"note: JetPack {release.jetpack}: {note}", file=sys.stderr)
    first, together, no_deps = install_sets(release, wheel)
    name = f"JetPack {release.jetpack} (Python {release.python})"
    use = None if unpinned else constraints
    try:
        steps = [resolve(python, release, first, work / "first.json", use, wheel.parent),
                 resolve(python, release, together, work / "all.json", use, wheel.parent)]
        extra = resolve(python, release, no_deps, work / "nodeps.json", use, wheel.parent, no_deps=True)
    except RuntimeError as exc:
        return [f"{name}: pip cannot resolve the install set: {exc}"]
    out: List[str] = []
    for step, installed in zip(("the first pip install", "the whole install"), steps):
        versions = {_norm(i["metadata"]["name"]): i["metadata"]["version"] for i in installed}
        out += [f"{name}: {step}: {p}" for p in pin_problems(versions, pins(constraints), release)]
    numpy = _versions(steps[0]).get("numpy", "")
    out += [f"{name}: {p}" for p in numpy_problems(extra, numpy, release)]
    if not out:
        versions = _versions(steps[1] + extra)
        print("ok  {}: numpy {}, onnxruntime {}, {} packages".format(
            name, numpy, versions.get("onnxruntime"), len(versions)))
    return out


def _versions(installed: List[Dict]) -> Dict[str, str]:
    return {_norm(i["metadata"]["name"]): i["metadata"]["version"] for i in installed}


def pin_problems(versions: Dict[str, str], pinned: Dict[str, str], release: jetpack.JetPack) -> List[str]:
    """numpy not 1.x, or any package the constraints pin resolved to another version."""
    numpy = versions.get("numpy", "")
    out = []
    if not numpy.startswith("1."):
        out.append("numpy resolves to {}; JetPack's OpenCV and NVIDIA's torch need numpy 1.x".format(
            numpy or "nothing"))
    for package, version in sorted(pinned.items()):
        if package in versions and versions[package] != version:
            out.append(f"{package} resolves to {versions[package]}, {release.constraints} pins {version}")
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", action="append", choices=[r.jetpack for r in jetpack.RELEASES],
                        help="only these releases (default: all)")
    parser.add_argument("--unpinned", action="store_true", help="without the constraints files")
    parser.add_argument("--keep", type=Path, help="keep pip's reports in this folder")
    args = parser.parse_args(argv)
    problems: List[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        wheel = build_wheel(Path(tmp))
        for release in jetpack.RELEASES:
            if args.release and release.jetpack not in args.release:
                continue
            work = (args.keep or Path(tmp)) / release.constraints.replace(".txt", "")
            work.mkdir(parents=True, exist_ok=True)
            problems += check_release(release, wheel, work, args.unpinned)
    for line in problems:
        print("FAIL " + line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
