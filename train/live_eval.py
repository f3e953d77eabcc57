"""``edge-app eval --live``: a dataset streamed through exactly what ``edge-app run`` does.

Each class is one stream of its images in sorted file order (as ``run --source FOLDER`` would
show them), through the backend ``run`` would choose and the live loop, the tracker reset
between streams. A frame with no answer counts as an error, as in eval's own figure. Twice:
as ``run --source FOLDER`` takes them (pictures of a folder, each searched as eval does), and as
a camera would show them (``as_camera``: the live search with its budget per frame, tracking
and the camera look learned and held, the noise gate).
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from edge_app.backends.registry import BackendOptions, choose_backend
from edge_app.dataset.samples import Dataset, Sample
from edge_app.errors import UserError
from edge_app.model.info import load_model_info
from edge_app.names import printable
from edge_app.runtime.loop import Runner, run_loop
from edge_app.sources.folder import ImageFolder
from edge_app.sources.reader import FrameReader
from edge_app.subject.search import LIVE
from edge_app.subject.stage import SubjectStage, stage_provider

log = logging.getLogger(__name__)


class _Images(ImageFolder):
    """A stream of given image files, in the order given."""

    def __init__(self, uri: str, files: Sequence[Path]) -> None:
        super().__init__(uri, str(files[0].parent) if files else ".")
        self._given = list(files)

    def open(self) -> None:
        self.files = list(self._given)
        self._pos = 0


class _Answers:
    """A sink that keeps each frame's first result, by the frame's file."""

    needs_frames = False   # nothing is drawn for it

    def __init__(self) -> None:
        self.rows: List[Dict[str, Any]] = []

    def submit(self, frame: np.ndarray, record: Dict[str, Any]) -> None:
        self.rows.append(record)


def streams(ds: Dataset) -> Dict[str, List[Sample]]:
    """The dataset's images as ``run`` would stream them: one stream per class, in sorted file
    order (a point dataset is one stream)."""
    out: Dict[str, List[Sample]] = defaultdict(list)
    for sample in sorted(ds.samples, key=lambda s: str(s.path)):
        out[sample.label or ""].append(sample)
    return dict(sorted(out.items()))


def live_evaluate(bundle_path: Path, ds: Dataset, tracking: bool = True, backend: str = "auto",
                  subject_provider: str = "auto", look: Optional[str] = None,
                  as_camera: bool = False) -> Dict[str, Any]:
    """Accuracy of a classification bundle on ``ds`` through the live loop; per-image answers.
    ``as_camera``: each stream as a camera's frames (the live search with its budget per frame,
    the camera look learned) instead of a folder of pictures (each searched as eval does)."""
    info = load_model_info(str(bundle_path))
    if info.task is None or info.task.task_kind.labels_key != "classes":
        raise UserError("eval --live scores classification tasks; for a point task run "
                        "edge-app run --source FOLDER --json-out FILE")
    options = BackendOptions(subject_provider=subject_provider, tracking=tracking)
    engine, why = choose_backend(backend, info, None, options)
    engine.warmup(info)
    log.info("live: %s on %s (%s), tracking %s", info.name, engine.describe(), why,
             "on" if tracking else "off")
    stage = None
    if info.subject:
        provider = stage_provider(subject_provider, [info.plan.feature_schema])
        stage = SubjectStage([info.subject], provider, tracking=tracking, look=look,
                             policy=replace(LIVE, tracking=tracking), stills=not as_camera)
    answers: List[Dict[str, Any]] = []
    start = time.monotonic()
    try:
        for label, samples in streams(ds).items():
            if stage is not None:
                stage.reset()
            sink = _Answers()
            files = [s.path for s in samples]
            with FrameReader(_Images(label, files), drop=False) as reader:
                run_loop(reader, [Runner(info, engine)], [sink], subjects=stage)
            by_path = {row.get("path"): row for row in sink.rows}
            for sample in samples:   # an unreadable image was skipped: no row, a miss
                answers.append(_answer(sample, by_path.get(printable(sample.path))))
    finally:
        engine.close()
        if stage is not None:
            stage.close()
    return _score(answers, info.task.classes, time.monotonic() - start,
                  stage.looks() if stage is not None else {})


def _answer(sample: Sample, row: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    result = (row or {}).get("results", [{}])[0] if row else {}
    label = result.get("label")
    return {"image": str(sample.path), "label": sample.label, "answer": label,
            "found": label is not None, "correct": label == sample.label}


def _score(answers: List[Dict[str, Any]], classes: Sequence[str], seconds: float,
           looks: Dict[str, str]) -> Dict[str, Any]:
    n = len(answers)
    per_class = {}
    for name in classes:
        rows = [a for a in answers if a["label"] == name]
        per_class[name] = sum(a["correct"] for a in rows) / len(rows) if rows else None
    return {"accuracy": sum(a["correct"] for a in answers) / n if n else 0.0,
            "detection_rate": sum(a["found"] for a in answers) / n if n else 0.0,
            "n": n, "per_class": per_class, "seconds": round(seconds, 2), "looks": looks,
            "answers": answers}
