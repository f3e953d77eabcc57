"""After every export: ONNX Runtime against PyTorch on real images, and an FP16 estimate.

Parity failures are errors: a graph that disagrees with its checkpoint must not reach a device.
The FP16 estimate runs the graph converted to FP16 (onnxconverter-common) in ONNX Runtime, so a
user learns before building an engine whether FP16 changes the metric.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edge_app.dataset.verify import read_image
from edge_app.errors import UserError
from edge_app.export.onnx_export import run_onnx
from edge_app.model.bundle import SAMPLE_DIR, Bundle
from edge_app.model.preprocess import to_model_input
from edge_app.subject.crop import CropBox, crop_image
from edge_app.train.labelled import load_labelled

MAX_ABS = 1e-3           # probabilities / normalised coordinates
MAX_IMAGES = 256


Inputs = Tuple[np.ndarray, ...]   # one array per graph input, in the graph's order


def parity_inputs(bundle_path: Path, bundle: Bundle, data: Optional[Path] = None
                  ) -> Tuple[Inputs, np.ndarray, np.ndarray, str]:
    """(the graph's inputs in order: images NCHW float32 and/or landmark features, targets,
    the scale of each target in pixels, where they came from): a dataset folder seen as the
    model sees it, or the bundle's validation sample (its landmark features saved beside it)."""
    graph = bundle.plan.kind.graph_inputs
    if data is not None:
        return _from_dataset(Path(data), bundle)
    features, targets, sizes, source = None, None, None, str(Path(bundle_path) / SAMPLE_DIR)
    if "landmarks" in graph:
        features, targets, sizes = _saved_features(bundle_path)
        source = str(Path(bundle_path) / SAMPLE_DIR / "landmarks.npz")
    if "images" not in graph:
        return (features,), targets, sizes, source   # type: ignore[return-value]
    source = str(Path(bundle_path) / SAMPLE_DIR)
    paths, targets = _val_sample(bundle_path, bundle.task)
    pixels, sizes = _pixels([(p, None) for p in paths], bundle.input_size, source)
    return _inputs(graph, pixels, features), targets, sizes, source


def _from_dataset(data: Path, bundle: Bundle) -> Tuple[Inputs, np.ndarray, np.ndarray, str]:
    """At most MAX_IMAGES images of a dataset folder through the model's own view (crops,
    landmark features); images whose subject is not found are left out."""
    ds = load_labelled(data, bundle.task, "auto", "eval", False)   # points outside: masked
    ds.samples = ds.samples[:MAX_IMAGES]
    view = bundle.plan.kind.training().view(ds, bundle.plan, None, bundle.task)
    graph = bundle.plan.kind.graph_inputs
    if not view.samples:
        raise UserError(f"no images to check the export with ({data})")
    if "images" not in graph:
        assert view.features is not None   # a landmark view always carries its features
        return (view.features,), view.targets, view.sizes, str(data)
    pixels, _ = _pixels([(s.path, s.crop) for s in view.samples], bundle.input_size, str(data))
    return _inputs(graph, pixels, view.features), view.targets, view.sizes, str(data)


def _inputs(graph: Sequence[str], pixels: np.ndarray, features: Optional[np.ndarray]) -> Inputs:
    arrays = {"images": pixels, "landmarks": features}
    return tuple(np.asarray(arrays[name], np.float32) for name in graph)


def _pixels(items: Sequence[Tuple[Path, Any]], size: Tuple[int, int], source: str
            ) -> Tuple[np.ndarray, np.ndarray]:
    """Model-input pixels (N, 3, H, W) float32 of images (cut to their crop where given),
    and each image's (width, height) as the model saw it."""
    images, sizes = [], []
    for path, crop in items:
        image, problem = read_image(path)
        if image is None:
            raise UserError(f"{path}: {problem}")
        if crop is not None:
            image = crop_image(image, CropBox(*crop))
        sizes.append((image.shape[1], image.shape[0]))
        images.append(to_model_input(image, size).transpose(2, 0, 1))
    if not images:
        raise UserError(f"no images to check the export with ({source})")
    return np.stack(images).astype(np.float32), np.array(sizes, np.float64)


