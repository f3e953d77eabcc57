"""Build a TensorRT engine from an ONNX graph, on the device that will run it.

One small module against TensorRT's Python API, 8.5 (JetPack 5.1) to 11, with what differs
between releases in :mod:`edge_app.export.trt_compat`:
- name-based I/O and ``build_serialized_network`` (8.5+); ``EXPLICIT_BATCH`` only before 10;
- FP16/INT8 through builder flags up to 10.x; TensorRT 11 networks are strongly typed (no
  precision flags), so FP16 there means parsing an FP16 ONNX graph (made here when asked);
- INT8 calibrated at a calibration profile of exactly the calibration batch;
- a workspace limit, a timing cache keyed like the engine cache (a refused one is a note and a
  build without it), and the build time shown while it runs.
Never a silent FP32 engine: FP16 on a GPU without fast FP16 is an error.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, List, Optional, Tuple

import numpy as np

from edge_app.errors import UserError
from edge_app.export import trt_compat
from edge_app.export.engine_cache import DeviceInfo, timing_cache_path

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
    """The major of a TensorRT version string ('10.3.0' -> 10)."""
    return int(version.split(".")[0])


def device_info() -> DeviceInfo:
    """TensorRT version, GPU name and compute capability of this machine."""
    _require_trt()
    import tensorrt as trt

    name, cc = _gpu()
    return DeviceInfo(tensorrt=str(trt.__version__), gpu=name, compute_capability=cc)


def _gpu() -> tuple[str, str]:
    """GPU name and compute capability, from whichever CUDA binding is installed."""
    try:
        from cuda.bindings import runtime as cudart  # cuda-python
    except ImportError:
        cudart = None
    if cudart is not None:
        err, props = cudart.cudaGetDeviceProperties(0)
        if int(err) == 0:
            return props.name.decode().strip("\x00"), f"{props.major}.{props.minor}"
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            return torch.cuda.get_device_name(0), f"{major}.{minor}"
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
            self.log(f"  still building... {time.monotonic() - start:.0f} s")

    def __enter__(self) -> _Ticker:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(timeout=1.0)


Batches = Callable[[], Iterator[Tuple[np.ndarray, ...]]]


def build_engine(onnx_path: Path, engine_path: Path, precision: str = "fp16",
                 workspace_mb: int = 1024, max_batch: int = 8,
                 timing_cache: Optional[Path] = None, calibration: Optional[Batches] = None,
                 log: Callable[[str], None] = print, device: Optional[DeviceInfo] = None) -> float:
    """Build and save an engine; returns the build time in seconds. ``timing_cache``: the folder
    for the timing cache (a file path means its folder), kept under a name keyed like the engine
    cache (TensorRT version, GPU, compute capability) so that no board reads another's."""
    _require_trt()
    import tensorrt as trt

    trt_compat.require_name_based_io(trt)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(trt_compat.network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    graph = _graph_bytes(onnx_path, precision, trt_compat.strongly_typed(trt))
    if not parser.parse(graph):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise UserError("TensorRT {} cannot parse {}: {}".format(trt.__version__, onnx_path,
                                                                 "; ".join(errors) or "unknown error"))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    _set_precision(trt, builder, config, precision)
    _add_profile(builder, config, network, max_batch)
    if precision == "int8":
        _set_calibration(builder, config, network, calibration, max_batch)
    cache_path = _timing_cache_path(timing_cache, device, log)
    cache = _load_timing_cache(config, cache_path, log)
    log(f"building a {precision.upper()} TensorRT {trt.__version__} engine from {onnx_path.name} (minutes on small boards)")
    start = time.monotonic()
    with _Ticker(log):
        serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise UserError("TensorRT could not build the engine (see its messages above); try a "
                        "larger --workspace or --precision fp32")
    _write(engine_path, bytes(serialized))
    if cache_path is not None and cache is not None:
        _write(cache_path, bytes((config.get_timing_cache() or cache).serialize()))
    return time.monotonic() - start


def _write(path: Path, data: bytes) -> None:
    """Whole or not at all: a build killed half-way leaves no truncated engine or cache."""
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)


def _graph_bytes(onnx_path: Path, precision: str, strongly_typed: bool) -> bytes:
    """The ONNX to parse: as is, or converted to FP16 for a strongly typed TensorRT (11)."""
    if precision == "fp16" and strongly_typed:
        import onnx
        from onnxconverter_common import float16

        half = float16.convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True)
        return bytes(half.SerializeToString())
    return onnx_path.read_bytes()


def _set_precision(trt: Any, builder: trt.Builder, config: trt.IBuilderConfig,
                   precision: str) -> None:
    """Precision flags, after checking the GPU where this TensorRT can still say."""
    typed = trt_compat.strongly_typed(trt)
    if precision == "int8" and typed:
        raise UserError(f"TensorRT {trt.__version__} builds strongly typed networks and has no INT8 calibration: "
                        "quantise the ONNX graph (Q/DQ nodes, e.g. with NVIDIA ModelOpt) or use "
                        "--precision fp16")
    if precision in ("fp16", "int8") and trt_compat.fast_precision(builder, precision) is False:
        raise UserError("this GPU has no fast {}: build with --precision {} (refusing to make an "
                        "engine that claims a precision it does not run at)".format(
                            precision.upper(), "fp32" if precision == "fp16" else "fp16"))
    for flag in trt_compat.precision_flags(trt, precision):
        config.set_flag(flag)


