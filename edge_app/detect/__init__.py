"""Object detectors Jetson users already have (SSD-Mobilenet from jetson-inference's
pytorch-ssd, YOLO from Ultralytics): recognising an ONNX graph's output layout, the input it
expects (letterbox or plain resize, its normalisation), decoding, non-maximum suppression and
mapping boxes back to the frame. numpy and OpenCV only, so it runs on the device as is."""
