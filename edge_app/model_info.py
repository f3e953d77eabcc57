"""What the runtime knows about a model, read from a bundle folder or an ONNX file's metadata,
without torch. ``--model`` resolution order: a bundle folder (bundle.json), then an ONNX file."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from edge_app.errors import UserError
from edge_app.task_spec import TaskSpec, parse_task

# The graph's inputs per input kind, in the order every backend feeds them.
INPUT_NAMES: Dict[str, Tuple[str, ...]] = {"frame": ("images",), "crop": ("images",),
                                           "landmarks": ("landmarks",),
                                           "both": ("images", "landmarks")}


@dataclass
class ModelInfo:
    """A runnable model: its task, input size, graph and (for bundles) its folder."""

    name: str
    task: TaskSpec
    input_size: Tuple[int, int]      # (height, width)
    onnx: Optional[Path]
    bundle: Optional[Path]
    output: str
    plan: Optional[Dict[str, Any]] = None   # the bundle's input plan (crop or frame)
    detector: Any = None             # detection models: their edge_app.detect.Detector
    graph_inputs: Tuple[str, ...] = ()   # input names read from a foreign graph
    runs_on: str = ""                # the one backend that runs it ("" = any)

    @property
    def labels(self) -> Tuple[str, ...]:
        return self.task.labels

    @property
    def input_kind(self) -> str:
        """'frame', 'crop', 'landmarks' or 'both' (crop and landmarks): what the model is fed."""
        return str((self.plan or {}).get("input", "frame"))

    @property
    def input_names(self) -> Tuple[str, ...]:
        if self.graph_inputs:
            return self.graph_inputs
        return INPUT_NAMES.get(self.input_kind, ("images",))

    @property
    def subject(self) -> Optional[str]:
        """'hand' or 'face' when the model needs the subject stage, else None."""
        plan = self.plan or {}
        return plan.get("subject") if self.input_kind != "frame" else None

    def dummy_input(self, batch: int = 1) -> Any:
        """A zero batch shaped like the model's input (warm-up, benchmarks): an array, or a
        tuple of arrays in :attr:`input_names` order for a model with several inputs."""
        import numpy as np

        h, w = self.input_size
        if self.detector is not None:   # its own layout and normalisation
            x = self.detector.prepare(np.zeros((h, w, 3), np.uint8))[0]
            return np.repeat(x, batch, axis=0)
        zeros = {"images": np.zeros((batch, h, w, 3), np.uint8),
                 "landmarks": np.zeros((batch, int((self.plan or {}).get("features", 0))), np.float32)}
        batches = tuple(zeros[name] for name in self.input_names)
        return batches[0] if len(batches) == 1 else batches

    @property
    def pad(self) -> float:
        from edge_app.subject.crop import PAD

        return float((self.plan or {}).get("pad", PAD))


def load_model_info(spec: str, detect: Any = None) -> ModelInfo:
    """A bundle folder, an ``.onnx`` exported by this tool, a detector's ``.onnx`` (from
    jetson-inference or Ultralytics; ``detect`` holds its :class:`DetectOptions`), or a
    built-in detector (``hands``, ``faces``)."""
    from edge_app.detect.model import BUILTIN, DetectOptions, builtin_detector, load_detector

    options = detect or DetectOptions()
    if spec in BUILTIN and not Path(spec).exists():
        return builtin_detector(spec, options)
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".onnx" and path.is_file():
        graph = read_graph(path)
        if "edge_app.task" not in graph.metadata:
            return load_detector(path, graph, options)
    info = _load_model_info(spec)
    _check_features(info, spec)
    return info


def _check_features(info: ModelInfo, spec: str) -> None:
    """A landmark model from a release with another feature layout would read garbage."""
    from edge_app.subject.landmarks import SCHEMA_POINTS, feature_size

    plan = info.plan or {}
    if info.input_kind not in ("landmarks", "both") or plan.get("subject") not in SCHEMA_POINTS:
        return
    want, have = feature_size(plan["subject"]), int(plan.get("features", 0))
    if want != have:
        raise UserError("{}: a landmark model for {} features, but this version computes {}; "
                        "retrain it (edge-app train ... --input landmarks) and export it again"
                        .format(spec, have, want))


def _load_model_info(spec: str) -> ModelInfo:
    path = Path(spec).expanduser()
    if path.is_dir():
        meta_path = path / "bundle.json"
        if not meta_path.is_file():
            raise UserError("{}: not a model bundle (no bundle.json)".format(path))
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        task = parse_task(meta["task"], source=str(meta_path))
        onnx = path / "model.onnx"
        return ModelInfo(path.name, task, tuple(meta["input_size"]),   # type: ignore[arg-type]
                         onnx if onnx.is_file() else None, path, task.task_kind.output_name,
                         meta.get("input_plan"))
    if path.suffix.lower() == ".onnx" and path.is_file():
        props = read_graph(path).metadata
        task = parse_task(json.loads(props["edge_app.task"]), source=str(path))
        return ModelInfo(path.stem, task, tuple(json.loads(props["edge_app.input_size"])),  # type: ignore[arg-type]
                         path, None, props.get("edge_app.output", task.task_kind.output_name),
                         json.loads(props.get("edge_app.input_plan", "null")))
    raise UserError("--model {}: not found; give a bundle folder (from edge-app train), an "
                    ".onnx file (from edge-app export, jetson-inference or Ultralytics), or "
                    "hands / faces (the built-in detectors)".format(spec))


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
        raise UserError("reading {} needs ONNX Runtime: pip install onnxruntime".format(path))
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise UserError("{}: not a readable ONNX model ({})".format(path, str(exc).splitlines()[0][:200]))
    return GraphIO({i.name: list(i.shape) for i in session.get_inputs()},
                   {o.name: list(o.shape) for o in session.get_outputs()},
                   dict(session.get_modelmeta().custom_metadata_map))
