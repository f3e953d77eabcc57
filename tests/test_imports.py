"""On-device code imports with only numpy, OpenCV and PyYAML: no torch, no TensorRT, and
nothing heavy happens at import time."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {"torch", "torchvision", "tensorrt", "jtop", "onnxruntime"}:
            raise ImportError("blocked for this test: " + name)
sys.meta_path.insert(0, Block())
import importlib, pkgutil
import edge_app, export
names = [m.name for pkg in (edge_app, export)
         for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_on_device_packages_import_without_torch_or_tensorrt():
    proc = subprocess.run([sys.executable, "-c", BLOCKER], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.strip()) > 20


def test_cli_import_is_light():
    code = ("import sys, edge_app.cli; edge_app.cli.build_parser(); "
            "print(sorted(m for m in ('cv2', 'torch', 'yaml', 'tqdm') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", "building the CLI must not import OpenCV, torch or YAML"


def test_vermin_python38():
    exe = Path(sys.executable).with_name("vermin")
    if not exe.exists():
        pytest.skip("vermin is not installed (pip install -e '.[dev]')")
    proc = subprocess.run([str(exe), "-q", "--no-tips", "-t=3.8-",
                           "--violations", "edge_app", "export", "train"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_a_regular_install_ships_every_package(tmp_path):
    """Editable installs find any folder; a wheel only holds the packages setup.py lists."""
    import zipfile

    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip("cannot build a wheel here: " + proc.stderr.strip()[-200:])
    names = set(zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist())
    packages = {str(p.parent.relative_to(ROOT)) for top in ("edge_app", "train", "export")
                for p in (ROOT / top).rglob("__init__.py")}
    missing = sorted(p for p in packages if p + "/__init__.py" not in names)
    assert not missing, "not in the wheel: {}".format(missing)
    assert "edge_app/builtin_configs/thumbs.yaml" in names
