"""Inference backends behind one small interface (:mod:`edge_app.backends.base`: load, warm
up, infer a batch, close), and the registry that names them.

Backends are imported on first use, by the registry's "module:attribute" entries, so TensorRT,
MediaPipe and torch load only where they run, and this package never imports the training
code (the torch backend lives in ``edge_app.train.torch_backend``). ``auto`` picks the fastest
available and says why.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple, Type, cast

from edge_app.backends.base import Backend, BackendOptions, Batch, as_inputs, to_nchw
from edge_app.errors import UserError
from edge_app.model.info import ModelInfo
from edge_app.registry import Registry, resolve

__all__ = ["BACKENDS", "Backend", "BackendEntry", "BackendOptions", "Batch",
           "as_inputs", "backends_for", "choose_backend", "make_backend", "to_nchw"]


@dataclass(frozen=True)
class BackendEntry:
    """A backend in the registry: where its class is, what it runs and at which precisions."""

    target: str                               # "module:attribute", imported on first use
    precisions: Tuple[str, ...] = ("fp32",)   # the first is what it runs unless told
    general: bool = True      # runs any exported model; False: only models whose runs_on names it
    missing: str = ""         # the one line when its module cannot be imported ({} = why)

    def backend_class(self, name: str) -> Type[Backend]:
        """The backend's class, imported now; a UserError when its extra is not installed."""
        missing = self.missing or f"the {name} backend cannot be imported ({{}})"
        return cast(Type[Backend], resolve(self.target, missing))


# Fastest first: the order ``auto`` tries the general ones in.
BACKENDS: Registry[BackendEntry] = Registry("--backend", [
    ("trt", BackendEntry("edge_app.backends.trt:TrtBackend", ("fp16", "fp32", "int8"))),
    ("onnx", BackendEntry("edge_app.backends.ort:OnnxBackend")),
    ("torch", BackendEntry("edge_app.train.torch_backend:TorchBackend", ("fp32", "fp16"),
                           missing="the torch backend needs torch ({}): pip install 'edge-app[train]'")),
    ("mediapipe", BackendEntry("edge_app.detect.builtin:SubjectsBackend", general=False)),
])


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
        raise UserError(f"--model {model.name} runs on {model.runs_on} only, not --backend {name}")
    if name != "auto":
        backend = make_backend(name, threads, options)
        reason = _start(backend, model, warmup, reraise=True)
        if reason:
            raise UserError(f"--backend {name} cannot run {model.name}: {reason}")
        return backend, "asked for" if not model.runs_on else "the model's own backend"
    from edge_app.export.tensorrt_build import tensorrt_available

    reasons: List[str] = []
    candidates = backends_for(model)
    if "trt" in candidates and not tensorrt_available():   # said without importing it
        candidates.remove("trt")
        reasons.append("trt: TensorRT not installed")
    for candidate in candidates:
        try:
            backend = make_backend(candidate, threads, options)
        except UserError as exc:
            reasons.append(f"{candidate}: {exc}")
            continue
        reason = _start(backend, model, warmup)
        if reason:
            reasons.append(f"{candidate}: {reason}")
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
