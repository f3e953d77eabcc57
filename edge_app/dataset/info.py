"""``edge-app data info``: what a dataset holds and what is wrong with it."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np

from edge_app.dataset.atomic import TMP_MARK
from edge_app.dataset.links import LINK_FIX, links_out
from edge_app.dataset.samples import LABELS_FILE, NATIVE_FORMAT, SUBJECTS_FILE, Dataset
from edge_app.dataset.subjects import LOW_RATE, low_rate_hint, rates_by_label, scan_subjects
from edge_app.image_files import list_images
from edge_app.names import printable
from edge_app.tasks.kinds import mirror_name


def summarize(ds: Dataset) -> Dict[str, Any]:
    """A JSON-ready summary of a verified dataset: counts, sizes, problems, notes."""
    sizes = Counter("{}x{}".format(*s.size) for s in ds.samples if s.size)
    problems = [str(p) for p in ds.problems] + _leftovers(ds) + _orphans(ds) + _subject_rows(ds) \
        + _links_out(ds)
    notes = list(ds.notes)
    if ds.kind == "keypoints":
        problems += _outside(ds)
        notes += _side_check(ds)
    return {
        "root": str(ds.root), "format": ds.format, "kind": ds.kind, "task": ds.task,
        "images": len(ds.samples), "labels": list(ds.labels), "counts": ds.counts(),
        "coords": ds.coords if ds.kind == "keypoints" else None,
        "splits": dict(Counter(s.split for s in ds.samples if s.split)),
        "sizes": dict(sizes.most_common()), "problems": problems, "notes": notes,
    }


def subject_summary(ds: Dataset, kind: str, provider: str = "auto", crops: bool = False,
                    progress: bool = False) -> Dict[str, Any]:
    """How often the hand or face is found, per class, and the images where it is not (often
    bad captures worth deleting)."""
    scan = scan_subjects(ds, kind, provider, crops, progress)
    out: Dict[str, Any] = {
        "kind": kind, "provider": provider, "rate": round(scan.rate, 4),
        "per_class": {k: {"found": f, "images": t} for k, (f, t) in rates_by_label(ds, scan).items()},
        "missed": [str(s.path) for s, sub in zip(ds.samples, scan.subjects) if sub is None]}
    if scan.rate < LOW_RATE:
        out["hint"] = low_rate_hint(kind, scan.rate)
    return out


def _leftovers(ds: Dataset) -> List[str]:
    """Temp files of an interrupted write (safe to delete)."""
    if not ds.root.is_dir():
        return []
    return [f"{printable(p)}: unfinished write left by a crash (safe to delete)"
            for p in leftover_paths(ds.root)]


def _links_out(ds: Dataset) -> List[str]:
    """Links to files or folders outside the dataset: the studio neither serves nor copies
    them (a link to /etc/passwd named like a picture would otherwise be shown)."""
    if not ds.root.is_dir():
        return []
    return [f"{printable(link)}: a link to {printable(target)}, outside the dataset ({LINK_FIX})"
            for link, target in links_out(ds.root)]


def _orphans(ds: Dataset) -> List[str]:
    """Images of a native keypoint dataset that have no label row (a crash between the two)."""
    if ds.format != NATIVE_FORMAT or ds.kind != "keypoints" or not (ds.root / "images").is_dir():
        return []

    labelled = {s.path.resolve() for s in ds.samples}
    return [f"{printable(p)}: image without a row in {LABELS_FILE}"
            for p in list_images(ds.root / "images") if p.resolve() not in labelled]


def _subject_rows(ds: Dataset) -> List[str]:
    """Where ``subjects.jsonl`` disagrees with the images: torn lines (a write cut short),
    rows of images that are gone, images without a row (a capture killed between the image and
    its row). Each costs a subject search when training, never a wrong box."""
    path = ds.root / SUBJECTS_FILE
    if ds.format != NATIVE_FORMAT or not path.is_file():
        return []
    rows, torn = read_subject_rows(path)
    out = []
    if torn:
        out.append("{}: line(s) {} are not whole JSON rows (a write cut short?)".format(
            path, ", ".join(str(n) for n in torn[:5]) + (" ..." if len(torn) > 5 else "")))
    stale = sorted(name for name in rows if not _is_image(ds.root, name))
    if stale:
        out.append(f"{path}: {len(stale)} row(s) name images that are not in the dataset, e.g. {printable(stale[0][:200])}")
    missing = [s.path for s in ds.samples if _relative(s.path, ds.root) not in rows]
    if missing:
        out.append(f"{path}: {len(missing)} image(s) have no row (a capture killed before its row was written, or "
                   f"no hand or face found then), e.g. {printable(missing[-1])}; their subjects are searched for when "
                   "training")
    return out


def read_subject_rows(path: Path) -> Tuple[Dict[str, Any], List[int]]:
    """``subjects.jsonl`` as {image: row} and the numbers of the lines that are not rows."""
    rows: Dict[str, Any] = {}
    torn: List[int] = []
    text = path.read_bytes().decode("utf-8", "replace")
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if isinstance(row, dict) and isinstance(row.get("image"), str):
            rows[row["image"]] = row
        else:
            torn.append(n)
    return rows, torn


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _is_image(root: Path, name: str) -> bool:
    try:
        return (root / name).is_file()
    except (OSError, ValueError):
        return False


def _outside(ds: Dataset) -> List[str]:
    out = []
    for s in ds.samples:
        if s.points is None or s.size is None:
            continue
        pts = s.normalized_points(ds.coords)
        bad = [ds.labels[i] for i, (x, y) in enumerate(pts)
               if not np.isnan(x) and not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0)]
        if bad:
            out.append("{}: point(s) {} outside the image".format(s.path, ", ".join(bad)))
    return out


def _side_check(ds: Dataset) -> List[str]:
    """Left/right must be the subject's own: the subject's left eye is on the image's right."""
    notes = []
    for i, name in enumerate(ds.labels):
        other = mirror_name(name)
        if not name.startswith("left") or other not in ds.labels:
            continue
        j = ds.labels.index(other)
        xs = np.array([(s.points[i, 0], s.points[j, 0]) for s in ds.samples
                       if s.points is not None and not np.isnan(s.points[[i, j], 0]).any()])
        if len(xs) >= 5:
            image_sided = float(np.mean(xs[:, 0] < xs[:, 1]))
            if image_sided > 0.8:
                notes.append(f"'{name}' is left of '{other}' in the image in {image_sided:.0%} of rows: the labels look "
                             "image-sided; re-import with --sides image")
    return notes


