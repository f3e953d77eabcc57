"""What the runtime knows about a model, read from a bundle folder or an ONNX file's metadata,
without torch. ``--model`` resolution order: a bundle folder (bundle.json), then an ONNX file."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from edge_app.detect.loading import BUILTIN, DetectOptions, builtin_model, read_detector
from edge_app.errors import UserError
from edge_app.model.bundle import read_bundle
from edge_app.model.inputs import FRAME, InputKind, InputPlan
from edge_app.tasks.spec import TaskSpec, parse_task


@dataclass
class ModelInfo:
    """A runnable model: its task, input size, graph and (for bundles) its folder."""

    name: str
    task: TaskSpec
    input_size: Tuple[int, int]      # (height, width)
    onnx: Optional[Path]
    bundle: Optional[Path]
    output: str
    # what the model is fed (detectors and foreign graphs: whole frames)
    plan: InputPlan = field(default_factory=lambda: InputPlan(FRAME.name))
    detector: Any = None             # detection models: their edge_app.detect.Detector
    graph_inputs: Tuple[str, ...] = ()   # input names read from a foreign graph
    runs_on: str = ""                # the one backend that runs it ("" = any)

    def __post_init__(self) -> None:
        if not isinstance(self.plan, InputPlan):   # a saved plan's dict (tests, old callers)
            self.plan = InputPlan.from_dict(self.plan, self.name)

    @property
    def labels(self) -> Tuple[str, ...]:
        return self.task.labels

    @property
    def input_kind(self) -> InputKind:
        """What the model is fed (edge_app.model.inputs): the frame, a crop, landmarks or both."""
        return self.plan.kind

    @property
    def input_names(self) -> Tuple[str, ...]:
        if self.graph_inputs:
            return self.graph_inputs
        return self.input_kind.graph_inputs

    @property
    def subject(self) -> Optional[str]:
        """'hand' or 'face' when the model needs the subject stage, else None."""
        return self.plan.subject_kind

    def dummy_input(self, batch: int = 1) -> Any:
        """A zero batch shaped like the model's input (warm-up, benchmarks): an array, or a
        tuple of arrays in :attr:`input_names` order for a model with several inputs."""
        import numpy as np

        h, w = self.input_size
        if self.detector is not None:   # its own layout and normalisation
            x = self.detector.prepare(np.zeros((h, w, 3), np.uint8))[0]
            return np.repeat(x, batch, axis=0)
        return self.input_kind.dummy(batch, self.input_size, self.plan)

    @property
    def pad(self) -> float:
        return float(self.plan.pad)

    def describe_input(self) -> str:
        """``224x224``, ``86 landmarks`` or ``frame`` (a detector that takes whole frames)."""
        if self.runs_on:
            return "frame"
        return self.input_kind.describe_input(self.input_size, self.plan)


def load_model_info(spec: str, detect: Any = None) -> ModelInfo:
    """A bundle folder, an ``.onnx`` exported by this tool, a detector's ``.onnx`` (from
    jetson-inference or Ultralytics; ``detect`` holds its :class:`DetectOptions`), or a
    built-in detector (``hands``, ``faces``)."""
    options = detect or DetectOptions()
    if spec in BUILTIN and not Path(spec).exists():
        return _detector_info(builtin_model(spec, options))
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".onnx" and path.is_file():
        graph = read_graph(path)
        if "edge_app.task" not in graph.metadata:
            return _detector_info(read_detector(path, graph, options))
    info = _load_model_info(spec)
    info.plan.check_layout(spec)
    return info


def _detector_info(model: Any) -> ModelInfo:
    """A detection model (an edge_app.detect.loading.DetectorModel) as the runtime runs it."""
    return ModelInfo(model.name, model.task, model.input_size, model.onnx, None, "detections",
                     detector=model.detector, graph_inputs=model.graph_inputs,
                     runs_on=model.runs_on)


def _load_model_info(spec: str) -> ModelInfo:
    path = Path(spec).expanduser()
    if path.is_dir():
        b = read_bundle(path)
        return ModelInfo(path.name, b.task, b.input_size, b.onnx, path, b.task.task_kind.output_name,
                         b.plan)
    if path.suffix.lower() == ".onnx" and path.is_file():
        props = read_graph(path).metadata
        try:
            task = parse_task(json.loads(props["edge_app.task"]), source=str(path), saved=True)
            size = tuple(int(v) for v in json.loads(props["edge_app.input_size"]))
            plan = InputPlan.from_dict(json.loads(props.get("edge_app.input_plan", "null")), str(path))
        except (KeyError, ValueError, TypeError, RecursionError) as exc:
            raise UserError(f"{path}: its edge-app metadata is incomplete or corrupt "
                            f"({str(exc)[:200]}); export it again")
        return ModelInfo(path.stem, task, (size[0], size[1]), path, None,
                         props.get("edge_app.output", task.task_kind.output_name), plan)
    raise UserError(f"--model {spec}: not found; give a bundle folder (from edge-app train), an "
                    ".onnx file (from edge-app export, jetson-inference or Ultralytics), or "
                    "hands / faces (the built-in detectors)")


@dataclass
class GraphIO:
    """An ONNX file's inputs and outputs (name -> shape; dynamic dims as names) and metadata."""

    inputs: Dict[str, List[Any]]
    outputs: Dict[str, List[Any]]
    metadata: Dict[str, str]


def read_graph(path: Path) -> GraphIO:
    """What ONNX Runtime sees in ``path`` (no torch, no onnx package needed)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError(f"reading {path} needs ONNX Runtime: pip install onnxruntime")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise UserError(f"{path}: not a readable ONNX model ({str(exc).splitlines()[0][:200]})")
    return GraphIO({i.name: list(i.shape) for i in session.get_inputs()},
                   {o.name: list(o.shape) for o in session.get_outputs()},
                   dict(session.get_modelmeta().custom_metadata_map))
