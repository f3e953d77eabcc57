#!/usr/bin/env bash
# Install edge-app on a Jetson (JetPack 5.1.x, 6.0, 6.1 or 6.2), keeping JetPack's own OpenCV,
# CUDA and TensorRT. Run from the project folder:
#
#   ./deploy/install-jetson.sh [--train] [--prefix /opt/edge-app] [--no-service] [--dry-run]
#
#   --train       also install NVIDIA's torch wheel, to train on the board (large download)
#   --prefix DIR  where the virtual environment goes (default /opt/edge-app)
#   --no-service  do not install the systemd unit
#   --dry-run     say which JetPack, constraints file, torch wheel and packages, then stop
#
# The L4T release picks the JetPack row of edge_app/device/jetpack.py: its pip constraints file
# (deploy/constraints-jetpack-*.txt: numpy 1.x, which JetPack's OpenCV and NVIDIA's torch are
# built against) and its torch wheel. Unsupported releases (R35.1, JetPack 4) stop here.
# The virtual environment uses --system-site-packages so that JetPack's cv2 (NVIDIA's OpenCV,
# built with GStreamer for CSI cameras) and tensorrt are visible; no pip OpenCV is installed.
# Ends with `edge-app doctor`, which checks the result line by line.
set -euo pipefail

PREFIX=/opt/edge-app
TRAIN=0
SERVICE=1
DRY_RUN=0
while [ $# -gt 0 ]; do
    case "$1" in
        --train) TRAIN=1 ;;
        --prefix) PREFIX="$2"; shift ;;
        --no-service) SERVICE=0 ;;
        --dry-run) DRY_RUN=1 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RELEASE_FILE="${EDGE_APP_RELEASE_FILE:-/etc/nv_tegra_release}"   # tests point it elsewhere
if [ ! -f "$RELEASE_FILE" ]; then
    echo "not a Jetson (no $RELEASE_FILE); on a desktop see deploy/README.md" >&2
    exit 1
fi

# One row of the release table; an unsupported release prints its own one line.
jetpack() { python3 "$SRC/edge_app/device/jetpack.py" --release-file "$RELEASE_FILE" "$@"; }
packages() { python3 "$SRC/edge_app/device/jetpack.py" packages "$1" --src "$SRC"; }
JETPACK="$(jetpack jetpack)" || exit 1
PYTHON_VERSION="$(jetpack python)"
CONSTRAINTS="$SRC/deploy/$(jetpack constraints)"
OPENCV_VERSION="$(jetpack opencv)"
DEFAULT_WHEEL="$(jetpack torch_wheel)"
mapfile -t RUNTIME_PACKAGES < <(packages runtime)
mapfile -t TRAIN_PACKAGES < <(packages train)
mapfile -t TRAIN_NODEPS < <(packages train-nodeps)

HAVE_PYTHON="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [ "$HAVE_PYTHON" != "$PYTHON_VERSION" ]; then
    echo "python3 is ${HAVE_PYTHON}; JetPack ${JETPACK} ships Python ${PYTHON_VERSION}, which" \
         "$(basename "$CONSTRAINTS") is resolved for: run with the system python3" >&2
    exit 1
fi
echo "JetPack ${JETPACK} (Python ${PYTHON_VERSION}); constraints $(basename "$CONSTRAINTS");" \
     "installing into ${PREFIX}"
if [ "$DRY_RUN" = 1 ]; then
    echo "packages: ${RUNTIME_PACKAGES[*]}"
    echo "with --train: ${TORCH_WHEEL:-$DEFAULT_WHEEL} ${TRAIN_PACKAGES[*]} (--no-deps: ${TRAIN_NODEPS[*]})"
    exit 0
fi

sudo apt-get update
# NVIDIA's OpenCV (nvidia-opencv: libopencv-python and its libraries), not Ubuntu's python3-opencv.
sudo apt-get install -y python3-pip python3-venv v4l-utils nvidia-opencv
if dpkg-query -W -f='${Status}' python3-opencv 2>/dev/null | grep -q "ok installed"; then
    echo "warning: Ubuntu's python3-opencv is installed: its cv2 comes first on Python's path and" \
         "shadows NVIDIA's OpenCV ${OPENCV_VERSION} (python3 imports" \
         "$(python3 -c 'import cv2; print(cv2.__version__)' 2>/dev/null || echo 'no cv2')):" \
         "sudo apt-get remove python3-opencv" >&2
