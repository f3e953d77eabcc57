"""Build a TensorRT engine from an ONNX graph, on the device that will run it.

One small module against TensorRT's Python API, 8.5 (JetPack 5.1) to 11:
- name-based I/O and ``build_serialized_network`` (8.5+); ``EXPLICIT_BATCH`` only before 10;
- FP16/INT8 through builder flags up to 10.x; TensorRT 11 networks are strongly typed (no
  precision flags), so FP16 there means parsing an FP16 ONNX graph (made here when asked);
- a workspace limit, a persisted timing cache, and the build time shown while it runs.
Never a silent FP32 engine: FP16 on a GPU without fast FP16 is an error.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, List, Optional, Tuple

import numpy as np

from edge_app.errors import UserError
from export.engine_cache import DeviceInfo

if TYPE_CHECKING:   # types from tensorrt-stubs; the module itself is imported only when used
    import tensorrt as trt


def tensorrt_available() -> bool:
    """True when the real TensorRT is importable (tensorrt-stubs alone leaves an empty
    ``tensorrt`` namespace package that imports but has no API)."""
    try:
        import tensorrt as trt
    except ImportError:
        return False
    return hasattr(trt, "Builder")


def _require_trt() -> None:
    if not tensorrt_available():
        raise UserError("TensorRT is not installed here: build engines on the Jetson, where JetPack "
                        "installs it (python3-libnvinfer), or run with the ONNX Runtime backend")


def trt_major(version: str) -> int:
    return int(version.split(".")[0])


def device_info() -> DeviceInfo:
    """TensorRT version, GPU name and compute capability of this machine."""
    _require_trt()
    import tensorrt as trt

    name, cc = _gpu()
    return DeviceInfo(tensorrt=str(trt.__version__), gpu=name, compute_capability=cc)


def _gpu() -> "tuple[str, str]":
    """GPU name and compute capability, from whichever CUDA binding is installed."""
    try:
        from cuda.bindings import runtime as cudart   # cuda-python
    except ImportError:
        cudart = None
    if cudart is not None:
        err, props = cudart.cudaGetDeviceProperties(0)
        if int(err) == 0:
            return props.name.decode().strip("\x00"), "{}.{}".format(props.major, props.minor)
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            return torch.cuda.get_device_name(0), "{}.{}".format(major, minor)
    except ImportError:
        pass
    model = Path("/proc/device-tree/model")
    if model.is_file():   # a Jetson without cuda-python or torch: board name, unknown sm
        return model.read_text().strip("\x00\n "), "unknown"
    raise UserError("no CUDA GPU found to build an engine for (install cuda-python to identify it)")


class _Ticker:
    """Prints the elapsed build time every few seconds (builds take minutes on small boards)."""

    def __init__(self, log: Callable[[str], None], every: float = 15.0) -> None:
        self.log, self.every = log, every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="trt-build-ticker", daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        while not self.stop.wait(self.every):
            self.log("  still building... {:.0f} s".format(time.monotonic() - start))

    def __enter__(self) -> "_Ticker":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(timeout=1.0)


def build_engine(onnx_path: Path, engine_path: Path, precision: str = "fp16",
                 workspace_mb: int = 1024, max_batch: int = 8,
                 timing_cache: Optional[Path] = None,
                 calibration: Optional[Callable[[], Iterator[Tuple[np.ndarray, ...]]]] = None,
                 log: Callable[[str], None] = print) -> float:
    """Build and save an engine; returns the build time in seconds."""
    _require_trt()
    import tensorrt as trt

    major = trt_major(trt.__version__)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if major < 10:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if major >= 11:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    graph = _graph_bytes(onnx_path, precision, major)
    if not parser.parse(graph):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise UserError("TensorRT {} cannot parse {}: {}".format(trt.__version__, onnx_path,
                                                                 "; ".join(errors) or "unknown error"))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    _set_precision(major, builder, config, precision, network, calibration)
    _add_profile(builder, config, network, max_batch)
    cache = _load_timing_cache(config, timing_cache)
    log("building a {} TensorRT {} engine from {} (minutes on small boards)".format(
        precision.upper(), trt.__version__, onnx_path.name))
    start = time.monotonic()
    with _Ticker(log):
        serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise UserError("TensorRT could not build the engine (see its messages above); try a "
                        "larger --workspace or --precision fp32")
    tmp = engine_path.with_name(engine_path.name + ".part")
    tmp.write_bytes(bytes(serialized))
    tmp.replace(engine_path)
    if timing_cache is not None and cache is not None:
        timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    return time.monotonic() - start


def _graph_bytes(onnx_path: Path, precision: str, major: int) -> bytes:
    """The ONNX to parse: as is, or converted to FP16 for a strongly typed TensorRT 11."""
    if precision == "fp16" and major >= 11:
        import onnx
        from onnxconverter_common import float16

        half = float16.convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True)
        return bytes(half.SerializeToString())
    return onnx_path.read_bytes()


def _set_precision(major: int, builder: "trt.Builder", config: "trt.IBuilderConfig",
                   precision: str, network: "trt.INetworkDefinition",
                   calibration: Optional[Callable[[], Iterator[Tuple[np.ndarray, ...]]]]) -> None:
    import tensorrt as trt

    if precision == "fp16":
        if not builder.platform_has_fast_fp16:
            raise UserError("this GPU has no fast FP16: build with --precision fp32 (refusing to "
                            "make an FP32 engine that claims to be FP16)")
        if major < 11:
            config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "int8":
        if major >= 11:
            raise UserError("TensorRT 11 has no INT8 calibration: quantise the ONNX graph (Q/DQ "
                            "nodes, e.g. with NVIDIA ModelOpt) or use --precision fp16")
        if not builder.platform_has_fast_int8:
            raise UserError("this GPU has no fast INT8: use --precision fp16")
        if calibration is None:
            raise UserError("INT8 needs calibration images: the bundle's val_sample or --calib-data")
        config.set_flag(trt.BuilderFlag.INT8)
        config.set_flag(trt.BuilderFlag.FP16)   # layers INT8 cannot take fall back to FP16
        names = [network.get_input(i).name for i in range(network.num_inputs)]
        config.int8_calibrator = _calibrator(names, calibration)


def _calibrator(input_names: List[str], batches: Callable[[], Iterator[Tuple[np.ndarray, ...]]]) -> Any:
    """INT8 entropy calibrator over the calibration images, through Polygraphy (which owns
    the device buffers and the calibration cache across TensorRT versions)."""
    try:
        from polygraphy.backend.trt import Calibrator
    except ImportError:
        raise UserError("INT8 calibration needs Polygraphy: pip install polygraphy")
    return Calibrator(data_loader=(dict(zip(input_names, b)) for b in batches()))


def _add_profile(builder: "trt.Builder", config: "trt.IBuilderConfig",
                 network: "trt.INetworkDefinition", max_batch: int) -> None:
    """A dynamic-batch profile for every input: batch 1 is what the live loop runs, up to
    ``max_batch``. Graphs with a fixed batch (many detector exports) need none."""
    import tensorrt as trt

    tensors = [network.get_input(i) for i in range(network.num_inputs)]
    shapes = [(t.name, [int(t.shape[k]) for k in range(len(t.shape))]) for t in tensors]
    if all(d > 0 for _, shape in shapes for d in shape):
        return
    profile = builder.create_optimization_profile()
    for name, shape in shapes:
        rest = shape[1:]   # (C, H, W) pixels, or (F,) landmarks
        if any(d <= 0 for d in rest):
            raise UserError("input '{}' has a dynamic size {}: export the model with a fixed "
                            "image size (Ultralytics: imgsz=640 dynamic=False)".format(name, shape))
        profile.set_shape(name, trt.Dims([1] + rest), trt.Dims([1] + rest),
                          trt.Dims([max_batch] + rest))
    config.add_optimization_profile(profile)


def _load_timing_cache(config: "trt.IBuilderConfig", path: Optional[Path]) -> Any:
    if path is None:
        return None
    data = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def calibration_batches(inputs: Any, batch: int = 8) -> Callable[[], Iterator[Tuple[np.ndarray, ...]]]:
    """Calibration data (N, 3, H, W float32 pixels; or a tuple of arrays, one per graph
    input) as a re-iterable generator of batches, each a tuple in input order."""
    arrays = (inputs,) if isinstance(inputs, np.ndarray) else tuple(inputs)
    n = len(arrays[0])

    def gen() -> Iterator[Tuple[np.ndarray, ...]]:
        for i in range(0, n - n % batch or n, batch):
            yield tuple(np.ascontiguousarray(a[i:i + batch], dtype=np.float32) for a in arrays)
    return gen


__all__: List[str] = ["build_engine", "device_info", "calibration_batches", "trt_major",
                      "tensorrt_available"]
