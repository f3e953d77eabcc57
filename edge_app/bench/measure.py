"""The measurements: inference-only latency per backend, precision and batch size, and with
a source the end-to-end loop with each stage's share, telemetry sampled during each."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, cast

import numpy as np

from edge_app.backends.base import Precision
from edge_app.backends.registry import BACKENDS, Backend, BackendOptions, Batch, as_inputs
from edge_app.backends.registry import make_backend as registry_backend
from edge_app.bench.stats import latency_stats, spread
from edge_app.bench.telemetry import Sampler
from edge_app.errors import UserError
from edge_app.model.info import ModelInfo

# The built-in detectors are timed on MediaPipe itself, every frame searched afresh.
BENCH_OPTIONS = BackendOptions(subject_provider="mediapipe", tracking=False)


@dataclass
class Settings:
    backends: List[str]
    precisions: List[str]
    batches: List[int]
    frames: int = 200
    warmup: int = 20
    repeat: int = 1
    threads: Optional[int] = None
    source: Optional[str] = None


@dataclass
class Row:
    """One combination's figures (or why it was skipped)."""

    backend: str
    precision: str
    batch: int
    describe: str = ""
    skipped: str = ""
    latency_ms: Dict[str, float] = field(default_factory=dict)
    fps: Optional[float] = None
    fps_runs: Dict[str, float] = field(default_factory=dict)
    loop: Dict[str, Any] = field(default_factory=dict)
    telemetry: Dict[str, Any] = field(default_factory=dict)
    decode_ms: Dict[str, Any] = field(default_factory=dict)   # detectors: decode + NMS
    boxes: Optional[int] = None                               # ... and what it kept

    @property
    def key(self) -> str:
        return f"{self.backend}/{self.precision}/b{self.batch}"


def make_backend(name: str, precision: str, threads: Optional[int]) -> Backend:
    """A backend object for ``precision`` (TensorRT builds an engine per precision)."""
    precisions = BACKENDS[name].precisions
    if precision not in precisions:
        raise UserError("{} runs {} only".format(name, ", ".join(precisions)))
    backend = registry_backend(name, threads, BENCH_OPTIONS)
    backend.precision = cast(Precision, precision)   # checked against the entry's precisions
    return backend


def sample_batch(info: ModelInfo, batch: int, seed: int = 0) -> Batch:
    """Inputs of the model's shape (content does not change the speed of these models): an
    array, or a tuple of them for a model with several inputs."""
    like = info.dummy_input(batch)
    rng = np.random.default_rng(seed)

    def fill(a: np.ndarray) -> np.ndarray:
        if a.dtype == np.uint8:
            return rng.integers(0, 256, a.shape, dtype=np.uint8)
        return rng.normal(0, 1, a.shape).astype(np.float32)

    return fill(like) if isinstance(like, np.ndarray) else tuple(fill(a) for a in like)


def time_inference(backend: Backend, x: Batch, frames: int, warmup: int) -> List[float]:
    """Per-call milliseconds; every backend returns host arrays, so each call is synchronised
    with the device before the clock stops."""
    for _ in range(warmup):
        backend.infer(x)
    calls = max(1, frames // len(as_inputs(x)[0]))
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        backend.infer(x)
        out.append((time.perf_counter() - start) * 1000.0)
    return out


def time_decode(info: ModelInfo, backend: Backend, frames: int,
                frame_size: Tuple[int, int] = (640, 480)) -> Tuple[Dict[str, Any], int]:
    """A detector's decode + NMS on its own outputs for a frame of ``frame_size``: per-frame
    ms statistics, and the boxes kept."""
    det = info.detector
    image = np.zeros((frame_size[1], frame_size[0], 3), np.uint8)
    x, where = det.prepare(image)
    out = backend.detect(image, x)
    times, kept = [], 0
    for _ in range(max(1, frames)):
        start = time.perf_counter()
        kept = len(det.decode(out, where, frame_size))
        times.append((time.perf_counter() - start) * 1000.0)
    stats = {k: round(v, 4) if isinstance(v, float) else v for k, v in latency_stats(times).items()}
    return stats, kept


def measure(info: ModelInfo, name: str, precision: str, batch: int, s: Settings,
            sampler: Sampler, loop_fn: Any = None) -> Row:
    """One combination: load, warm up, time ``repeat`` runs; then the loop with a source."""
    row = Row(name, precision, batch)
    try:
        backend = make_backend(name, precision, s.threads)
        backend.load(info)
    except UserError as exc:
        row.skipped = str(exc)
        return row
    try:
        row.describe = backend.describe()
        x = sample_batch(info, batch)
        runs: List[List[float]] = []
        sampler.start()
        for _ in range(max(1, s.repeat)):
            runs.append(time_inference(backend, x, s.frames, s.warmup))
        row.telemetry = sampler.stop()
        every = [v for r in runs for v in r]
        row.latency_ms = {k: round(v, 4) if isinstance(v, float) else v
                          for k, v in latency_stats(every).items()}
        per_run = [batch * 1000.0 / float(np.median(r)) for r in runs]
        row.fps = round(float(np.median(per_run)), 2)
        row.fps_runs = {k: round(v, 4) if isinstance(v, float) else v for k, v in spread(per_run).items()}
        if info.detector is not None and batch == 1:
            row.decode_ms, row.boxes = time_decode(info, backend, s.frames)
        if loop_fn is not None and batch == 1:
            row.loop = loop_fn(info, backend)
    finally:
        backend.close()
    return row


def combinations(s: Settings) -> List[Tuple[str, str, int]]:
    return [(b, p, n) for b in s.backends for p in s.precisions for n in s.batches]
