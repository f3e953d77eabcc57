"""Export stage: a bundle to a verified ONNX graph, then a TensorRT engine built on the device.

``edge_app.export.onnx_export`` and ``edge_app.export.parity`` need torch (run them where you trained);
``edge_app.export.engine_cache`` and ``edge_app.export.tensorrt_build`` need only TensorRT, on the device.
"""
