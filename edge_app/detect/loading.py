"""Detection models as the runtime sees them: a detector's ONNX file (jetson-inference's
SSD-Mobilenet, Ultralytics YOLO) or a built-in detector (``hands``, ``faces``: the subject
stage's MediaPipe models), read into a :class:`DetectorModel` that
:func:`edge_app.model.info.load_model_info` turns into its ``ModelInfo``. This module does not
import ``edge_app.model.info``, which imports it."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

from edge_app.detect.detector import Detector, read_labels
from edge_app.detect.layouts import BUILTIN_LAYOUT, LAYOUTS, Layout, labels_from, recognise
from edge_app.errors import UserError, did_you_mean
from edge_app.tasks.spec import TaskSpec

log = logging.getLogger(__name__)

BUILTIN = {"hands": "hand", "faces": "face"}   # --model name -> subject kind
OUTPUT = "detections"                           # the output every detection model has
BUILTIN_BACKEND = "mediapipe"                   # the backend that runs the built-in detectors


@dataclass
class DetectOptions:
    """The command line's detection settings."""

    labels: Optional[str] = None           # labels file, one name per line
    layout: Optional[str] = None           # force a layout instead of recognising it
    conf: float = 0.25
    iou: float = 0.45
    classes: Optional[Sequence[str]] = None   # keep only these names (or ids)
    max_det: int = 100


@dataclass(frozen=True)
class DetectorModel:
    """What a detection model is: its name, classes, input and pre- and post-processing."""

    name: str
    task: TaskSpec
    input_size: Tuple[int, int]      # (height, width)
    onnx: Optional[Path]             # None for a built-in detector
    detector: Detector
    graph_inputs: Tuple[str, ...]
    runs_on: str = ""                # the one backend that runs it ("" = any)

    @property
    def labels(self) -> Tuple[str, ...]:
        return self.task.labels


def read_detector(path: Path, graph: Any, options: DetectOptions) -> DetectorModel:
    """A detector's ONNX file, whose inputs, outputs and metadata are ``graph`` (an
    :class:`edge_app.model.info.GraphIO`)."""
    layout = _layout(graph, options.layout, path)
    if len(graph.inputs) != 1:
        raise UserError("{}: a detector takes one image input; this graph takes {}".format(
            path, ", ".join(graph.inputs)))
    name, shape = next(iter(graph.inputs.items()))
    size = _input_size(shape, graph.metadata, layout, path)
    labels = _labels(options, graph, layout, path)
    detector = Detector(layout, size, labels, options.conf, options.iou,
                        _class_ids(options.classes, labels), options.max_det)
    task = TaskSpec(name=path.stem, kind="detection", classes=tuple(labels))
    return DetectorModel(path.stem, task, size, path, detector, (name,))


def builtin_model(name: str, options: DetectOptions) -> DetectorModel:
    """``hands`` or ``faces``: the subject stage's detectors, drawn and counted like any
    other; run by the ``mediapipe`` backend on the frame itself."""
    labels = [BUILTIN[name]]
    size = BUILTIN_LAYOUT.default_size
    detector = Detector(BUILTIN_LAYOUT, size, labels, options.conf, options.iou,
                        None, options.max_det)
    task = TaskSpec(name=name, kind="detection", classes=tuple(labels))
    return DetectorModel(name, task, size, None, detector, ("frame",), runs_on=BUILTIN_BACKEND)


def _layout(graph: Any, forced: Optional[str], path: Path) -> Layout:
    if forced is None:
        try:
            return recognise(graph.outputs, graph.metadata)
        except UserError as exc:
            raise UserError(f"{path}: {exc}")
    if forced not in LAYOUTS:
        raise UserError("--layout {}: not a layout; choose from {}{}".format(
            forced, ", ".join(LAYOUTS), did_you_mean(forced, LAYOUTS)))
    return LAYOUTS[forced]


def _input_size(shape: List[Any], metadata: Any, layout: Layout, path: Path) -> Tuple[int, int]:
    """(height, width) from the graph's NCHW input, else Ultralytics' ``imgsz``, else the
    family's usual size."""
    if len(shape) != 4 or shape[1] not in (3, "3"):
        raise UserError(f"{path}: the input is {shape}; a detector here takes images as [1, 3, H, W] "
                        "(channels first)")
    h, w = shape[2], shape[3]
    if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
        return h, w
    imgsz = _literal(metadata.get("imgsz"))
    if isinstance(imgsz, (list, tuple)) and len(imgsz) == 2:
        return int(imgsz[0]), int(imgsz[1])
    return layout.default_size


def _labels(options: DetectOptions, graph: Any, layout: Layout, path: Path) -> List[str]:
    """Class names from --labels, else the graph's metadata, else numbers; checked against
    the number of classes the graph scores where its shape says so."""
    labels = read_labels(Path(options.labels)) if options.labels else labels_from(graph.metadata)
    count = layout.class_count(graph.outputs)
    if labels and count is not None and len(labels) != count:
        raise UserError("{}: {} names in the labels but the model scores {} classes{}".format(
            options.labels or path, len(labels), count,
            f" ({layout.labels_hint})" if layout.labels_hint else ""))
    if not labels:
        labels = [str(i) for i in range(count or 1)]
        log.info("%s: no labels (--labels FILE, one name per line); classes are shown as "
                 "numbers", path.name)
    return labels


def _class_ids(classes: Optional[Sequence[str]], labels: Sequence[str]) -> Optional[List[int]]:
    """--classes names (or ids) -> ids; one line naming any unknown one."""
    if not classes:
        return None
    ids = []
    for c in classes:
        if c in labels:
            ids.append(list(labels).index(c))
        elif str(c).isdigit():
            ids.append(int(c))
        else:
            raise UserError("--classes {}: not a class of this model{}; classes: {}".format(
                c, did_you_mean(c, labels), ", ".join(labels[:20]) + (", ..." if len(labels) > 20 else "")))
    return ids


def _literal(text: Optional[str]) -> Any:
    import ast

    try:
        return ast.literal_eval(text) if text else None
    except (ValueError, SyntaxError):
        return None
