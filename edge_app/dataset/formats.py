"""Readers for the dataset layouts users already have, detected automatically.

- ``edge-app``: this project's own (``dataset.yaml`` + class folders, or ``labels.csv``)
- ``jetson-inference``: camera-capture's ``labels.txt`` + ``train/ val/ test/<class>/``
- ``csv``: a keypoints CSV (``image,<point>_x,<point>_y,...``), image paths relative to it
- ``course``: the course notebooks' folders: ``<class>/*.jpg``, or for regression
  ``<point>/<x>_<y>_<uuid>.jpg`` (one point per image, pixels of the saved image)
- ``folders``: a plain folder-per-class tree (torchvision ImageFolder)
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from edge_app.dataset.links import Inside
from edge_app.dataset.meta import read_meta
from edge_app.dataset.samples import (
    LABELS_FILE,
    META_FILE,
    NATIVE_FORMAT,
    SPLITS_FILE,
    Dataset,
    Problem,
    Sample,
    bad_name_problem,
)
from edge_app.errors import DatasetError, did_you_mean
from edge_app.image_files import IMAGE_EXTENSIONS, list_images
from edge_app.names import printable, utf8_name
from edge_app.registry import Registry
from edge_app.tasks.kinds import mirror_name

XY_NAME = re.compile(r"^(-?\d+)_(-?\d+)_.+")
SPLIT_DIRS = ("train", "val", "test")


@dataclass(frozen=True)
class ReadOptions:
    """How to read: ``sides='image'`` means the source's left/right names are the image's."""

    sides: str = "subject"
    coords: Optional[str] = None   # override for CSVs: "pixels" or "normalized"


# -- helpers ------------------------------------------------------------------------------
def _subdirs(root: Path) -> List[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _direct_images(folder: Path) -> List[Path]:
    return list_images(folder, recursive=False)


def _named(paths: List[Path], problems: List[Problem]) -> List[Path]:
    """``paths`` whose names are UTF-8; the others are reported in ``problems`` and skipped."""
    problems.extend(bad_name_problem(p) for p in paths if not utf8_name(p))
    return [p for p in paths if utf8_name(p)]


def _root_files_note(root: Path) -> List[str]:
    files = sorted(printable(p.name) for p in root.iterdir() if p.is_file()
                   and not p.name.startswith(".") and p.name not in (
                       META_FILE, LABELS_FILE, SPLITS_FILE, "labels.txt", "subjects.jsonl"))
    return ["ignored {} file(s) at the top of the tree: {}".format(len(files), ", ".join(files[:5]))
            ] if files else []


@dataclass
class _Tree:
    """What a folder-per-class tree holds."""

    classes: List[str]
    samples: List[Sample]
    notes: List[str]
    problems: List[Problem]


def _class_tree(root: Path, split: Optional[str] = None) -> _Tree:
    """Read ``root/<class>/<image>``; names that are not UTF-8 are problems, skipped."""
    tree = _Tree([], [], [], [])
    for folder in _named(_subdirs(root), tree.problems):
        images = _named(_direct_images(folder), tree.problems)
        nested = [p for p in _subdirs(folder) if _direct_images(p)]
        if not images and nested:
            raise DatasetError(
                "{}: '{}' holds folders of images ({}), not images: point at a folder whose "
                "sub-folders are the classes, e.g. {}".format(
                    printable(root), folder.name, ", ".join(printable(p.name) for p in nested[:4]),
                    printable(folder)))
        tree.classes.append(folder.name)
        tree.samples.extend(Sample(p, label=folder.name, split=split) for p in images)
        others = [p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() not in IMAGE_EXTENSIONS]
        if others:
            tree.notes.append(f"{folder.name}: ignored {len(others)} non-image file(s), e.g. {printable(others[0])}")
    return tree


def _read_text(path: Path, encoding: str) -> str:
    """A text file of the dataset; one line naming it when it cannot be read or is not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{printable(path)}: cannot read ({exc.strerror or exc})")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{printable(path)}: not UTF-8 text (byte {hex(data[exc.start])} at offset {exc.start}); save it as UTF-8")


