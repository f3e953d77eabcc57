"""edge-app: capture, train, export and run camera AI models on NVIDIA Jetson.

Importing this package is cheap and pulls in neither OpenCV, torch nor TensorRT; each is
imported where it is used.
"""
__version__ = "0.1.0"
