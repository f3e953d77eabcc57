"""The live loop as explicit, timed stages:

grab (reader thread, newest frame) -> subject (find the hand or face, for crop models) ->
preprocess (crop or resize, colour order) -> infer -> decode -> smooth -> collect (keep hard
frames, with --collect) -> annotate -> output (sinks behind queues; an optional window)

Between two frames a model may be replaced by a new bundle prepared in the background
(:mod:`edge_app.runtime.swap`): the swap is one assignment, so no frame waits for it.
"""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, List, Optional, Protocol, Sequence, Tuple

import numpy as np

from edge_app.annotate import Context, annotate, default_annotators
from edge_app.backends.registry import Backend
from edge_app.errors import UserError
from edge_app.model.info import ModelInfo
from edge_app.model.results import DECODERS, DetectionsResult, NoSubject, Result, smooth
from edge_app.sources.reader import FrameReader
from edge_app.subject.stage import SubjectStage, place, stage_provider

STAGES = ("grab", "subject", "preprocess", "infer", "decode", "smooth", "collect", "annotate",
          "output")


class Sink(Protocol):
    """Where each frame's picture and JSON record go (a recording, a JSON-lines file, the
    MJPEG server: :mod:`edge_app.runtime.sinks`); it never blocks the loop."""

    def submit(self, frame: np.ndarray, record: Dict[str, Any]) -> None: ...


class Display(Protocol):
    """The local window (:class:`edge_app.runtime.window.Window`)."""

    def show(self, frame: np.ndarray) -> bool:
        """Show a frame; False once the user closed the window."""


class Collector(Protocol):
    """Keeps the hard frames (:class:`edge_app.runtime.collect.Collector`)."""

    def observe(self, frame: Any, names: Sequence[str], results: Sequence[Result],
                subjects: Sequence[Optional[Dict[str, Any]]], bundles: Sequence[str] = ()) -> int:
        """Consider this frame for each model; return how many were kept."""


class Swap(Protocol):
    """A model slot watched for a new bundle (:class:`edge_app.runtime.swap.BundleSwap`)."""

    index: int   # the slot in ``runners`` it may replace

    def take(self) -> Optional[Runner]:
        """A new runner ready to go in, or None."""

    def retire(self, runner: Runner) -> None:
        """Take back the runner that was replaced, to close it off the loop's thread."""


class StageTimer:
    """Per-stage milliseconds: a rolling average for the overlay, all samples for the report."""

    def __init__(self) -> None:
        self.samples: Dict[str, List[float]] = {s: [] for s in STAGES}
        self.rolling: Dict[str, float] = {}

    def add(self, stage: str, seconds: float) -> None:
        ms = seconds * 1000.0
        self.samples[stage].append(ms)
        self.rolling[stage] = ms if stage not in self.rolling else 0.9 * self.rolling[stage] + 0.1 * ms

    def medians(self) -> Dict[str, float]:
        return {s: float(np.median(v)) for s, v in self.samples.items() if v}


@dataclass
class Runner:
    """One model on the stream: what it is, what runs it, its recent results."""

    info: ModelInfo
    backend: Backend
    history: Deque[Result] = field(default_factory=lambda: collections.deque(maxlen=1))
    tracker: Optional[Any] = None   # detectors: gives boxes ids across frames (smooth stage)
    version: str = ""               # the bundle a watched link points to (its folder name)


