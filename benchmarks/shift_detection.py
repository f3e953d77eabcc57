"""Does the subject stage find the hand when the camera is odd? Detection rate per camera shift.

    python benchmarks/shift_detection.py [--sets fingers,thumbs] [--shifts all]
                                         [--cache-dir DIR] [--json out.json]
                                         [--without-denoise]

Sets (../shared/data, see its README):
  fingers   fingers_signdigits classes 1-5 (~200 people, 100x100 close-ups)
  thumbs    thumbs, all three people (thumbs_up / thumbs_down)

Each set is rendered through every camera shift of train/shifts.py (fixed parameters, cached
under <cache-dir>/shifted) and searched by the same subject stage training and eval use (the
hard search for labelled stills). Printed per shift: hands found, and the accuracy of the
no-training rule of edge_app/subject/suggest.py (finger count, thumb direction) with misses
and undecided images counted as errors. Subjects are cached under <cache-dir>/subjects, so a
second run is quick; a fresh --cache-dir measures from scratch. Not a test.

--shifts takes composites too: `dark+noise,purple+dark+noise+rot90` is one camera with several
faults, applied left to right. --without-denoise searches without the hard search's denoised
and smoothed looks (edge-app before they were added), with its own subject cache, for a
before/after.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
FINGERS = ["1", "2", "3", "4", "5"]
THUMBS = ["thumbs_up", "thumbs_down"]


def default_cache() -> Path:
    return Path(os.environ.get("EDGE_APP_CACHE", "~/.cache/edge-app")).expanduser()


def link_tree(samples: List[Tuple[Path, str]], out: Path) -> Path:
    """A class-folder tree of symlinks to ``samples`` (path, label) at ``out``, made once."""
    for i, (path, label) in enumerate(samples):
        (out / label).mkdir(parents=True, exist_ok=True)
        link = out / label / f"{i:05d}_{path.name}"
        if not link.is_symlink():
            link.symlink_to(path)
    return out


def tree_key(samples: List[Tuple[Path, str]]) -> str:
    """A stable name for the set of files ``samples`` holds (wherever its links live)."""
    text = "\n".join(f"{p.resolve()}|{l}" for p, l in samples)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def class_samples(root: Path, classes: List[str]) -> List[Tuple[Path, str]]:
    from edge_app.sources.folder import list_images

    return [(p, c) for c in classes for p in list_images(root / c, recursive=False)]


def source_sets(names: List[str], cache: Path, data: Path) -> Dict[str, Tuple[Path, str]]:
    """name -> (a stable class-folder tree of the set's originals, its task)."""
    out: Dict[str, Tuple[Path, str]] = {}
    for name in names:
        if name == "fingers":
            samples = class_samples(data / "fingers_signdigits", FINGERS)
            task = "fingers"
        elif name == "thumbs":
            people = sorted(p for p in (data / "thumbs").iterdir() if p.is_dir())
            samples = [s for person in people for s in class_samples(person, THUMBS)]
            task = "thumbs"
        else:
            raise SystemExit(f"unknown set {name} (fingers, thumbs)")
        root = cache / "shifted" / f"{name}-{tree_key(samples)}" / "none"
        out[name] = (link_tree(samples, root), task)
    return out


def scan(root: Path, kind: str, cache: Path, crops: bool = False,
         subjects: str = "subjects") -> Tuple[Any, Any]:
    """(dataset, subject scan) of a class-folder tree, through the training subject stage."""
    from edge_app.dataset.formats import read_dataset
    from edge_app.dataset.subjects import scan_subjects

    ds = read_dataset(root).verify()
    return ds, scan_subjects(ds, kind, "auto", crops, cache_dir=cache / subjects)


def boxes_of(ds: Any, subjects: List[Any]) -> Dict[str, Tuple[float, float, float, float]]:
    """Subject boxes in 0..1 of the frame, by path relative to the dataset root (backlight
    keeps them as they are)."""
    out = {}
    for s, sub in zip(ds.samples, subjects):
        if sub is not None:
            w, h = s.size
            x0, y0, x1, y1 = sub.box
            out[s.path.relative_to(ds.root).as_posix()] = (x0 / w, y0 / h, x1 / w, y1 / h)
    return out


def render_shifts(src: Path, names: List[str], boxes: Optional[Dict[str, Any]], out: Path) -> Dict[str, Path]:
    """``src`` rendered through each shift into ``out/<shift>`` (cached; see train.shifts);
    declared rotations are written upright where the reader does not honour ``rotate:`` yet."""
    from edge_app.train.shifts import render_dataset, rotation_honoured

    honour = rotation_honoured()
    return {n: render_dataset(src, out / n, n, boxes, honour_rotate=honour) for n in names}


def label_rule(task: Any) -> Optional[Callable[[Any], Optional[str]]]:
    """The suggestion rule that fits ``task`` (edge_app/subject/suggest.py), or None."""
    from edge_app.subject.suggest import LABEL_RULES

    return next((r for r in (f(task) for f in LABEL_RULES) if r is not None), None)


def rule_scores(ds: Any, subjects: List[Any], task: Any) -> Dict[str, Any]:
    """Detection rate and the rule's accuracy (misses and undecided images are errors)."""
    rule = label_rule(task)
    n = len(ds.samples)
    found = sum(s is not None for s in subjects)
    right = 0
    if rule is not None:
        right = sum(1 for s, sub in zip(ds.samples, subjects)
                    if sub is not None and rule(sub) == s.label)
    return {"n": n, "found": found, "detection_rate": found / max(1, n),
            "rule_accuracy": right / max(1, n) if rule is not None else None}


def main(argv: Optional[List[str]] = None) -> int:
    from edge_app.tasks.spec import load_task
    from edge_app.train.shifts import shift_names

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n", 2)[2])
    parser.add_argument("--sets", default="fingers,thumbs")
    parser.add_argument("--shifts", default="all", help="comma list, all (default) or none")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="renders and subjects (default ~/.cache/edge-app)")
    parser.add_argument("--data-root", type=Path, default=DATA)
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--without-denoise", action="store_true",
                        help="the hard search without its denoised and smoothed looks (for a before/after)")
    args = parser.parse_args(argv)
    subjects = "subjects"
    if args.without_denoise:
        import edge_app.subject.base as base

        base.DENOISE_STRENGTHS = ()
        base.SMOOTH_SIGMA = 0.0
        subjects = "subjects-without-denoise"
    if not args.data_root.is_dir():
        raise SystemExit("needs the real photos: ../shared/data beside the project, or --data-root")
    cache = (args.cache_dir or default_cache()).expanduser().resolve()
    names = shift_names(args.shifts)
    results: List[Dict[str, Any]] = []
    print("{:<8} {:<26} {:>13} {:>9} {:>8}  {:>6}".format("set", "shift", "found", "rate",
                                                         "rule", "secs"))
    for set_name, (src, task_name) in source_sets(args.sets.split(","), cache, args.data_root).items():
        task = load_task(task_name)
        for shift in ["none"] + names:
            start = time.monotonic()
            if shift == "none":
                ds, sc = scan(src, "hand", cache, subjects=subjects)
                shifted = render_shifts(src, names, boxes_of(ds, sc.subjects), src.parent)
            else:
                ds, sc = scan(shifted[shift], "hand", cache, subjects=subjects)
            r = dict(rule_scores(ds, sc.subjects, task), set=set_name, shift=shift,
                     seconds=round(time.monotonic() - start, 1), detected=sc.detected)
            results.append(r)
            print("{:<8} {:<26} {:>6}/{:<6} {:>8.1%} {:>8}  {:>6.1f}".format(
                set_name, shift, r["found"], r["n"], r["detection_rate"],
                "n/a" if r["rule_accuracy"] is None else "{:.1%}".format(r["rule_accuracy"]),
                r["seconds"]), flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
