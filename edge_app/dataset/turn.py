"""Declaring a dataset's camera turn after the fact: ``rotate:`` in ``dataset.yaml`` changes
how every reader sees the images, so the labels placed before are turned with it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Sequence

from edge_app.camera.rotation import parse_rotation, rotate_normalized, rotate_pixels, turn_subject
from edge_app.dataset.atomic import atomic_write_text, json_text
from edge_app.dataset.meta import read_meta, write_meta
from edge_app.dataset.samples import LABELS_FILE, META_FILE, SUBJECTS_FILE
from edge_app.dataset.verify import read_image
from edge_app.errors import DatasetError


def set_rotation(root: Path, rotation: int) -> int:
    """Declare in ``root``'s ``dataset.yaml`` that its images need turning clockwise by
    ``rotation`` to be upright (0 removes the key). Labels placed before stay on their spot
    of the picture: keypoints in the labels file and rows of ``subjects.jsonl`` are turned by
    the change, since readers take them in the coordinates of the picture as read. Labels are
    written first, ``dataset.yaml`` last. Returns how many rows were turned."""
    import json

    root = Path(root)
    rotation = parse_rotation(rotation, str(root / META_FILE), DatasetError)
    meta = read_meta(root)
    journal = root / PENDING
    old = int(meta.get("rotate", 0))
    # A change cut off between its steps left a journal: finish it (the steps it did are not
    # done again, so no label is turned twice); another turn waits until it is finished.
    state: Dict[str, Any] = (json.loads(journal.read_text()) if journal.is_file()
                             else {"to": rotation, "done": []})
    if int(state["to"]) != rotation:
        raise DatasetError("{}: a change to rotate: {} was cut off; finish it first (set the "
                           "rotation to {} again), then change it".format(root, state["to"], state["to"]))
    delta = (rotation - old) % 360
    turned = 0
    steps = (("labels", lambda: _turn_points(root, meta, delta)),
             ("subjects", lambda: _turn_subjects(root, delta)))
    for name, step in steps if delta else ():
        if name in state["done"]:
            continue
        atomic_write_text(journal, json_text(state))
        turned += step()
        state["done"].append(name)
        atomic_write_text(journal, json_text(state))
    if rotation:
        meta["rotate"] = rotation
    else:
        meta.pop("rotate", None)
    write_meta(root, meta)
    if journal.is_file():
        journal.unlink()
    return turned


PENDING = ".rotate-pending.json"   # the journal of a set_rotation in progress


def _turn_points(root: Path, meta: Dict[str, Any], delta: int) -> int:
    """Turn the keypoints of the labels file by ``delta`` (normalised or pixel coordinates)."""
    import csv
    import io

    path = root / str(meta.get("labels_file") or LABELS_FILE)
    if "points" not in meta or not path.is_file():
        return 0
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    if not rows:
        return 0
    header, turned = rows[0], 0
    pairs = [(i, header.index(n[:-2] + "_y")) for i, n in enumerate(header)
             if n.endswith("_x") and n[:-2] + "_y" in header]
    pixels = meta.get("coords") == "pixels"
    for row in rows[1:]:
        if not row or not row[0]:
            continue
        size = _size_as_read(root, row[0], int(meta.get("rotate", 0))) if pixels else None
        for ix, iy in pairs:
            if ix >= len(row) or iy >= len(row) or not row[ix].strip() or not row[iy].strip():
                continue   # a point not placed stays so
            xy = [float(row[ix]), float(row[iy])]
            x, y = (rotate_pixels([xy], size, delta) if size else rotate_normalized([xy], delta))[0]
            row[ix], row[iy] = f"{x:.6g}", f"{y:.6g}"
        turned += 1
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    atomic_write_text(path, out.getvalue())
    return turned


def _size_as_read(root: Path, image: str, rotate: int) -> Sequence[int]:
    """(width, height) of a dataset image as readers see it, turned by the old ``rotate``."""
    pixels, problem = read_image(root / image, rotate=rotate)
    if pixels is None:
        raise DatasetError(f"{root / image}: {problem}; its pixel keypoints cannot be turned")
    return (int(pixels.shape[1]), int(pixels.shape[0]))


def _turn_subjects(root: Path, delta: int) -> int:
    """Turn the boxes and landmarks of ``subjects.jsonl`` (0..1 of the picture) by ``delta``."""
    import json

    path = root / SUBJECTS_FILE
    if not path.is_file():
        return 0
    lines, turned = [], 0
    for line in path.read_bytes().decode("utf-8", "replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue   # a torn line after a crash: its image is searched again anyway
        if isinstance(row, dict) and isinstance(row.get("box"), list):
            row = turn_subject(row, delta)
            turned += 1
        lines.append(json_text(row))
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return turned
