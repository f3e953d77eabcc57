"""Inference backends behind one small interface (:mod:`edge_app.backend_base`: load, warm
up, infer a batch, close), and the registry that names them.

Backends are imported on first use, by the registry's "module:attribute" entries, so TensorRT,
MediaPipe and torch load only where they run, and this package never imports the training
code (the torch backend lives in ``train.torch_backend``). ``auto`` picks the fastest
available and says why.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Type

import numpy as np

from edge_app.backend_base import Backend, BackendOptions, Batch, as_inputs, to_nchw
from edge_app.errors import UserError
from edge_app.model_info import ModelInfo

__all__ = ["BACKENDS", "Backend", "BackendEntry", "BackendOptions", "Batch", "OnnxBackend",
           "as_inputs", "backends_for", "choose_backend", "make_backend", "to_nchw"]


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


@dataclass(frozen=True)
class BackendEntry:
    """A backend in the registry: where its class is, what it runs and at which precisions."""

    target: str                               # "module:attribute", imported on first use
    precisions: Tuple[str, ...] = ("fp32",)   # the first is what it runs unless told
    general: bool = True      # runs any exported model; False: only models whose runs_on names it
    missing: str = ""         # the one line when its module cannot be imported ({} = why)

    def backend_class(self, name: str) -> Type[Backend]:
        """The backend's class, imported now; a UserError when its extra is not installed."""
        module, _, attr = self.target.partition(":")
        try:
            cls: Type[Backend] = getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            raise UserError((self.missing or "the {} backend cannot be imported ({{}})".format(name))
                            .format(exc))
        return cls


# Fastest first: the order ``auto`` tries the general ones in.
BACKENDS: Dict[str, BackendEntry] = {
    "trt": BackendEntry("edge_app.backend_trt:TrtBackend", ("fp16", "fp32", "int8")),
    "onnx": BackendEntry("edge_app.backends:OnnxBackend"),
    "torch": BackendEntry("train.torch_backend:TorchBackend", ("fp32", "fp16"),
                          missing="the torch backend needs torch ({}): pip install 'edge-app[train]'"),
    "mediapipe": BackendEntry("edge_app.detect.builtin:SubjectsBackend", general=False),
}


def make_backend(name: str, threads: Optional[int] = None,
                 options: Optional[BackendOptions] = None) -> Backend:
    """A backend from the registry, not loaded yet; one line for an unknown name."""
    if name not in BACKENDS:
        raise UserError("unknown --backend '{}'; choose from auto, {}".format(name, ", ".join(BACKENDS)))
    return BACKENDS[name].backend_class(name).create(threads, options)


def backends_for(model: ModelInfo) -> List[str]:
    """The backends that may run ``model``, fastest first: the one it names (the built-in
    detectors), else every general one."""
    if model.runs_on:
        return [model.runs_on]
    return [name for name, entry in BACKENDS.items() if entry.general]


def choose_backend(name: str, model: ModelInfo, threads: Optional[int] = None,
                   options: Optional[BackendOptions] = None,
                   warmup: bool = True) -> Tuple[Backend, str]:
    """The backend to use, loaded and warmed up, and why. ``auto``: the model's own backend
    where it names one; else TensorRT where it is installed (engine built and cached on first
    run), else ONNX Runtime (its CUDA provider if present), else PyTorch; one that fails to load
    or to warm up (any error: a TensorRT/numpy mismatch shows only at the first inference) is
    closed, named with its reason, and the next is tried."""
    if model.runs_on and name not in ("auto", model.runs_on):
        raise UserError("--model {} runs on {} only, not --backend {}".format(
            model.name, model.runs_on, name))
    if name != "auto":
        backend = make_backend(name, threads, options)
        reason = _start(backend, model, warmup, reraise=True)
        if reason:
            raise UserError("--backend {} cannot run {}: {}".format(name, model.name, reason))
        return backend, "asked for" if not model.runs_on else "the model's own backend"
    from export.tensorrt_build import tensorrt_available

    reasons: List[str] = []
    candidates = backends_for(model)
    if "trt" in candidates and not tensorrt_available():   # said without importing it
        candidates.remove("trt")
        reasons.append("trt: TensorRT not installed")
    for candidate in candidates:
        try:
            backend = make_backend(candidate, threads, options)
        except UserError as exc:
            reasons.append("{}: {}".format(candidate, exc))
            continue
        reason = _start(backend, model, warmup)
        if reason:
            reasons.append("{}: {}".format(candidate, reason))
            continue
        why = "the model's own backend" if model.runs_on else "the fastest available"
        if reasons:
            why += " ({})".format("; ".join(reasons))
        return backend, why
    raise UserError("no backend can run {}: {}".format(model.name, "; ".join(reasons)))


def _start(backend: Backend, model: ModelInfo, warmup: bool, reraise: bool = False) -> str:
    """Load (and warm up) ``backend``: "" when it runs, else why not, with the backend closed.
    Any exception counts: a UserError's text is the user's fix, anything else is named by type;
    ``reraise``: a UserError propagates as it is."""
    try:
        backend.load(model)
        if warmup:
            backend.warmup(model)
    except Exception as exc:
        try:
            backend.close()
        except Exception:
            pass   # half-loaded: releasing what it has is best effort
        if reraise and isinstance(exc, UserError):
            raise
        text = str(exc).splitlines()[0] if str(exc) else ""
        why = text if isinstance(exc, UserError) else "{}{}".format(
            type(exc).__name__, ": " + text if text else "")
        return why[:300]
    return ""
