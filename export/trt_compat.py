"""What differs between the TensorRT releases edge-app meets, in one place:

- 8.5 (JetPack 5.1) is the oldest with the name-based I/O API; 8.4 (JetPack 5.0.2) and older
  are refused in one line;
- ``trt.nptype`` is never called: TensorRT 8.5's maps BOOL to ``np.bool``, which numpy 1.24
  removed, so it raises AttributeError there;
- ``EXPLICIT_BATCH`` before 10 (implicit batch is gone from 10 on);
- 11 builds strongly typed networks: no FP16/INT8 builder flags, no ``platform_has_fast_fp16``
  (FP16 means an FP16 ONNX graph; INT8 means a quantised graph, never calibration);
- ``set_timing_cache`` answers whether it took the cache.

Each function takes the ``tensorrt`` module (or its objects) as an argument, so the tests run
them against stand-ins for each release. Needs numpy only.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from edge_app.errors import UserError

MIN_VERSION = (8, 5)

# TensorRT DataType names -> numpy. BF16, FP8 and INT4 have no numpy dtype.
_NUMPY: Dict[str, Any] = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8,
                          "INT32": np.int32, "INT64": np.int64, "UINT8": np.uint8,
                          "BOOL": np.bool_, "DOUBLE": np.float64}


def version(trt: Any) -> Tuple[int, int]:
    """(major, minor) of a tensorrt module ('10.3.0.30' -> (10, 3))."""
    numbers = [int(n) for n in re.findall(r"\d+", str(getattr(trt, "__version__", "")))[:2]]
    return (numbers + [0, 0])[0], (numbers + [0, 0])[1]


def require_name_based_io(trt: Any) -> None:
    """One line when this TensorRT predates the name-based I/O API the backend and builder use."""
    if version(trt) < MIN_VERSION:
        raise UserError("TensorRT {} is too old: edge-app's trt backend needs TensorRT 8.5+ (JetPack "
                        "5.1 or later) for its name-based I/O API; upgrade JetPack, or run with "
                        "--backend onnx".format(getattr(trt, "__version__", "?")))


def numpy_dtype(trt_dtype: Any) -> np.dtype:
    """The numpy dtype of a TensorRT DataType, by its name (never ``trt.nptype``: see above)."""
    name = getattr(trt_dtype, "name", None) or str(trt_dtype).rsplit(".", 1)[-1]
    if name not in _NUMPY:
        raise UserError(f"the engine has a {name} tensor, which numpy cannot hold: export the model with "
                        "float32 outputs")
    return np.dtype(_NUMPY[name])


def strongly_typed(trt: Any) -> bool:
    """True from TensorRT 11 on (no precision builder flags: the graph's types are the engine's)."""
    return version(trt) >= (11, 0) or not hasattr(trt.BuilderFlag, "FP16")


def network_flags(trt: Any) -> int:
    """``create_network`` flags: explicit batch before 10, strongly typed from 11."""
    flags = 0
    if version(trt) < (10, 0):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if strongly_typed(trt):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return flags


def fast_precision(builder: Any, precision: str) -> Optional[bool]:
    """``builder.platform_has_fast_fp16`` / ``_int8`` where the builder still has it (removed in
    11); None when this TensorRT no longer says."""
    value = getattr(builder, "platform_has_fast_" + precision, None)
    return None if value is None else bool(value)


def precision_flags(trt: Any, precision: str) -> List[Any]:
    """The builder flags for ``precision`` (INT8 keeps FP16 for the layers INT8 cannot take);
    none on a strongly typed TensorRT, where the graph carries the precision."""
    if strongly_typed(trt) or precision == "fp32":
        return []
    if precision == "fp16":
        return [trt.BuilderFlag.FP16]
    return [trt.BuilderFlag.INT8, trt.BuilderFlag.FP16]


def attach_timing_cache(config: Any, data: bytes) -> Tuple[Any, str]:
    """Attach a timing cache made from ``data`` (b"" for a new one): (cache, "") when TensorRT
    took it, (None, why) when it refused it (another TensorRT or GPU wrote it, or it is corrupt)."""
    try:
        cache = config.create_timing_cache(data)
        if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
            return cache, ""
        return None, "TensorRT did not accept it"
    except Exception as exc:   # a corrupt file raises inside TensorRT's deserialiser
        return None, str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__


def set_calibration_profile(config: Any, profile: Any) -> None:
    """Tell TensorRT which shapes to calibrate at (deprecated from 10.1, still honoured)."""
    setter = getattr(config, "set_calibration_profile", None)
    if setter is None or setter(profile) is False:
        raise UserError("TensorRT refused the INT8 calibration profile; use --precision fp16")
