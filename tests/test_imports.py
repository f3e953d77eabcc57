"""On-device code imports with only numpy, OpenCV and PyYAML: no torch, no TensorRT, and
nothing heavy happens at import time."""
from __future__ import annotations

import os
import re
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
import edge_app
# everything but the training code: the runtime, the CLI and edge_app.export (whose torch
# parts import torch inside their functions)
names = [m.name for m in pkgutil.walk_packages(edge_app.__path__, "edge_app.",
                                                onerror=lambda name: None)
         if not m.name.startswith("edge_app.train")]
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
                           "--violations", "edge_app", "train", "export"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_a_regular_install_ships_every_package_under_one_name(tmp_path):
    """Editable installs find any folder; a wheel only holds the packages setup.py lists, and
    its only top-level import name is edge_app (train/ and export/ install inside it)."""
    import os
    import zipfile

    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip("cannot build a wheel here: " + proc.stderr.strip()[-200:])
    wheel = zipfile.ZipFile(next(tmp_path.glob("*.whl")))
    names = set(wheel.namelist())
    packages = {os.path.relpath(folder, ROOT)
                for folder, _, files in os.walk(ROOT / "edge_app", followlinks=True)
                if "__init__.py" in files}
    assert {"edge_app/train", "edge_app/export", "edge_app/train/inputs"} <= packages
    missing = sorted(p for p in packages if p + "/__init__.py" not in names)
    assert not missing, f"not in the wheel: {missing}"
    assert "edge_app/builtin_configs/thumbs.yaml" in names
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"edge_app"}, tops
    top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
    assert wheel.read(top_level).decode().split() == ["edge_app"]


def test_a_users_train_py_and_export_py_do_not_shadow_ours(tmp_path):
    """jetson-inference's classification folder holds a train.py: from such a folder our
    commands still start (the user's files are never imported as ours)."""
    for name in ("train.py", "export.py"):
        (tmp_path / name).write_text("raise SystemExit('the user script ran')\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for args in ([sys.executable, "-m", "edge_app", "train", "--help"],
                 [sys.executable, "-m", "edge_app", "export", "--help"],
                 [sys.executable, "-m", "edge_app.train", "--help"]):
        proc = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr
        assert "usage: edge-app" in proc.stdout and "user script" not in proc.stderr


def test_import_contracts_list_every_on_device_room():
    """The import-linter contracts name the on-device rooms one by one: a new room must be
    added there, or it would escape the rule that on-device code never imports training."""
    text = (ROOT / "pyproject.toml").read_text()
    lists = re.findall(r"source_modules = \[   # ON_DEVICE\n(.*?)\]", text, re.S)
    assert len(lists) == 2
    rooms = {p.stem if p.suffix == ".py" else p.name
             for p in (ROOT / "edge_app").iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").exists())
             and p.name not in ("__init__.py", "__main__.py", "train", "export")}
    for block in lists:
        listed = set(re.findall(r'"edge_app\.(\w+)"', block))
        assert listed == rooms, f"ON_DEVICE differs from edge_app's rooms: {sorted(listed ^ rooms)}"


def test_the_namespace_has_few_top_level_modules():
    """edge_app/ keeps at most ten modules beside its packages: rooms, not a flat heap."""
    modules = [p.name for p in (ROOT / "edge_app").glob("*.py")
               if p.name not in ("__init__.py", "__main__.py")]
    assert len(modules) <= 10, modules
