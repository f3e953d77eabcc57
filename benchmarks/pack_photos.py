"""Copy real photos with their subjects, for a machine without MediaPipe (a GPU box).

    python benchmarks/pack_photos.py OUT [--data ../shared/data] [--sets thumbs,fingers_set1,fingers_signdigits]

Each class-folder dataset is copied with a ``subjects.jsonl`` beside it (every image's hand
box and landmarks, or ``"found": false``), found here once with the subject stage (cached), so
``benchmarks/learning.py --data-root OUT`` trains crops and landmark models there with no
detector installed. fingers_signdigits is copied with classes 1-5 only (what the splits use).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _roots(data: Path, name: str) -> List[Path]:
    """The dataset roots (folders whose subfolders are classes) inside a shared set."""
    if name == "thumbs":   # one dataset per person
        return sorted(p for p in (data / name).iterdir() if p.is_dir())
    return [data / name]


def pack(data: Path, out: Path, sets: List[str]) -> None:
    from edge_app.dataset.formats import read_dataset
    from edge_app.dataset.subjects import scan_subjects, stored_rows

    for name in sets:
        for root in _roots(data, name):
            dest = out / root.relative_to(data)
            skip = (lambda d, names: [n for n in names if n == "0"]) if name == "fingers_signdigits" else None
            shutil.copytree(root, dest, dirs_exist_ok=True, ignore=skip)
            ds = read_dataset(root).verify()
            rows = [r for r in stored_rows(ds, scan_subjects(ds, "hand", "auto", False, progress=True))
                    if (dest / r["image"]).exists()]
            (dest / "subjects.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            print("{}: {} images, {} without a hand".format(
                dest, len(rows), sum(1 for r in rows if r.get("found") is False)))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--sets", default="thumbs,fingers_set1,fingers_signdigits")
    args = parser.parse_args(argv)
    pack(args.data, args.out, args.sets.split(","))
    return 0


if __name__ == "__main__":
    sys.exit(main())
