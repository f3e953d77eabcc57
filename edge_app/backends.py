"""Inference backends behind one small interface: load, warm up, infer a batch, close.

Every backend takes the same input, a batch of RGB uint8 frames already resized to the model
input (N, H, W, 3), or a landmark model's (N, F) features, or for a model with several inputs
a tuple of those in the graph's input order; and returns the exported graph's outputs (class
probabilities, or points).
``auto`` picks the fastest available and says why.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from edge_app.errors import UserError
from edge_app.model_info import ModelInfo


Batch = Union[np.ndarray, Sequence[np.ndarray]]


def as_inputs(batch: Batch) -> Tuple[np.ndarray, ...]:
    """One graph input per item, each as the graph takes it (see :func:`to_nchw`)."""
    items = (batch,) if isinstance(batch, np.ndarray) else tuple(batch)
    return tuple(to_nchw(b) for b in items)


def to_nchw(batch: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 frames -> (N, 3, H, W) float32 pixels; normalisation is in the
    graph. Anything else (a landmark model's (N, F) features, a detector's input already
    normalised and laid out for its graph) is passed on as float32."""
    if batch.ndim != 4 or batch.dtype != np.uint8:
        return np.ascontiguousarray(batch, dtype=np.float32)
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)


class Backend(ABC):
    """One way to run a model."""

    name = ""
    precision = "fp32"

    @abstractmethod
    def load(self, model: ModelInfo) -> None:
        """Prepare the model; raise UserError saying why it cannot load."""

    @abstractmethod
    def infer(self, batch: Batch) -> np.ndarray:
        """Outputs for a batch of resized RGB uint8 frames (or features; see the module)."""

    def infer_all(self, batch: Batch) -> Dict[str, np.ndarray]:
        """Every output of the graph by name (detectors have several)."""
        return {"output": self.infer(batch)}

    def warmup(self, model: ModelInfo, runs: int = 3) -> None:
        """A few inferences so that the first timed frame is not the slowest."""
        dummy = model.dummy_input()
        for _ in range(runs):
            self.infer(dummy)

    def close(self) -> None:
        """Release the session or device memory."""

    def describe(self) -> str:
        return self.name


class OnnxBackend(Backend):
    """ONNX Runtime: the CUDA provider where present, else the CPU with a set thread count."""

    name = "onnx"

    def __init__(self, threads: Optional[int] = None) -> None:
        self.threads = threads or max(1, os.cpu_count() or 1)
        self.session: Any = None
        self.provider = ""

    def load(self, model: ModelInfo) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError("the onnx backend needs ONNX Runtime: pip install onnxruntime "
                            "(onnxruntime-gpu on a desktop GPU; NVIDIA's wheel on a Jetson)")
        if model.onnx is None:
            raise UserError("{}: no model.onnx yet; run edge-app export --model {}".format(
                model.bundle, model.bundle))
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.log_severity_level = 3
        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        try:
            self.session = ort.InferenceSession(str(model.onnx), options, providers=providers)
        except Exception as exc:
            raise UserError("{}: ONNX Runtime cannot load it ({})".format(
                model.onnx, str(exc).splitlines()[0][:200]))
        self.provider = self.session.get_providers()[0]
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]

    def infer(self, batch: Batch) -> np.ndarray:
        return self.session.run(None, dict(zip(self.inputs, as_inputs(batch))))[0]

    def infer_all(self, batch: Batch) -> Dict[str, np.ndarray]:
        values = self.session.run(None, dict(zip(self.inputs, as_inputs(batch))))
        return dict(zip(self.outputs, values))

    def describe(self) -> str:
        short = self.provider.replace("ExecutionProvider", "")
        return "onnx ({}{})".format(short, ", {} threads".format(self.threads) if short == "CPU" else "")

    def close(self) -> None:
        self.session = None


class TorchBackend(Backend):
    """PyTorch eager on the bundle's checkpoint (CUDA where present); needs the train extra."""

    name = "torch"

    def __init__(self, threads: Optional[int] = None, precision: str = "fp32") -> None:
        self.threads = threads
        self.precision = precision
        self.model: Any = None
        self.device = "cpu"

    def load(self, model: ModelInfo) -> None:
        if model.bundle is None:
            raise UserError("the torch backend needs a bundle folder, not a bare ONNX file")
        try:
            import torch

            from export.onnx_export import export_wrapper
            from train.bundle import load_model
        except ImportError as exc:
            raise UserError("the torch backend needs torch ({}): pip install 'edge-app[train]'".format(exc))
        if self.threads:
            torch.set_num_threads(self.threads)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.precision == "fp16" and self.device != "cuda":
            raise UserError("fp16 with the torch backend needs a CUDA device")
        meta, net = load_model(model.bundle, self.device)
        self.model = export_wrapper(net, meta["task_spec"])
        self._dtype = torch.float16 if self.precision == "fp16" else torch.float32
        if self.precision == "fp16":
            self.model.half()
        self._torch = torch

    def infer(self, batch: Batch) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            xs = [torch.from_numpy(x).to(self.device, self._dtype) for x in as_inputs(batch)]
            return self.model(*xs).float().cpu().numpy()

    def describe(self) -> str:
        return "torch ({}{})".format(self.device, ", fp16" if self.precision == "fp16" else "")

    def close(self) -> None:
        self.model = None


def _trt(threads: Optional[int] = None) -> Backend:
    from edge_app.backend_trt import TrtBackend   # TensorRT code only where it is used

    return TrtBackend(threads)


BACKENDS: Dict[str, Callable[..., Backend]] = {"trt": _trt, "onnx": OnnxBackend, "torch": TorchBackend}


def choose_backend(name: str, model: ModelInfo, threads: Optional[int] = None) -> Tuple[Backend, str]:
    """The backend to use and why. ``auto``: TensorRT where it is installed (engine built and
    cached on first run), else ONNX Runtime (its CUDA provider if present), else PyTorch."""
    if name != "auto":
        if name not in BACKENDS:
            raise UserError("unknown --backend '{}'; choose from auto, {}".format(name, ", ".join(BACKENDS)))
        backend = BACKENDS[name](threads=threads)
        backend.load(model)
        return backend, "asked for"
    from export.tensorrt_build import tensorrt_available

    reasons: List[str] = []
    candidates = ("trt", "onnx", "torch") if tensorrt_available() else ("onnx", "torch")
    if len(candidates) == 2:
        reasons.append("trt: TensorRT not installed")
    for candidate in candidates:
        backend = BACKENDS[candidate](threads=threads)
        try:
            backend.load(model)
        except UserError as exc:
            reasons.append("{}: {}".format(candidate, exc))
            continue
        why = "the fastest available"
        if reasons:
            why += " ({})".format("; ".join(reasons))
        return backend, why
    raise UserError("no backend can run {}: {}".format(model.name, "; ".join(reasons)))
