"""The PyTorch backend: eager PyTorch on a bundle's checkpoint (CUDA where present). It lives
with the training code it needs; :data:`edge_app.backends.BACKENDS` names it by
"module:attribute", so the on-device package never imports it, nor torch."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from edge_app.backends.base import Backend, Batch, Precision, as_inputs
from edge_app.errors import UserError
from edge_app.export.onnx_export import export_wrapper
from edge_app.model.info import ModelInfo
from edge_app.train.bundle import load_model


class TorchBackend(Backend):
    """PyTorch eager on the bundle's checkpoint (CUDA where present); needs the train extra."""

    name = "torch"

    def __init__(self, threads: Optional[int] = None, precision: Precision = "fp32") -> None:
        self.threads = threads
        self.precision = precision
        self.model: Any = None
        self.device = "cpu"

    def load(self, model: ModelInfo) -> None:
        """The bundle's checkpoint, wrapped as it is exported (normalisation inside)."""
        if model.bundle is None:
            raise UserError("the torch backend needs a bundle folder, not a bare ONNX file")
        try:   # here rather than at the top: without torch this is a UserError, not a traceback
            import torch
        except ImportError as exc:
            raise UserError(f"the torch backend needs torch ({exc}): pip install 'edge-app[train]'")
        if self.threads:
            torch.set_num_threads(self.threads)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.precision == "fp16" and self.device != "cuda":
            raise UserError("fp16 with the torch backend needs a CUDA device")
        bundle, net = load_model(model.bundle, self.device)
        self.model = export_wrapper(net, bundle.task)
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
