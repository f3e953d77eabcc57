"""The engine cache: an engine is only valid for the ONNX graph, TensorRT version, GPU and
precision it was built with. Each engine has a JSON sidecar recording those (and its own size
and hash); anything that does not match, or a truncated file, means rebuild, with one line
saying why. TensorRT's timing cache beside the engines is keyed the same way. Pure Python: no
TensorRT needed to decide."""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, List, Optional

from edge_app.dataset.atomic import atomic_write_text, json_text

PRECISIONS = ("fp16", "fp32", "int8")


@dataclass(frozen=True)
class DeviceInfo:
    """What an engine is bound to, besides the graph and the precision."""

    tensorrt: str
    gpu: str
    compute_capability: str


@dataclass(frozen=True)
class EngineKey:
    onnx_sha256: str
    tensorrt: str
    gpu: str
    compute_capability: str
    precision: str

    def filename(self) -> str:
        """e.g. ``model.fp16.trt10.3.0.sm87.1a2b3c4d5e6f.engine``: readable and unique."""
        trt = re.sub(r"[^0-9.]", "", self.tensorrt)
        sm = self.compute_capability.replace(".", "")
        return f"model.{self.precision}.trt{trt}.sm{sm}.{self.onnx_sha256[:12]}.engine"


def timing_cache_path(folder: Path, device: DeviceInfo) -> Path:
    """Where TensorRT's timing cache for this device lives, beside its engines: keyed by
    TensorRT version, GPU and compute capability like the engines, so that a bundle copied from
    a desktop (or another board) never hands its cache to a TensorRT that would refuse it, e.g.
    ``timing.trt10.3.0.sm87.orin.cache``."""
    trt = re.sub(r"[^0-9.]", "", device.tensorrt)
    sm = device.compute_capability.replace(".", "")
    gpu = re.sub(r"[^a-z0-9]+", "-", device.gpu.lower()).strip("-")[:40] or "gpu"
    return folder / f"timing.trt{trt}.sm{sm}.{gpu}.cache"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def engine_key(onnx_path: Path, precision: str, device: DeviceInfo) -> EngineKey:
    return EngineKey(file_sha256(onnx_path), device.tensorrt, device.gpu, device.compute_capability,
                     precision)


def sidecar(engine: Path) -> Path:
    return engine.with_name(engine.name + ".json")


def write_sidecar(engine: Path, key: EngineKey, seconds: float) -> None:
    data = dict(asdict(key), engine_size=engine.stat().st_size, engine_sha256=file_sha256(engine),
                build_seconds=round(seconds, 1), created=time.strftime("%Y-%m-%dT%H:%M:%S"))
    atomic_write_text(sidecar(engine), json_text(data, indent=2) + "\n")


def check_engine(engine: Path, key: EngineKey) -> str:
    """Why ``engine`` cannot be used for ``key`` (``""`` when it can)."""
    if not engine.is_file():
        return "no engine yet for this graph, TensorRT, GPU and precision"
    try:
        data = json.loads(sidecar(engine).read_text())
    except (OSError, ValueError):
        return f"{engine.name} has no readable sidecar, so where it was built is unknown"
    if data.get("tensorrt") != key.tensorrt:
        return "built with TensorRT {}, this device has {}".format(data.get("tensorrt"), key.tensorrt)
    if (data.get("gpu"), data.get("compute_capability")) != (key.gpu, key.compute_capability):
        return "built for {} (sm {}), this GPU is {} (sm {})".format(
            data.get("gpu"), data.get("compute_capability"), key.gpu, key.compute_capability)
    if data.get("precision") != key.precision:
        return "built for {}, {} was asked".format(data.get("precision"), key.precision)
    if data.get("onnx_sha256") != key.onnx_sha256:
        return "the ONNX graph changed since the engine was built"
    size = engine.stat().st_size
    if size != data.get("engine_size"):
        return "engine file is {} bytes, {} were written: truncated or replaced".format(
            size, data.get("engine_size"))
    if file_sha256(engine) != data.get("engine_sha256"):
        return "engine file content changed since it was built"
    return ""


def foreign_engines(folder: Path, key: EngineKey) -> List[str]:
    """Other engines in the folder, with what they were built for (to explain a rebuild)."""
    out = []
    for side in sorted(folder.glob("model.*.engine.json")):
        try:
            data = json.loads(side.read_text())
        except (OSError, ValueError):
            continue
        if data.get("precision") == key.precision and side.name != key.filename() + ".json":
            out.append("{} (TensorRT {}, {})".format(side.name[:-5], data.get("tensorrt"), data.get("gpu")))
    return out


def ensure_engine(onnx_path: Path, precision: str, device: DeviceInfo,
                  build: Callable[[Path, Path], None], folder: Optional[Path] = None,
                  log: Callable[[str], None] = print) -> Path:
    """The cached engine for this device, built (and its sidecar written) when missing or stale."""
    key = engine_key(onnx_path, precision, device)
    folder = folder or onnx_path.parent
    engine = folder / key.filename()
    reason = check_engine(engine, key)
    if not reason:
        return engine
    others = foreign_engines(folder, key)
    if engine.exists() or others:
        log("rebuilding the TensorRT engine: {}{}".format(
            reason, "; engines for other setups here: " + ", ".join(others) if others else ""))
    start = time.monotonic()
    build(onnx_path, engine)
    write_sidecar(engine, key, time.monotonic() - start)
    return engine