def _is_file(path: Path) -> bool:
    """``path.is_file()`` that is False for names no file can have (too long, a NUL byte)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _swap_sides(names: Sequence[str], opts: ReadOptions) -> Tuple[str, ...]:
    return tuple(mirror_name(n) for n in names) if opts.sides == "image" else tuple(names)


def _read_splits(root: Path, samples: List[Sample]) -> None:
    path = root / SPLITS_FILE
    if not path.is_file():
        return
    try:
        rows = list(csv.DictReader(io.StringIO(_read_text(path, "utf-8"), newline="")))
    except csv.Error as exc:
        raise DatasetError(f"{path}: not a readable CSV ({exc})")
    split_of = {}
    for row in rows:
        if not row.get("image") or not isinstance(row.get("split"), str):
            continue
        split_of[row["image"]] = row["split"].strip() or None
    for s in samples:
        s.split = split_of.get(s.path.relative_to(root).as_posix(), s.split)


# -- readers ------------------------------------------------------------------------------
def read_folders(root: Path, opts: ReadOptions, fmt: str = "folders") -> Dataset:
    """A folder-per-class tree (also the course's classification layout)."""
    tree = _class_tree(root)
    if not tree.classes:
        raise DatasetError(f"{root}: no class folders found; expected {root}/<class>/<image>.jpg")
    return Dataset(root, fmt, "classification", tuple(tree.classes), tree.samples,
                   problems=tree.problems, notes=_root_files_note(root) + tree.notes)


def read_jetson_inference(root: Path, opts: ReadOptions) -> Dataset:
    """jetson-inference camera-capture: labels.txt and train/val/test class folders."""
    lines = _read_text(root / "labels.txt", "utf-8").splitlines()
    classes = [c.strip() for c in lines if c.strip()]
    samples: List[Sample] = []
    notes: List[str] = []
    problems: List[Problem] = []
    for split in SPLIT_DIRS:
        if not (root / split).is_dir():
            continue
        tree = _class_tree(root / split, split)
        notes += [f"{split}/{n}" for n in tree.notes]
        problems += tree.problems
        for name in tree.classes:
            if name not in classes:
                problems.append(Problem(str(root / split / name),
                                        "class folder not listed in labels.txt; skipped"))
        samples += [s for s in tree.samples if s.label in classes]
    return Dataset(root, "jetson-inference", "classification", tuple(classes), samples,
                   problems=problems, notes=notes)


def read_csv(root: Path, opts: ReadOptions, fmt: str = "csv") -> Dataset:
    """A keypoints CSV; coordinates are pixels unless the metadata (or ``opts``) says otherwise."""
    path = root if root.is_file() else _find_csv(root)
    base = path.parent
    try:
        rows = list(csv.reader(io.StringIO(_read_text(path, "utf-8-sig"), newline="")))
    except csv.Error as exc:
        raise DatasetError(f"{path}: not a readable CSV ({exc})")
    if not rows:
        raise DatasetError(f"{path}: empty CSV; expected a header like image,nose_x,nose_y")
    header = [h.strip() for h in rows[0]]
    image_col = next((i for i, h in enumerate(header)
                      if h.lower() in ("image", "file", "filename", "path")), 0)
    points = list(dict.fromkeys(h[:-2] for h in header if h.endswith("_x") and h[:-2] + "_y" in header))
    if not points:
        raise DatasetError(f"{path}: no point columns; expected <point>_x,<point>_y pairs in the header"
                           )
    cols = [(header.index(p + "_x"), header.index(p + "_y")) for p in points]
    samples: List[Sample] = []
    problems: List[Problem] = []
    inside = Inside(base)   # no file from outside the CSV's folder (absolute, '..', a link out)
    for n, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            values = [[_cell(row, cx), _cell(row, cy)] for cx, cy in cols]
        except ValueError as exc:
            problems.append(Problem(f"{path}:{n}", f"bad number: {exc}; row skipped"))
            continue
        name = row[image_col].strip() if len(row) > image_col else ""
        image = base / name
        if not name or not _is_file(image):
            problems.append(Problem(f"{path}:{n}", f"image '{name[:200]}' not found; row skipped"
                                    ))
            continue
        if Path(name).is_absolute() or inside(image) is None:
            problems.append(Problem(f"{path}:{n}", f"image '{name[:200]}' is outside the dataset (an absolute "
                                    f"path, a '..' or a link out): copy the file in and name it relative to "
                                    f"the CSV's folder; row skipped"))
            continue
        samples.append(Sample(image, points=np.array(values, dtype=np.float64)))
    ds = Dataset(base, fmt, "keypoints", _swap_sides(points, opts), samples,
                 coords=opts.coords or "pixels", problems=problems)
    if ds.coords == "pixels" and samples and all(
            np.nanmax(np.abs(s.points)) <= 1.0 for s in samples if s.points is not None
            and not np.isnan(s.points).all()):
        ds.notes.append("every coordinate is <= 1: they look normalised; say so with "
                        "--coords normalized (or 'coords: normalized' in dataset.yaml)")
    if opts.sides == "image":
        ds.notes.append("left/right point names swapped to the subject's side (--sides image)")
    return ds


def _cell(row: List[str], i: int) -> float:
    text = row[i].strip() if i < len(row) else ""
    return float(text) if text else float("nan")


def _find_csv(root: Path) -> Path:
    for name in (LABELS_FILE, "keypoints.csv"):
        if (root / name).is_file():
            return root / name
    found = sorted(root.glob("*.csv"))
    if len(found) != 1:
        raise DatasetError("{}: expected one keypoints CSV, found {}".format(
            printable(root), ", ".join(printable(p.name) for p in found) or "none"))
    return found[0]


def read_course(root: Path, opts: ReadOptions) -> Dataset:
    """The course notebooks: class folders, or ``<point>/<x>_<y>_<uuid>.jpg`` for regression."""
    problems: List[Problem] = []
    dirs = _named(_subdirs(root), problems)
    if not any(XY_NAME.match(p.name) for d in dirs for p in _direct_images(d)):
        return read_folders(root, opts, fmt="course")
    points = [d.name for d in dirs]
    samples = []
    for i, folder in enumerate(dirs):
        for image in _named(_direct_images(folder), problems):
            match = XY_NAME.match(image.name)
            if not match:
                problems.append(Problem(str(image), "name is not <x>_<y>_<id>.jpg; skipped"))
                continue
            pts = np.full((len(points), 2), np.nan)
            pts[i] = float(match.group(1)), float(match.group(2))
            samples.append(Sample(image, points=pts))
    notes = ["course regression layout: one labelled point per image, the others missing"]
    if opts.sides == "image":
        notes.append("left/right point names swapped to the subject's side (--sides image)")
    return Dataset(root, "course", "keypoints", _swap_sides(points, opts), samples,
                   coords="pixels", problems=problems, notes=notes + _root_files_note(root))


def read_native(root: Path, opts: ReadOptions) -> Dataset:
    """This project's own layout, described by ``dataset.yaml``. A dataset whose labels file or
    class folders are not there yet (a first capture interrupted right after ``dataset.yaml``
    was written) reads as empty."""
    meta = read_meta(root)
    coords = meta.get("coords", "normalized")
    if meta["kind"] == "keypoints":
        labels_file = meta.get("labels_file", LABELS_FILE)
        if _is_file(root / labels_file):
            ds = read_csv(root / labels_file, ReadOptions(coords=coords), fmt=NATIVE_FORMAT)
        else:
            ds = Dataset(root, NATIVE_FORMAT, "keypoints", tuple(meta.get("points", [])),
                         coords=coords, notes=[f"no {labels_file} yet: no labelled images"])
    else:
        listed = meta.get("classes", [])
        if any(_subdirs(root)):
            ds = read_folders(root, opts, fmt=NATIVE_FORMAT)
        else:
            ds = Dataset(root, NATIVE_FORMAT, "classification", (), notes=["no class folders yet"])
        ds.labels = tuple(listed + [c for c in ds.labels if c not in listed])
    ds.task = None if meta.get("task") is None else str(meta["task"])
    if meta.get("rotate"):
        # Honoured by edge_app.dataset.verify.read_image, which every reader goes through.
        ds.notes.append("images are turned clockwise by {} degrees on reading (rotate: {} in {}); "
                        "labels are in the upright picture's coordinates".format(
                            meta["rotate"], meta["rotate"], META_FILE))
    _read_splits(root, ds.samples)
    return ds


# -- detection ----------------------------------------------------------------------------
def _is_native(root: Path) -> bool:
    return (root / META_FILE).is_file()


def _is_jetson_inference(root: Path) -> bool:
    return (root / "labels.txt").is_file() and any((root / s).is_dir() for s in SPLIT_DIRS)


def _has_point_header(path: Path) -> bool:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            header = [h.strip() for h in next(csv.reader(fh), [])]
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return any(h.endswith("_x") and h[:-2] + "_y" in header for h in header)


def _is_csv(root: Path) -> bool:
    if root.is_file():
        return root.suffix.lower() == ".csv"
    return any(_has_point_header(p) for p in root.glob("*.csv"))


def _is_course(root: Path) -> bool:
    return any(XY_NAME.match(p.name) for d in _subdirs(root) for p in _direct_images(d)[:20])


Reader = Callable[[Path, ReadOptions], Dataset]
# name -> (detector, reader), in the order auto-detection tries them.
FORMATS: Registry[Tuple[Callable[[Path], bool], Reader]] = Registry("--format", {
    NATIVE_FORMAT: (_is_native, read_native),
    "jetson-inference": (_is_jetson_inference, read_jetson_inference),
    "csv": (_is_csv, read_csv),
    "course": (_is_course, read_course),
    "folders": (lambda root: True, read_folders),
}.items())
FORMAT_CHOICES = ("auto",) + tuple(FORMATS)


def detect_format(root: Path) -> str:
    """The layout of ``root`` (a folder, or a CSV file)."""
    for name, (detect, _) in FORMATS.items():
        if detect(root):
            return name
    return "folders"


def read_dataset(root, fmt: str = "auto", opts: Optional[ReadOptions] = None) -> Dataset:
    """Read the dataset at ``root`` in layout ``fmt`` (``auto`` detects it)."""
    root = Path(root).expanduser()
    try:
        return _read(root, fmt, opts or ReadOptions())
    except OSError as exc:   # a folder that cannot be listed, a file that vanished meanwhile
        where = printable(exc.filename) if exc.filename else printable(root)
        raise DatasetError(f"{where}: cannot read ({exc.strerror or exc})")


def _read(root: Path, fmt: str, opts: ReadOptions) -> Dataset:
    if not root.exists():
        raise DatasetError(f"{printable(root)}: no such folder")
    if root.is_dir() and not any(root.iterdir()):
        raise DatasetError(f"{printable(root)}: the folder is empty")
    if fmt not in FORMAT_CHOICES:
        raise DatasetError("unknown dataset format '{}'{}; formats: {}".format(
            fmt, did_you_mean(fmt, FORMAT_CHOICES), ", ".join(FORMAT_CHOICES)))
    name = detect_format(root) if fmt == "auto" else fmt
    if root.is_file() and name != "csv":
        raise DatasetError(f"{printable(root)}: a dataset is a folder (or a keypoints CSV file)")
    return FORMATS[name][1](root, opts)