@dataclass
class LoopStats:
    frames: int = 0
    seconds: float = 0.0
    stages_ms: Dict[str, float] = field(default_factory=dict)
    stopped_by: str = "end of source"

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def run_loop(reader: FrameReader, runners: Sequence[Runner], sinks: Sequence[Sink] = (),
             window: Optional[Display] = None, max_frames: Optional[int] = None, smooth_n: int = 1,
             status: str = "", stop: Optional[threading.Event] = None,
             subjects: Optional[SubjectStage] = None, collector: Optional[Collector] = None,
             swaps: Sequence[Swap] = ()) -> LoopStats:
    """Run until the source ends, ``max_frames`` frames, the window closes or ``stop`` is set.
    ``subjects`` finds the hand or face for the models that look at its crop (by default the
    ``auto`` provider, tracking, owned and closed by this call). ``collector`` (an
    :class:`edge_app.runtime.collect.Collector`) keeps the hard frames; each of ``swaps`` (an
    :class:`edge_app.runtime.swap.BundleSwap`) may replace ``runners[swap.index]`` between two
    frames: ``runners`` is then a list, updated in place, and the replaced runner is handed
    back to the swap to close."""
    kinds = [r.info.subject for r in runners if r.info.subject]
    if subjects is None and kinds:
        provider = stage_provider("auto", [r.info.plan.feature_schema for r in runners])
        with SubjectStage(kinds, provider) as own:
            return run_loop(reader, runners, sinks, window, max_frames, smooth_n, status, stop, own,
                            collector, swaps)
    stop = stop or threading.Event()
    for r in runners:
        r.history = collections.deque(maxlen=max(1, smooth_n))
    timer, stats, annotators = StageTimer(), LoopStats(), default_annotators()
    # Drawing is only done for someone who looks: a window, a recording, a stream.
    draw = window is not None or any(getattr(s, "needs_frames", True) for s in sinks)
    ctx = Context(status=status)
    start = last = time.perf_counter()
    while not stop.is_set() and (max_frames is None or stats.frames < max_frames):
        frame = reader.get(timeout=0.5)
        t = time.perf_counter()
        if frame is None:
            if reader.finished:
                break
            continue
        timer.add("grab", t - last)
        for swap in swaps:
            _swap_in(runners, swap, smooth_n)
        found: Dict[str, Any] = {}
        if subjects is not None:
            found = subjects.find(frame.image, frame.truth, still=frame.path is not None)
            t = _mark(timer, "subject", t)
        results: List[Result] = []
        inputs: Dict[Any, Any] = {}
        for r in runners:
            if r.info.detector is not None:
                result, t = _detect(r, frame.image, frame.truth, timer, t)
            else:
                result, t = _run_one(r, frame.image, found, inputs, timer, t)
            if r.tracker is not None and isinstance(result, DetectionsResult):
                result = r.tracker.update(result)
            r.history.append(result)
            results.append(smooth(list(r.history)) if smooth_n > 1 else result)
            t = _mark(timer, "smooth", t)
        if collector is not None:
            _collect(collector, frame, runners, found)
            t = _mark(timer, "collect", t)
        ctx.fps = stats.frames / (t - start) if t > start else 0.0
        ctx.stages_ms = dict(timer.rolling)
        shown = frame.image
        if draw:
            shown = annotate(frame.image.copy(), results, ctx, annotators)
            t = _mark(timer, "annotate", t)
        record = _record(frame, runners, results, timer)
        for sink in sinks:
            sink.submit(shown, record)
        if window is not None and not window.show(shown):
            stats.stopped_by = "window closed"
            stop.set()
        last = _mark(timer, "output", t)
        stats.frames += 1
    stats.seconds = time.perf_counter() - start
    stats.stages_ms = timer.medians()
    if stop.is_set() and stats.stopped_by == "end of source":
        stats.stopped_by = "stopped"
    elif max_frames is not None and stats.frames >= max_frames:
        stats.stopped_by = "--frames reached"
    return stats


def _swap_in(runners: Sequence[Runner], swap: Swap, smooth_n: int) -> None:
    """Put a new runner the swap has ready in its slot; the old one goes back to be closed."""
    new = swap.take()
    if new is None:
        return
    if not isinstance(runners, list):
        raise TypeError("runners must be a list when models can be swapped")
    new.history = collections.deque(maxlen=max(1, smooth_n))
    old, runners[swap.index] = runners[swap.index], new
    new.tracker = old.tracker
    swap.retire(old)


