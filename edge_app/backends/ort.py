"""The ONNX Runtime backend: any exported model, on the CUDA provider where present, else the CPU."""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

import numpy as np

from edge_app.backends.base import Backend, Batch, as_inputs
from edge_app.errors import UserError
from edge_app.model.info import ModelInfo


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
            raise UserError(f"{model.bundle}: no model.onnx yet; run edge-app export --model {model.bundle}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.log_severity_level = 3
        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        try:
            self.session = ort.InferenceSession(str(model.onnx), options, providers=providers)
        except Exception as exc:
            raise UserError(f"{model.onnx}: ONNX Runtime cannot load it ({str(exc).splitlines()[0][:200]})")
        self.provider = self.session.get_providers()[0]
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]

    def infer(self, batch: Batch) -> np.ndarray:
        outputs: np.ndarray = self.session.run(None, dict(zip(self.inputs, as_inputs(batch))))[0]
        return outputs

    def infer_all(self, batch: Batch) -> Dict[str, np.ndarray]:
        values = self.session.run(None, dict(zip(self.inputs, as_inputs(batch))))
        return dict(zip(self.outputs, values))

    def describe(self) -> str:
        short = self.provider.replace("ExecutionProvider", "")
        return "onnx ({}{})".format(short, f", {self.threads} threads" if short == "CPU" else "")

    def close(self) -> None:
        self.session = None
