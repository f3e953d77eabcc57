"""What the figures were measured on: device, software versions, model and bundle hash."""
from __future__ import annotations

import hashlib
import importlib
import platform
from pathlib import Path
from typing import Any, Dict, Optional

from edge_app import __version__
from edge_app.model.info import ModelInfo


def _read(path: str) -> Optional[str]:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip("\x00\n ")
    except OSError:
        return None


def l4t_release(text: Optional[str]) -> Optional[str]:
    """'35.4.1' from /etc/nv_tegra_release ('# R35 (release), REVISION: 4.1, ...')."""
    if not text or not text.startswith("# R"):
        return None
    try:
        major = text.split()[1].lstrip("R")
        revision = text.split("REVISION:")[1].split(",")[0].strip()
    except IndexError:
        return None
    return f"{major}.{revision}"


# L4T major.minor -> JetPack (the pairs NVIDIA publishes).
JETPACK = {"32.7": "4.6.x", "35.1": "5.0.2", "35.2": "5.1", "35.3": "5.1.1", "35.4": "5.1.2",
           "35.5": "5.1.3", "35.6": "5.1.4", "36.2": "6.0 DP", "36.3": "6.0", "36.4": "6.1/6.2"}


def _version(module: str) -> Optional[str]:
    try:
        return str(getattr(importlib.import_module(module), "__version__", "?"))
    except Exception:
        return None


def device() -> Dict[str, Any]:
    """The machine: Jetson model and L4T/JetPack where there is one, else the CPU."""
    out: Dict[str, Any] = {"machine": platform.machine(), "system": platform.platform(),
                           "python": platform.python_version()}
    model = _read("/proc/device-tree/model")
    l4t = l4t_release(_read("/etc/nv_tegra_release"))
    if model:
        out["model"] = model
    if l4t:
        out["l4t"] = l4t
        out["jetpack"] = JETPACK.get(".".join(l4t.split(".")[:2]), "unknown")
    cpu = _cpu_name()
    if cpu:
        out["cpu"] = cpu
    import os

    out["cpu_count"] = os.cpu_count()
    return out


def _cpu_name() -> Optional[str]:
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if line.lower().startswith(("model name", "hardware")):
            return line.split(":", 1)[1].strip()
    return None


def versions() -> Dict[str, Optional[str]]:
    out = {m: _version(m) for m in ("numpy", "cv2", "onnxruntime", "tensorrt", "torch")}
    try:
        import torch

        out["cuda"] = torch.version.cuda
    except Exception:
        out["cuda"] = None

    out["edge_app"] = __version__
    return out


def model_facts(info: ModelInfo) -> Dict[str, Any]:
    """Name, task, input, and a hash of the weights the figures belong to."""
    files = [p for p in (info.onnx, info.bundle / "model.pt" if info.bundle else None) if p and Path(p).is_file()]
    h = hashlib.sha256()
    for path in files:
        h.update(Path(path).read_bytes())
    return {"name": info.name, "task": info.task.name, "kind": info.task.kind,
            "input_size": list(info.input_size), "input": info.input_kind.name,
            "bundle": str(info.bundle) if info.bundle else None,
            "onnx": str(info.onnx) if info.onnx else None,
            "sha256": h.hexdigest()[:16] if files else None}
