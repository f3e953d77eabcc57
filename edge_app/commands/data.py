"""``edge-app data``: summarise datasets and import the layouts users already have."""
from __future__ import annotations

import argparse
import logging
import sys

from edge_app.commands.common import add_task, check_out_file, check_out_folder
from edge_app.dataset.atomic import atomic_write_text, json_text
from edge_app.dataset.formats import FORMAT_CHOICES, ReadOptions, read_dataset
from edge_app.dataset.importer import import_dataset
from edge_app.dataset.info import format_summary, subject_summary, summarize
from edge_app.dataset.match import match_task
from edge_app.subject import provider_names
from edge_app.tasks.spec import load_task

log = logging.getLogger(__name__)

FORMAT_HELP = ("dataset layout (default: auto-detect): edge-app (this tool's), course (the "
               "course notebooks' folders), jetson-inference (camera-capture's labels.txt + "
               "train/val/test), folders (a folder per class), csv (keypoints CSV)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="summarise or import datasets",
                       description="Summarise a dataset, or import one from another layout.")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    data_sub.required = True

    info = data_sub.add_parser("info", help="counts, image sizes and problems of a dataset",
                               description="Check every image of a dataset and summarise it: "
                               "counts per class or point, image sizes, and problems (corrupt "
                               "images, unknown classes, leftovers of interrupted writes).")
    info.add_argument("dir", metavar="DIR", help="dataset folder (or a keypoints CSV)")
    add_task(info, required=False)
    _add_read_options(info)
    info.add_argument("--json", metavar="FILE", help="also write the summary as JSON ('-' for stdout)")
    info.add_argument("--subject", choices=("hand", "face", "none"),
                      help="also find the hand or face in every image and report the detection "
                      "rate per class and the images without one (default: the --task's subject)")
    info.add_argument("--subject-provider", default="auto",
                      choices=provider_names(),
                      help="who finds it (default auto: stored subjects, else MediaPipe)")
    info.add_argument("--crops", action="store_true", help="the images are already crops of the subject")
    info.set_defaults(func=run_info)

    imp = data_sub.add_parser("import", help="copy a dataset into this tool's layout",
                              description="Copy every readable image of SRC (any supported "
                              "layout) into a new dataset folder in this tool's layout. SRC is "
                              "never changed; unreadable images are reported and skipped.")
    imp.add_argument("src", metavar="SRC", help="dataset folder (or a keypoints CSV)")
    imp.add_argument("--out", required=True, metavar="DIR", help="new dataset folder")
    add_task(imp, required=False)
    _add_read_options(imp)
    imp.set_defaults(func=run_import)


def _add_read_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", default="auto", choices=FORMAT_CHOICES, help=FORMAT_HELP)
    p.add_argument("--sides", default="subject", choices=("subject", "image"),
                   help="what left/right in the source's point names mean: the subject's own side "
                   "(default) or the image's (then they are swapped on reading)")
    p.add_argument("--coords", choices=("pixels", "normalized"),
                   help="units of a CSV's coordinates (default: pixels, or what dataset.yaml says)")


def _read(args: argparse.Namespace):
    ds = read_dataset(args.dir, args.format, ReadOptions(sides=args.sides, coords=args.coords))
    ds.verify(progress=sys.stderr.isatty())
    if args.task:
        ds = match_task(ds, load_task(args.task), purpose="eval")
    return ds


def run_info(args: argparse.Namespace) -> int:
    check_out_file("--json", args.json)   # before every image is checked, not after
    ds = _read(args)
    info = summarize(ds)
    subject = args.subject or (load_task(args.task).subject if args.task else "none")
    if subject != "none" and ds.samples:
        info["subject"] = subject_summary(ds, subject, args.subject_provider, args.crops,
                                          progress=sys.stderr.isatty())
    print(format_summary(info))
    if args.json:
        text = json_text(info, indent=2)
        if args.json == "-":
            print(text)
        else:
            atomic_write_text(args.json, text + "\n")
    return 0


def run_import(args: argparse.Namespace) -> int:
    check_out_folder("--out", args.out)
    result = import_dataset(args.src, args.out, args.format,
                            load_task(args.task) if args.task else None,
                            ReadOptions(sides=args.sides, coords=args.coords),
                            progress=sys.stderr.isatty())
    print(f"imported {result.images} image(s) from {args.src} ({result.format} layout) into {result.out} (task '{result.task}')")
    print("counts: " + ", ".join(f"{k} {v}" for k, v in result.counts.items()))
    for note in result.notes:
        log.info("note: %s", note)
    problems = result.problems
    if problems:
        print(f"skipped {len(problems)} problem file(s):")
        for problem in problems[:20]:
            print("  - " + problem)
    return 0