fi
if pip3 list 2>/dev/null | grep -qiE '^opencv-(contrib-)?python'; then
    echo "warning: a pip OpenCV is installed and shadows JetPack's (no GStreamer):" \
         "pip3 uninstall opencv-python opencv-python-headless opencv-contrib-python" >&2
fi

sudo mkdir -p "$PREFIX"
sudo chown "$(id -u):$(id -g)" "$PREFIX"
python3 -m venv --system-site-packages "$PREFIX/venv"
# The release's constraints stay in force for every later pip in this venv (its pip.conf), so
# that no `pip install` there moves numpy off the 1.x that JetPack's OpenCV and torch need.
install -m 0644 "$CONSTRAINTS" "$PREFIX/constraints.txt"
printf '[global]\nconstraint = %s\n' "$PREFIX/constraints.txt" > "$PREFIX/venv/pip.conf"
PIP=("$PREFIX/venv/bin/python" -m pip)
"${PIP[@]}" install -q --upgrade pip
# ONNX Runtime from PyPI runs on the CPU; for its CUDA provider use NVIDIA's onnxruntime-gpu
# wheel for your JetPack (Jetson Zoo). The TensorRT backend needs neither.
# The studio extra (Starlette, uvicorn) serves the browser UI: edge-app studio.
"${PIP[@]}" install -q "${RUNTIME_PACKAGES[@]}"
"$PREFIX/venv/bin/python" -m edge_app.subject.install   # MediaPipe without a pip OpenCV

if [ "$TRAIN" = 1 ]; then
    # NVIDIA's wheels: https://docs.nvidia.com/deeplearning/frameworks/install-pytorch-jetson-platform/
    # Override with TORCH_WHEEL=<url or file> for another build.
    sudo apt-get install -y libopenblas-dev
    "${PIP[@]}" install --no-cache-dir "${TORCH_WHEEL:-$DEFAULT_WHEEL}"
    # The rest of the train extra, without letting pip replace NVIDIA's torch with PyPI's.
    "${PIP[@]}" install -q "${TRAIN_PACKAGES[@]}"
    "${PIP[@]}" install -q --no-deps "${TRAIN_NODEPS[@]}"
    if ! "$PREFIX/venv/bin/python" -c "import torchvision" 2>/dev/null; then
        echo "torch installed; torchvision is not: build the release matching it (see" \
             "'Training on the board' in deploy/README.md)" >&2
    fi
fi

if ! command -v jtop >/dev/null 2>&1; then
    sudo pip3 install -U jetson-stats   # runs its own service and makes the jtop group
fi

# The groups the service user needs: video (cameras, the GPU's device nodes), render (/dev/dri)
# and jtop (jetson-stats' socket, for power and temperatures in edge-app bench), where they exist.
service_groups() {
    local groups=video group
    for group in render jtop; do
        if getent group "$group" >/dev/null; then
            groups="$groups,$group"
        fi
    done
    echo "$groups"
}

if [ "$SERVICE" = 1 ]; then
    GROUPS_WANTED="$(service_groups)"
    if ! id edge-app >/dev/null 2>&1; then
        sudo useradd --system --home-dir /var/lib/edge-app --shell /usr/sbin/nologin \
            --groups "$GROUPS_WANTED" edge-app
    else
        sudo usermod -aG "$GROUPS_WANTED" edge-app
    fi
    sudo install -m 0644 "$SRC/deploy/edge-app.service" /etc/systemd/system/edge-app.service
    if [ ! -f /etc/default/edge-app ]; then
        sudo install -m 0644 "$SRC/deploy/edge-app.env" /etc/default/edge-app
    fi
    sudo sed -i "s#/opt/edge-app#${PREFIX}#g" /etc/systemd/system/edge-app.service
    sudo systemctl daemon-reload
    echo "service installed (not enabled), user edge-app in groups ${GROUPS_WANTED}: edit" \
         "/etc/default/edge-app, then sudo systemctl enable --now edge-app"
fi

"$PREFIX/venv/bin/edge-app" doctor || true