def _val_sample(bundle: Path, task: Any) -> Tuple[List[Path], np.ndarray]:
    folder = Path(bundle) / SAMPLE_DIR
    try:
        labels = json.loads((folder / "labels.json").read_text())
    except (OSError, ValueError):
        raise UserError(f"{bundle}: no validation sample in the bundle; pass --data DIR")
    paths = [folder / item["image"] for item in labels]
    return paths, task.task_kind.training().sample_targets(labels, task)


def _saved_features(bundle: Path) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The landmark features saved with the validation sample (parity without a detector)."""
    path = Path(bundle) / SAMPLE_DIR / "landmarks.npz"
    try:
        saved = np.load(str(path))
    except (OSError, ValueError):
        raise UserError(f"{path}: missing or unreadable; retrain the bundle")
    return saved["x"].astype(np.float32), saved["y"], saved["sizes"]


def _batched(fn: Any, inputs: Inputs, size: int = 32) -> np.ndarray:
    n = len(inputs[0])
    return np.concatenate([fn(tuple(a[i:i + size] for a in inputs)) for i in range(0, n, size)])


def check_parity(wrapper: Any, onnx_path: Path, images: Inputs, task: Any,
                 sizes: np.ndarray) -> Dict[str, Any]:
    """Compare ONNX Runtime with PyTorch; raise when they disagree."""
    import torch

    with torch.no_grad():
        ref = _batched(lambda b: wrapper(*(torch.from_numpy(a) for a in b)).numpy(), images)
    got = _batched(lambda b: run_onnx(Path(onnx_path), b), images)
    result: Dict[str, Any] = {"images": int(len(images[0])), "max_abs_diff": float(np.abs(ref - got).max())}
    agree, same = task.task_kind.training().agreement(ref, got, sizes)
    result.update(agree)
    result["ok"] = bool(result["max_abs_diff"] <= MAX_ABS and same)
    if not result["ok"]:
        raise UserError(f"export parity failed: ONNX Runtime and PyTorch differ ({_describe(result)}); the ONNX "
                        f"graph is kept at {onnx_path} for inspection, do not deploy it")
    return result


def fp16_estimate(onnx_path: Path, images: Inputs, targets: np.ndarray, task: Any,
                  sizes: np.ndarray) -> Dict[str, Any]:
    """Metric of the FP32 graph and of its FP16 conversion on the same images."""
    import onnx

    try:
        from onnxconverter_common import float16
    except ImportError:
        return {"skipped": "pip install onnxconverter-common for the FP16 estimate"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # "number truncated to 1e-07": expected in FP16
        half = float16.convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True)
    kind = task.task_kind.training()
    out32 = _batched(lambda b: run_onnx(Path(onnx_path), b), images)
    out16 = _batched(lambda b: run_onnx(half, b), images)
    m32 = kind.metrics(out32, targets, task, sizes)
    m16 = kind.metrics(out16, targets, task, sizes)
    key = kind.headline
    result = {"metric": key, "fp32": m32[key], "fp16": m16[key], "change": m16[key] - m32[key],
              "max_abs_diff": float(np.abs(out32 - out16).max())}
    agree, _ = kind.agreement(out32, out16, sizes)
    if "class_agreement" in agree:
        result["agreement"] = agree["class_agreement"]
    return result


def _describe(result: Dict[str, Any]) -> str:
    parts: List[str] = ["max abs diff {:.2e}".format(result["max_abs_diff"])]
    if "class_agreement" in result:
        parts.append("same class on {:.1%}".format(result["class_agreement"]))
    if "max_point_diff_px" in result:
        parts.append("points within {:.4f} px".format(result["max_point_diff_px"]))
    return ", ".join(parts)


def describe_parity(result: Dict[str, Any]) -> str:
    return "{} images: {}".format(result["images"], _describe(result))


def describe_fp16(result: Dict[str, Any]) -> str:
    if "skipped" in result:
        return "skipped: " + result["skipped"]
    fmt = "{:.1%}" if result["metric"] == "accuracy" else "{:.2f} px"
    text = "{} {} (FP32) -> {} (FP16), change {:+.4f}".format(
        result["metric"].replace("_px", ""), fmt.format(result["fp32"]), fmt.format(result["fp16"]),
        result["change"])
    if "agreement" in result:
        text += ", same class on {:.1%}".format(result["agreement"])
    return text