def format_summary(info: Dict[str, Any]) -> str:
    """The summary as text for the terminal."""
    lines = ["dataset   {}".format(info["root"]),
             "layout    {} ({}{})".format(info["format"], info["kind"],
                                          ", task " + info["task"] if info.get("task") else ""),
             "images    {}".format(info["images"])]
    if info["coords"]:
        lines.append("coords    {}".format(info["coords"]))
    if info["splits"]:
        lines.append("splits    " + ", ".join(f"{k} {v}" for k, v in sorted(info["splits"].items())))
    head = "point" if info["kind"] == "keypoints" else "class"
    width = max([len(head)] + [len(str(k)) for k in info["counts"]])
    lines.append("")
    lines.append("{:<{w}}  {}".format(head, "labelled" if head == "point" else "images", w=width))
    for name, count in info["counts"].items():
        lines.append("{:<{w}}  {:>6}{}".format(name, count, "   <- empty" if count == 0 else "", w=width))
    sizes = list(info["sizes"].items())
    lines.append("")
    lines.append("sizes     " + (", ".join(f"{k} ({v})" for k, v in sizes[:5])
                                 + (f", ... {len(sizes) - 5} more" if len(sizes) > 5 else "")
                                 if sizes else "none"))
    for note in info["notes"]:
        lines.append("note      " + note)
    lines += _subject_lines(info.get("subject"))
    problems = info["problems"]
    lines.append("problems  {}".format(len(problems) if problems else "none"))
    for problem in problems[:20]:
        lines.append("  - " + problem)
    if len(problems) > 20:
        lines.append(f"  ... and {len(problems) - 20} more (use --json for all)")
    return "\n".join(lines)


def _subject_lines(subject: Any) -> List[str]:
    if not subject:
        return []
    lines = ["", "subject   {} found in {:.0%} of the images ({})".format(
        subject["kind"], subject["rate"], ", ".join(
            "{} {}/{}".format(k, v["found"], v["images"]) for k, v in subject["per_class"].items()))]
    if subject.get("hint"):
        lines.append("warning   " + subject["hint"])
    missed = subject["missed"]
    if missed:
        lines.append("no {} in {} image(s) (bad captures are worth deleting):".format(
            subject["kind"], len(missed)))
        lines += ["  - " + m for m in missed[:20]]
        if len(missed) > 20:
            lines.append(f"  ... and {len(missed) - 20} more (use --json for all)")
    return lines


def leftover_paths(root: Path) -> List[Path]:
    """Paths of interrupted temp files under ``root``."""
    return sorted(root.rglob(".*" + TMP_MARK + "*"))