def _collect(collector: Collector, frame: Any, runners: Sequence[Runner], found: Dict[str, Any]) -> None:
    """Hand each model's own answer (not the smoothed one) and its subject to the collector."""
    size = (frame.image.shape[1], frame.image.shape[0])
    subjects = []
    for r in runners:
        sub = found.get(r.info.subject) if r.info.subject else None
        if sub is not None:
            subjects.append(sub.to_dict(size))
        else:   # a frame model: the simulator's subject, if any, so a review can store it
            subjects.append((frame.truth or {}).get("subject"))
    collector.observe(frame, [r.info.name for r in runners], [r.history[-1] for r in runners],
                      subjects, [r.version for r in runners])


def _run_one(r: Runner, image: np.ndarray, found: Dict[str, Any], inputs: Dict[Any, Any],
             timer: StageTimer, t: float) -> Tuple[Result, float]:
    """Preprocess, infer and decode for one model; models sharing an input share its work."""
    kind = r.info.subject
    subject = found.get(kind) if kind else None
    if kind is not None and subject is None:
        return NoSubject(kind), _mark(timer, "preprocess", t)
    key = (r.info.input_kind.name, r.info.input_size, kind, r.info.pad if kind else None)
    if key not in inputs:
        inputs[key] = _model_input(r.info, image, subject)
    batch, where = inputs[key]
    t = _mark(timer, "preprocess", t)
    if batch is None:   # a subject without usable landmarks
        return NoSubject(kind or "subject"), t
    out = r.backend.infer(batch)
    t = _mark(timer, "infer", t)
    result = DECODERS[r.info.output](out[0], r.info.labels)
    if where is not None and subject is not None:
        result = place(result, subject, where, (image.shape[1], image.shape[0]))
    return result, _mark(timer, "decode", t)


def _detect(r: Runner, image: np.ndarray, truth: Optional[Dict[str, Any]], timer: StageTimer,
            t: float) -> Tuple[Result, float]:
    """Preprocess, infer, decode (threshold, class filter, NMS, boxes to the frame) for a
    detector; the built-in ones take the frame and, on simulated frames, its ground truth."""
    det = r.info.detector
    x, where = det.prepare(image)
    t = _mark(timer, "preprocess", t)
    out = r.backend.detect(image, x, truth)
    t = _mark(timer, "infer", t)
    size = (image.shape[1], image.shape[0])
    result = DetectionsResult.from_detections(det.decode(out, where, size), size)
    return result, _mark(timer, "decode", t)


def _model_input(info: ModelInfo, image: np.ndarray, subject: Any) -> Tuple[Any, Any]:
    """The batch a model is fed, and what maps its output back to the frame."""
    return info.input_kind.live_input(image, subject, info.input_size, info.pad,
                                      info.plan.feature_schema)


def _mark(timer: StageTimer, name: str, since: float) -> float:
    """Book the time since ``since`` to stage ``name``; returns now."""
    now = time.perf_counter()
    timer.add(name, now - since)
    return now


def _record(frame: Any, runners: Sequence[Runner], results: Sequence[Result],
            timer: StageTimer) -> Dict[str, Any]:
    record: Dict[str, Any] = {
        "frame": frame.id, "time": round(frame.timestamp, 4),
        "results": [_result(run, r) for run, r in zip(runners, results)],
        "timings_ms": {s: round(v[-1], 3) for s, v in timer.samples.items() if v}}
    if frame.path:
        record["path"] = frame.path
    if frame.truth is not None:
        record["truth"] = frame.truth
    return record


def _result(run: Runner, result: Result) -> Dict[str, Any]:
    out = dict(result.to_dict(), model=run.info.name)
    if run.version:
        out["bundle"] = run.version
    return out


def check_models(runners: Sequence[Runner]) -> Tuple[str, ...]:
    """Distinct input sizes (models sharing a size share the resize)."""
    if not runners:
        raise UserError("no model to run")
    return tuple(sorted({r.info.describe_input() for r in runners}))
