"""Export stage: a bundle to a verified ONNX graph, then a TensorRT engine built on the device.

``export.onnx_export`` and ``export.parity`` need torch (run them where you trained);
``export.engine_cache`` and ``export.tensorrt_build`` need only TensorRT, on the device.
"""
