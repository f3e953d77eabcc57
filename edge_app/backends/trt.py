"""The TensorRT backend: the bundle's engine for this device (built from model.onnx and cached
on first run, rebuilt when stale), run through the name-based I/O API (TensorRT 8.5+, older is
one line: ``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``) on a CUDA stream. Device
buffers come from Polygraphy's CUDA wrapper (ctypes over libcudart, so no cuda-python needed)."""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

from edge_app.backends.base import Backend, Batch, Precision, as_inputs
from edge_app.errors import UserError
from edge_app.export.engine_cache import ensure_engine
from edge_app.export.tensorrt_build import build_engine, device_info, tensorrt_available
from edge_app.export.trt_compat import numpy_dtype, require_name_based_io
from edge_app.model.info import ModelInfo


class TrtBackend(Backend):
    name = "trt"

    def __init__(self, threads: Optional[int] = None, precision: Precision = "fp16") -> None:
        self.precision = precision
        self.engine: Any = None
        self.context: Any = None
        self._buffers: Dict[Tuple[str, Tuple[int, ...]], Any] = {}

    def load(self, model: ModelInfo) -> None:

        if not tensorrt_available():
            raise UserError("TensorRT is not installed here (JetPack provides it on a Jetson)")
        import tensorrt as trt


        require_name_based_io(trt)   # 8.4 and older: one line, not an AttributeError further on
        if model.onnx is None:
            raise UserError(f"{model.name}: no model.onnx to build an engine from; run edge-app export")
        try:
            from polygraphy import cuda
        except ImportError:
            raise UserError("the trt backend needs Polygraphy for device memory: pip install polygraphy")

        device = device_info()

        def build(src: Any, dst: Any) -> None:
            build_engine(src, dst, self.precision, timing_cache=dst.parent, device=device)

        path = ensure_engine(model.onnx, self.precision, device, build)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise UserError(f"{path}: TensorRT could not load the engine; delete it to rebuild")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.inputs, self.outputs = inputs, [n for n in names if n not in inputs]
        self.stream = cuda.Stream()
        self._cuda = cuda
        self.path = path

    def _device(self, role: str, shape: Tuple[int, ...]) -> Any:
        """Device buffers, allocated once per tensor and shape (batch sizes repeat)."""
        key = (role, shape)
        if key not in self._buffers:
            dtype = self._dtype(role) if role in self.outputs else np.float32
            self._buffers[key] = self._cuda.DeviceArray(shape=shape, dtype=dtype)
        return self._buffers[key]

    def infer(self, batch: Batch) -> np.ndarray:
        return self.infer_all(batch)[self.outputs[0]]

    def infer_all(self, batch: Batch) -> Dict[str, np.ndarray]:
        # The engine's inputs keep the ONNX graph's order, which is the batch's order.
        for name, x in zip(self.inputs, as_inputs(batch)):
            self.context.set_input_shape(name, x.shape)
            d_in = self._device(name, x.shape)
            d_in.copy_from(x, self.stream)
            self.context.set_tensor_address(name, d_in.ptr)
        out: Dict[str, Tuple[Any, np.ndarray]] = {}
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            d_out = self._device(name, shape)
            self.context.set_tensor_address(name, d_out.ptr)
            out[name] = (d_out, np.empty(shape, dtype=self._dtype(name)))
        self.context.execute_async_v3(self.stream.ptr)
        for d_out, host in out.values():
            d_out.copy_to(host, self.stream)
        self.stream.synchronize()
        return {name: host for name, (_, host) in out.items()}

    def _dtype(self, name: str) -> Any:
        """The host dtype of an output (NMS-inside detectors return int32 class ids); not
        ``trt.nptype``, whose TensorRT 8.5 table fails under numpy 1.24+ (see trt_compat)."""

        return numpy_dtype(self.engine.get_tensor_dtype(name))

    def describe(self) -> str:
        return f"trt ({self.precision})"

    def close(self) -> None:
        for buf in self._buffers.values():
            buf.free()
        self._buffers.clear()
        self.context = self.engine = None
