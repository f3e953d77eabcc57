"""After every export: ONNX Runtime against PyTorch on real images, and an FP16 estimate.

Parity failures are errors: a graph that disagrees with its checkpoint must not reach a device.
The FP16 estimate runs the graph converted to FP16 (onnxconverter-common) in ONNX Runtime, so a
user learns before building an engine whether FP16 changes the metric.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from edge_app.dataset.verify import read_image
from edge_app.errors import UserError
from edge_app.preprocess import to_model_input

MAX_ABS = 1e-3           # probabilities / normalised coordinates
MAX_IMAGES = 256


Inputs = Tuple[np.ndarray, ...]   # one array per graph input, in the graph's order


def parity_inputs(bundle: Path, meta: Dict[str, Any], data: Optional[Path] = None
                  ) -> Tuple[Inputs, np.ndarray, np.ndarray, str]:
    """(the graph's inputs: images NCHW float32 and/or landmark features, targets, image
    sizes, where they came from): the bundle's validation sample, or a dataset folder."""
    task = meta["task_spec"]
    kind = task.task_kind.training()
    plan = meta.get("input_plan") or {}
    if plan.get("input") == "landmarks":
        if data is not None:
            raise UserError("--data: a landmark model is checked on the features saved in the "
                            "bundle's val_sample/landmarks.npz; leave --data out")
        x, y, sizes = _saved_features(bundle)
        return (x,), y, sizes, str(Path(bundle) / "val_sample" / "landmarks.npz")
    crops: List[Any] = []
    features = None
    if data is not None:
        ds, features = _dataset(data, task, meta)
        crops = [s.crop for s in ds.samples if s.crop is not None]
        paths = [s.path for s in ds.samples]
        targets = kind.targets(ds)
        source = str(data)
    else:
        paths, targets, source = _val_sample(bundle, task)
        if plan.get("input") == "both":
            features = _saved_features(bundle)[0]
    images, sizes = [], []
    for i, path in enumerate(paths):
        image, problem = read_image(path)
        if image is None:
            raise UserError("{}: {}".format(path, problem))
        if crops:
            from edge_app.subject.crop import CropBox, crop_image

            image = crop_image(image, CropBox(*crops[i]))
        sizes.append((image.shape[1], image.shape[0]))
        images.append(to_model_input(image, tuple(meta["input_size"])).transpose(2, 0, 1))
    if not images:
        raise UserError("no images to check the export with ({})".format(source))
    pixels = np.stack(images).astype(np.float32)
    inputs = (pixels,) if features is None else (pixels, features.astype(np.float32))
    return inputs, targets, np.array(sizes, np.float64), source


def _dataset(data: Path, task: Any, meta: Dict[str, Any]) -> Tuple[Any, Optional[np.ndarray]]:
    """A dataset folder as the model sees it (crops for crop and fused models), and the
    landmark features a fused model also takes."""
    from edge_app.dataset.formats import read_dataset
    from edge_app.dataset.match import match_task
    from train.subjects import apply_plan, plan_from_meta

    ds = match_task(read_dataset(data).verify(), task, "eval")
    ds.samples = ds.samples[:MAX_IMAGES]
    plan = plan_from_meta(meta)
    if plan.input == "crop":
        return apply_plan(ds, plan)[0], None
    if plan.input == "both":
        from edge_app.subject.dataset import scan_subjects
        from train.fused import fused_data

        fd = fused_data(ds, scan_subjects(ds, plan.subject or "hand", plan.provider, plan.crops).subjects,
                        plan)
        return fd.ds, fd.features
    return ds, None


def _val_sample(bundle: Path, task: Any) -> Tuple[List[Path], np.ndarray, str]:
    folder = Path(bundle) / "val_sample"
    try:
        labels = json.loads((folder / "labels.json").read_text())
    except (OSError, ValueError):
        raise UserError("{}: no validation sample in the bundle; pass --data DIR".format(bundle))
    paths = [folder / item["image"] for item in labels]
    if task.task_kind.dataset_layout == "csv":
        targets = np.array([item["points"] for item in labels], dtype=np.float32)
    else:
        targets = np.array([task.labels.index(item["label"]) for item in labels])
    return paths, targets, str(folder)


def _saved_features(bundle: Path) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The landmark features saved with the validation sample (parity without a detector)."""
    path = Path(bundle) / "val_sample" / "landmarks.npz"
    try:
        saved = np.load(str(path))
    except (OSError, ValueError):
        raise UserError("{}: missing or unreadable; retrain the bundle".format(path))
    return saved["x"].astype(np.float32), saved["y"], saved["sizes"]


def _batched(fn: Any, inputs: Inputs, size: int = 32) -> np.ndarray:
    n = len(inputs[0])
    return np.concatenate([fn(tuple(a[i:i + size] for a in inputs)) for i in range(0, n, size)])


def check_parity(wrapper: Any, onnx_path: Path, images: Inputs, task: Any,
                 sizes: np.ndarray) -> Dict[str, Any]:
    """Compare ONNX Runtime with PyTorch; raise when they disagree."""
    import torch

    from export.onnx_export import run_onnx

    with torch.no_grad():
        ref = _batched(lambda b: wrapper(*(torch.from_numpy(a) for a in b)).numpy(), images)
    got = _batched(lambda b: run_onnx(Path(onnx_path), b), images)
    result: Dict[str, Any] = {"images": int(len(images[0])), "max_abs_diff": float(np.abs(ref - got).max())}
    ok = result["max_abs_diff"] <= MAX_ABS
    if ref.ndim == 2:
        result["class_agreement"] = float((ref.argmax(1) == got.argmax(1)).mean())
        ok = ok and result["class_agreement"] == 1.0
    else:
        px = np.linalg.norm((ref - got) * sizes[:, None, :], axis=2)
        result["max_point_diff_px"] = float(px.max())
    result["ok"] = bool(ok)
    if not ok:
        raise UserError("export parity failed: ONNX Runtime and PyTorch differ ({}); the ONNX "
                        "graph is kept at {} for inspection, do not deploy it".format(
                            _describe(result), onnx_path))
    return result


def fp16_estimate(onnx_path: Path, images: Inputs, targets: np.ndarray, task: Any,
                  sizes: np.ndarray) -> Dict[str, Any]:
    """Metric of the FP32 graph and of its FP16 conversion on the same images."""
    import onnx

    from export.onnx_export import run_onnx

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
    key = "accuracy" if "accuracy" in m32 else "rmse_px"
    result = {"metric": key, "fp32": m32[key], "fp16": m16[key], "change": m16[key] - m32[key],
              "max_abs_diff": float(np.abs(out32 - out16).max())}
    if out32.ndim == 2:
        result["agreement"] = float((out32.argmax(1) == out16.argmax(1)).mean())
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