def _set_calibration(builder: trt.Builder, config: trt.IBuilderConfig,
                     network: trt.INetworkDefinition, calibration: Optional[Batches],
                     max_batch: int) -> None:
    """INT8 calibration: the batches re-cut to the size TensorRT calibrates at, and (for a
    dynamic batch) a calibration profile whose shapes are exactly that size, so that every
    image of every batch is read (TensorRT otherwise calibrates at profile 0's opt shape)."""
    if calibration is None:
        raise UserError("INT8 needs calibration images: the bundle's val_sample or --calib-data")
    shapes = _input_shapes(network)
    first = next(iter(calibration()), None)
    if first is None:
        raise UserError("INT8 calibration got no images: the bundle's val_sample or --calib-data is empty")
    dynamic = any(shape[0] <= 0 for _, shape in shapes)
    size = min(len(first[0]), max_batch) if dynamic else shapes[0][1][0]
    if dynamic:
        import tensorrt as trt

        profile = builder.create_optimization_profile()
        for name, shape in shapes:
            dims = trt.Dims([size] + shape[1:])
            profile.set_shape(name, dims, dims, dims)
        trt_compat.set_calibration_profile(config, profile)
    config.int8_calibrator = _calibrator([name for name, _ in shapes], rebatch(calibration, size))


def _input_shapes(network: trt.INetworkDefinition) -> List[Tuple[str, List[int]]]:
    tensors = [network.get_input(i) for i in range(network.num_inputs)]
    return [(t.name, [int(t.shape[k]) for k in range(len(t.shape))]) for t in tensors]


def rebatch(batches: Batches, size: int) -> Batches:
    """The same data in batches of exactly ``size`` (a short tail is dropped: TensorRT reads
    whole batches); re-iterable like ``batches``."""
    def gen() -> Iterator[Tuple[np.ndarray, ...]]:
        pending: List[Tuple[np.ndarray, ...]] = []
        count = 0
        for batch in batches():
            pending.append(batch)
            count += len(batch[0])
            while count >= size:
                joined = tuple(np.concatenate(parts) for parts in zip(*pending))
                yield tuple(np.ascontiguousarray(a[:size]) for a in joined)
                pending = [tuple(a[size:] for a in joined)]
                count -= size
    return gen


class _Feeds:
    """Calibration batches as feed dicts, iterable again whenever TensorRT restarts."""

    def __init__(self, names: List[str], batches: Batches) -> None:
        self.names, self.batches = names, batches

    def __iter__(self) -> Iterator[dict]:
        return (dict(zip(self.names, b)) for b in self.batches())


def _calibrator(input_names: List[str], batches: Batches) -> Any:
    """INT8 entropy calibrator over the calibration images, through Polygraphy (which owns
    the device buffers and the calibration cache across TensorRT versions)."""
    try:
        from polygraphy.backend.trt import Calibrator
    except ImportError:
        raise UserError("INT8 calibration needs Polygraphy: pip install polygraphy")
    return Calibrator(data_loader=_Feeds(input_names, batches))


def _add_profile(builder: trt.Builder, config: trt.IBuilderConfig,
                 network: trt.INetworkDefinition, max_batch: int) -> None:
    """A dynamic-batch profile for every input: batch 1 is what the live loop runs, up to
    ``max_batch``. Graphs with a fixed batch (many detector exports) need none."""
    import tensorrt as trt

    shapes = _input_shapes(network)
    if all(d > 0 for _, shape in shapes for d in shape):
        return
    profile = builder.create_optimization_profile()
    for name, shape in shapes:
        rest = shape[1:]   # (C, H, W) pixels, or (F,) landmarks
        if any(d <= 0 for d in rest):
            raise UserError(f"input '{name}' has a dynamic size {shape}: export the model with a fixed "
                            "image size (Ultralytics: imgsz=640 dynamic=False)")
        profile.set_shape(name, trt.Dims([1] + rest), trt.Dims([1] + rest),
                          trt.Dims([max_batch] + rest))
    config.add_optimization_profile(profile)


def _timing_cache_path(where: Optional[Path], device: Optional[DeviceInfo],
                       log: Callable[[str], None]) -> Optional[Path]:
    """The keyed timing cache file in ``where`` (a folder, or a file whose folder is meant)."""
    if where is None:
        return None
    folder = where if where.is_dir() or not where.suffix else where.parent
    if device is None:
        try:
            device = device_info()
        except UserError as exc:
            log(f"note: no timing cache ({exc})")
            return None
    return timing_cache_path(folder, device)


def _load_timing_cache(config: trt.IBuilderConfig, path: Optional[Path],
                       log: Callable[[str], None]) -> Any:
    """The timing cache attached to ``config`` (None without one). One that TensorRT refuses is
    a one-line note and a build without it; the new build's timings then replace it."""
    if path is None:
        return None
    data = path.read_bytes() if path.is_file() else b""
    cache, why = trt_compat.attach_timing_cache(config, data)
    if cache is None and data:
        log(f"note: timing cache {path.name} not used ({why}); building without it")
        cache, why = trt_compat.attach_timing_cache(config, b"")
    return cache


def calibration_batches(inputs: Any, batch: int = 8) -> Batches:
    """Calibration data (N, 3, H, W float32 pixels; or a tuple of arrays, one per graph
    input) as a re-iterable generator of batches, each a tuple in input order."""
    arrays = (inputs,) if isinstance(inputs, np.ndarray) else tuple(inputs)
    n = len(arrays[0])

    def gen() -> Iterator[Tuple[np.ndarray, ...]]:
        for i in range(0, n - n % batch or n, batch):
            yield tuple(np.ascontiguousarray(a[i:i + batch], dtype=np.float32) for a in arrays)
    return gen


__all__: List[str] = ["build_engine", "device_info", "calibration_batches", "rebatch", "trt_major",
                      "tensorrt_available"]
