"""edge-app: capture, train, export and run camera AI models on NVIDIA Jetson.

Importing this package is cheap and pulls in neither OpenCV, torch nor TensorRT; each is
imported where it is used.
"""
from edge_app.opencv import limit_decoding as _limit_decoding
from edge_app.opencv import quiet_logs as _quiet_logs

__version__ = "0.1.0"

_limit_decoding()   # OpenCV reads its pixel limit once, when loaded: before anything imports it
_quiet_logs()       # and its log levels: the project's one line says what went wrong
