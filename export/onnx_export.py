"""Bundle -> ``model.onnx``: pixels in, final outputs out, metadata inside, checked and slimmed.

Exporter: torch.onnx's TorchScript-based exporter (``dynamo=False``) at opset 17, the opset that
TensorRT 8.5 (JetPack 5.1) parses; it works from JetPack 5's torch to current desktop torch
without onnxscript. The graph takes RGB pixels (float32, 0..255, NCHW, dynamic batch) named
``images``: normalisation and softmax (or point decoding) are inside. Landmark models take
``landmarks`` (N, F) instead, fused models both, in that order.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from edge_app.dataset.atomic import json_text
from edge_app.errors import UserError
from edge_app.model.bundle import Bundle
from edge_app.train.bundle import load_model

DEFAULT_OPSET = 17
MIN_OPSET = 9   # below it the graph's weights are initializers ONNX Runtime does not load
INPUT_NAME = "images"


def check_opset(opset: int) -> None:
    """``--opset``, before the export: from MIN_OPSET to the newest this torch's exporter writes."""
    from torch.onnx import _constants

    high = int(getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET",
                       getattr(_constants, "ONNX_MAX_OPSET", DEFAULT_OPSET)))
    if not MIN_OPSET <= opset <= high:
        raise UserError(f"--opset {opset}: this torch exports opsets {MIN_OPSET} to {high} (default {DEFAULT_OPSET}: "
                        "what TensorRT 8.5 on JetPack 5.1 parses)")


def export_wrapper(model: Any, task: Any) -> Any:
    """The bundle's model plus the kind's final step (softmax, or points as (N, P, 2))."""
    import torch

    kind = task.task_kind.training()

    class Exported(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return kind.export_head(self.model(*inputs), task)

    return Exported().eval()


def metadata(bundle: Bundle) -> Dict[str, str]:
    """What the runtime needs without the bundle folder, as ONNX metadata_props strings."""
    task = bundle.task
    return {"edge_app.task": json_text(task.to_dict()), "edge_app.kind": task.kind,
            "edge_app.labels": json_text(list(task.labels)),
            "edge_app.input_size": json_text(list(bundle.input_size)),
            "edge_app.input": ",".join(bundle.plan.kind.graph_inputs),
            "edge_app.output": task.task_kind.output_name, "edge_app.arch": bundle.arch,
            "edge_app.input_format": "RGB float32 0..255 NCHW",
            "edge_app.metrics": json_text(bundle.metrics),
            # crop or whole frame, the subject stage's settings, the landmark layout
            "edge_app.input_plan": json_text(bundle.plan.to_dict())}


def model_input(bundle: Bundle) -> Tuple[Tuple[str, ...], Tuple[Any, ...]]:
    """The graph's input names and a dummy batch for each: pixels and/or a landmark
    model's features."""
    import torch

    names = bundle.plan.kind.graph_inputs
    h, w = bundle.input_size
    make = {INPUT_NAME: lambda: torch.rand(2, 3, h, w) * 255,
            "landmarks": lambda: torch.randn(2, bundle.plan.features)}
    return names, tuple(make[n]() for n in names)


def export_onnx(bundle: Path, opset: int = DEFAULT_OPSET, out: Optional[Path] = None,
                simplify: bool = True) -> Dict[str, Any]:
    """Write ``model.onnx`` into the bundle (or ``out``); return paths, opset and timings."""
    import onnx
    import torch

    start = time.monotonic()
    meta, model = load_model(bundle, "cpu")
    task = meta.task
    wrapper = export_wrapper(model, task)
    out = Path(out) if out else Path(bundle) / "model.onnx"
    raw = out.with_name(out.stem + ".raw.onnx")
    output = task.task_kind.output_name
    names, dummy = model_input(meta)
    axes = {n: {0: "batch"} for n in names}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # TorchScript exporter deprecation and tracer notices
        try:
            torch.onnx.export(wrapper, dummy, str(raw), opset_version=opset, **_exporter(torch),
                              input_names=list(names), output_names=[output],
                              do_constant_folding=True, dynamic_axes=dict(axes, **{output: {0: "batch"}}))
        except Exception as exc:   # the exporter's own messages run to pages
            raise UserError(f"ONNX export of {bundle} ({meta.arch}) at opset {opset} failed: {str(exc).splitlines()[0][:300]}")
    graph = onnx.load(str(raw))
    for key, value in metadata(meta).items():
        graph.metadata_props.add(key=key, value=value)
    try:
        onnx.checker.check_model(graph)
    except onnx.checker.ValidationError as exc:
        raise UserError(f"ONNX export of {bundle} at opset {opset}: the graph fails ONNX's check "
                        f"({str(exc).splitlines()[0][:300]}); export at the default opset {DEFAULT_OPSET}")
    slimmed, note = _simplify(graph, tuple(d.numpy() for d in dummy), output) if simplify else (graph, "off")
    onnx.checker.check_model(slimmed)
    tmp = out.with_name(out.name + ".part")
    onnx.save(slimmed, str(tmp))
    tmp.replace(out)
    raw.unlink()
    return {"onnx": str(out), "opset": opset, "seconds": time.monotonic() - start,
            "simplify": note, "nodes": len(slimmed.graph.node), "meta": meta, "model": wrapper}


def _exporter(torch: Any) -> Dict[str, Any]:
    """The TorchScript exporter: ``dynamo=False`` from torch 2.5, where the keyword appeared
    (JetPack 5's torch 2.1 and JetPack 6.0's 2.4 have only that exporter and no keyword)."""
    import inspect

    return {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}


def _simplify(graph: Any, sample: Tuple[np.ndarray, ...], output: str) -> Any:
    """onnxslim, kept only when it leaves the outputs equal."""
    try:
        import onnxslim
    except ImportError:
        return graph, "skipped (pip install onnxslim)"
    before = len(graph.graph.node)
    try:
        slim = onnxslim.slim(graph)
    except Exception as exc:   # a simplifier bug must not cost the user an export
        return graph, f"skipped ({type(exc).__name__})"
    a, b = run_onnx(graph, sample), run_onnx(slim, sample)
    if a.shape != b.shape or np.abs(a - b).max() > 1e-5:
        return graph, "discarded: changed the outputs"
    for prop in graph.metadata_props:
        if prop.key not in {p.key for p in slim.metadata_props}:
            slim.metadata_props.add(key=prop.key, value=prop.value)
    return slim, f"onnxslim: {before} -> {len(slim.graph.node)} nodes"


Inputs = Union[np.ndarray, Sequence[np.ndarray]]


def run_onnx(graph: Any, inputs: Inputs, providers: Optional[list] = None) -> np.ndarray:
    """Run an ONNX model (a ModelProto or a path) on a batch with ONNX Runtime: one array, or
    one per graph input in order."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("ONNX Runtime is needed to check the export: pip install onnxruntime")
    data = graph if isinstance(graph, (str, Path)) else graph.SerializeToString()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(data) if isinstance(data, Path) else data, options,
                                   providers=providers or ["CPUExecutionProvider"])
    arrays = (inputs,) if isinstance(inputs, np.ndarray) else tuple(inputs)
    return session.run(None, {i.name: a.astype(np.float32)
                              for i, a in zip(session.get_inputs(), arrays)})[0]
