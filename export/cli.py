"""``edge-app export`` (``python -m export``): bundle -> verified ONNX -> TensorRT engine."""
from __future__ import annotations

import argparse
import logging

from edge_app.commands.common import check_number, check_out_file
from edge_app.dataset.atomic import atomic_write_text, json_text
from edge_app.errors import UserError
from edge_app.export.engine_cache import PRECISIONS, ensure_engine
from edge_app.export.onnx_export import check_opset, export_onnx
from edge_app.export.parity import (
    check_parity,
    describe_fp16,
    describe_parity,
    fp16_estimate,
    parity_inputs,
)
from edge_app.export.tensorrt_build import build_engine, calibration_batches, device_info
from edge_app.model.bundle import read_bundle

log = logging.getLogger(__name__)

HELP = """Export a bundle to ONNX (model.onnx in the bundle), then check it: ONNX Runtime against
PyTorch on the bundle's validation sample (or --data), and the metric change if the graph runs in
FP16. A parity failure is an error.

With --engine, also build a TensorRT engine for THIS machine's GPU and TensorRT (run it on the
Jetson): cached in the bundle by ONNX hash, TensorRT version, GPU and precision, and rebuilt
automatically when any of them changes or the file is damaged."""

EXAMPLES = """examples:
  edge-app export --model runs/thumbs                      (desktop: ONNX + parity + FP16 estimate)
  edge-app export --model runs/thumbs --engine             (Jetson: FP16 engine)
  edge-app export --model runs/thumbs --engine --precision int8 --calib-data data/thumbs"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a bundle to ONNX and build a TensorRT engine",
                       description=HELP, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, metavar="BUNDLE", help="a bundle folder from train")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17: TensorRT 8.5 on "
                   "JetPack 5.1 parses it)")
    p.add_argument("--data", metavar="DIR", help="images for the parity check (default: the "
                   "bundle's val_sample)")
    p.add_argument("--no-simplify", action="store_true", help="skip the onnxslim pass")
    p.add_argument("--skip-onnx", action="store_true", help="with --engine: use the bundle's "
                   "existing model.onnx (a Jetson without torch)")
    p.add_argument("--engine", action="store_true", help="also build the TensorRT engine here")
    p.add_argument("--precision", default="fp16", choices=PRECISIONS, help="engine precision")
    p.add_argument("--workspace", type=int, default=1024, metavar="MB", help="builder workspace")
    p.add_argument("--calib-data", metavar="DIR", help="INT8 calibration images (default: val_sample)")
    p.add_argument("--json", metavar="FILE", help="write the export report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    bundle = Path(args.model)
    read_bundle(bundle)   # a corrupt or missing bundle.json is named before a missing extra
    check_out_file("--json", args.json)   # before the export and the engine build, not after
    check_number("--workspace", args.workspace, 1, rule="at least 1 (MB)")
    report = {}
    if not args.skip_onnx:
        try:
            import onnx  # noqa: F401
            import torch  # noqa: F401
        except ImportError as exc:
            raise UserError(f"ONNX export needs torch and onnx ({exc}): pip install 'edge-app[export]' "
                            "where you trained; on a Jetson without torch use --engine "
                            "--skip-onnx with the model.onnx made there")
        check_opset(args.opset)
        report = _export(bundle, args)
    if args.engine:
        report["engine"] = _engine(bundle, args)
    if args.json:
        atomic_write_text(args.json, json_text(report, indent=2, default=str) + "\n")
    return 0


def _export(bundle, args) -> dict:
    from pathlib import Path

    result = export_onnx(bundle, opset=args.opset, simplify=not args.no_simplify)
    meta, model = result.pop("meta"), result.pop("model")
    # Each step's outcome is logged as it ends (an engine build takes minutes); the report
    # itself is --json.
    log.info("exported %s (opset %s, TorchScript exporter, %s) in %.1f s",
             result["onnx"], result["opset"], result["simplify"], result["seconds"])
    images, targets, sizes, source = parity_inputs(bundle, meta, Path(args.data) if args.data else None)
    task = meta.task
    parity = check_parity(model, Path(result["onnx"]), images, task, sizes)
    log.info("parity vs PyTorch on %s: OK, %s", source, describe_parity(parity))
    fp16 = fp16_estimate(Path(result["onnx"]), images, targets, task, sizes)
    log.info("FP16 estimate (ONNX Runtime): %s", describe_fp16(fp16))
    return dict(result, parity=parity, fp16=fp16)


def _engine(bundle, args) -> dict:
    from pathlib import Path

    onnx_path = Path(bundle) / "model.onnx"
    if not onnx_path.is_file():
        raise UserError(f"{bundle}: no model.onnx; run edge-app export --model {bundle} first")
    calibration = None
    if args.precision == "int8":
        calibration = calibration_batches(_calibration_images(bundle, args))
    device = device_info()

    def build(src: Path, dst: Path) -> None:
        build_engine(src, dst, args.precision, args.workspace,
                     timing_cache=Path(bundle), calibration=calibration)

    engine = ensure_engine(onnx_path, args.precision, device, build)
    log.info("engine: %s (%s, TensorRT %s, %s)", engine, args.precision, device.tensorrt, device.gpu)
    return {"path": str(engine), "precision": args.precision, "tensorrt": device.tensorrt,
            "gpu": device.gpu}


def _calibration_images(bundle, args):
    from pathlib import Path

    meta = read_bundle(bundle)
    images, _, _, _ = parity_inputs(bundle, meta, Path(args.calib_data) if args.calib_data else None)
    return images
