"""Subjects for every image of a dataset: stored beside the images by the capture tool
(``subjects.jsonl``: one row per image, the subject's box and landmarks, or ``"found": false``
where a search found none), else found by a provider on first use and cached outside the
dataset (which may be read-only), keyed by each file's size and modification time."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from edge_app.dataset.atomic import atomic_write_text, json_text
from edge_app.dataset.samples import SUBJECTS_FILE, Dataset, Sample
from edge_app.dataset.verify import declared_rotation, read_image
from edge_app.subject.base import NOISY_SIGMA, Subject, noise_level
from edge_app.subject.providers import find_subject, make_finder

# v2: labelled images get the hard search; v3: the hard search also corrects colour and
# exposure and looks closer at small images (issue 21); v4: it also removes sensor noise; v5: a
# noisy still is searched cleaned three ways, each point the median (they scatter less). Found
# subjects of older versions stay (a better search mostly finds more), except on noisy stills,
# whose points v5 finds better: those and the older misses are searched again, once. (Boxes a
# dataset stores in its own subjects.jsonl are the dataset's and stay.)
CACHE_VERSION = "subjects-v5"
OLDER_VERSIONS = ("subjects-v4", "subjects-v3", "subjects-v2")
LOW_RATE = 0.6   # below this share of images with a subject, crops are not worth learning from


def default_cache_dir() -> Path:
    return Path(os.environ.get("EDGE_APP_CACHE", "~/.cache/edge-app")).expanduser() / "subjects"


@dataclass
class SubjectScan:
    """One subject (or None) per sample, and how they were obtained."""

    subjects: List[Optional[Subject]]
    stored: int = 0
    cached: int = 0
    detected: int = 0
    notes: List[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return sum(s is not None for s in self.subjects) / len(self.subjects) if self.subjects else 0.0


def _stored(root: Path) -> Dict[str, Dict[str, Any]]:
    path = root / SUBJECTS_FILE
    out: Dict[str, Dict[str, Any]] = {}
    if not path.is_file():
        return out
    # Bytes cut mid-character by a crash spoil one line, not the file.
    for line in path.read_bytes().decode("utf-8", "replace").splitlines():
        try:
            row = json.loads(line)
            out[str(row["image"])] = row
        except (ValueError, KeyError, TypeError):
            continue   # a torn last line after a crash: that image is detected instead
    return out


def _signature(path: Path) -> str:
    """What a cached subject depends on: the file, and the turn its dataset declares (a
    ``rotate:`` added later changes the picture readers see, so the subject is found again)."""
    st = path.stat()
    turn = declared_rotation(path)
    return f"{st.st_size}|{st.st_mtime_ns}" + (f"|r{turn}" if turn else "")


def _cache_file(root: Path, kind: str, provider: str, is_crop: bool, cache_dir: Path,
                version: str = CACHE_VERSION) -> Path:
    key = json_text([str(root.resolve()), kind, provider, is_crop, version])
    return cache_dir / (hashlib.sha1(key.encode()).hexdigest()[:20] + ".json")


def _load_cache(root: Path, kind: str, provider: str, is_crop: bool, cache_dir: Path) -> Dict[str, Any]:
    """This version's cache of ``root``; when there is none yet, the subjects an older version
    found (its misses are left out, so they are searched again, once)."""
    cache = load_cache(_cache_file(root, kind, provider, is_crop, cache_dir))
    if cache:
        return cache
    for version in OLDER_VERSIONS:
        old = load_cache(_cache_file(root, kind, provider, is_crop, cache_dir, version))
        cache.update({k: dict(v, older=True) for k, v in old.items()
                      if isinstance(v, dict) and v.get("subject") is not None and k not in cache})
    return cache


def _kept(hit: Optional[Dict[str, Any]], sig: str, path: Path) -> bool:
    """Whether a cached row settles its image: this file's, and (for an older version's find)
    not a noisy still, which the current search finds better."""
    if hit is None or hit.get("sig") != sig:
        return False
    if hit.get("older"):
        image, _ = read_image(path)
        return image is None or noise_level(image) < NOISY_SIGMA
    return True


def _final(row: Dict[str, Any]) -> bool:
    """Whether a ``subjects.jsonl`` row settles its image: a subject, or a miss of the
    current search (older misses, e.g. live capture's, are searched again once and cached)."""
    if row.get("box"):
        return True
    return row.get("found") is False and row.get("search") == CACHE_VERSION


def _rel(sample: Sample, root: Path) -> str:
    try:
        return sample.path.relative_to(root).as_posix()
    except ValueError:
        return str(sample.path)


def scan_subjects(ds: Dataset, kind: str, provider: str = "auto", is_crop: bool = False,
                  progress: bool = False, cache_dir: Optional[Path] = None) -> SubjectScan:
    """The subject of each sample of a verified dataset (sizes known)."""
    from tqdm import tqdm

    cache_dir = cache_dir or default_cache_dir()
    stored = _stored(ds.root)
    cache_path = _cache_file(ds.root, kind, provider, is_crop, cache_dir)
    cache = _load_cache(ds.root, kind, provider, is_crop, cache_dir)
    scan = SubjectScan([])
    finder = None
    dirty = False   # older rows checked: saved so that the check is not repeated
    todo = [i for i, s in enumerate(ds.samples)
            if _rel(s, ds.root) not in stored or not _final(stored[_rel(s, ds.root)])]
    bar = tqdm(total=len(todo), desc=f"finding {kind}s", unit="img", leave=False,
               disable=not progress or not todo)
    try:
        for s in ds.samples:
            rel = _rel(s, ds.root)
            size = s.size or (1, 1)
            if rel in stored and _final(stored[rel]):
                row = stored[rel]
                scan.subjects.append(Subject.from_dict(row, size) if row.get("box") else None)
                scan.stored += 1
                continue
            sig = _signature(s.path)
            hit = cache.get(rel)
            if _kept(hit, sig, s.path):
                assert hit is not None
                # checked once: the flag goes only now, so an interrupted scan checks again
                dirty = hit.pop("older", False) or dirty
                d = hit.get("subject")
                scan.subjects.append(None if d is None else Subject.from_dict(d, size))
                scan.cached += 1
            else:
                finder = finder or make_finder(kind, provider, tracking=False)
                found = _detect(finder, s, is_crop)
                scan.subjects.append(found)
                cache[rel] = {"sig": sig, "subject": None if found is None else found.to_dict(size)}
                scan.detected += 1
                if scan.detected % 200 == 0:   # an interrupted scan keeps its work
                    save_cache(cache_path, cache)
            bar.update(1)
    finally:
        bar.close()
        if finder is not None:
            finder.close()
        if finder is not None or dirty:
            save_cache(cache_path, cache)
    return scan


def _detect(finder: Any, sample: Sample, is_crop: bool) -> Optional[Subject]:
    image, _ = read_image(sample.path)
    if image is None:
        return None
    # A labelled image is known to show its subject: worth the permissive last search.
    return find_subject(finder, image, None, is_crop, hard=True)


def load_cache(path: Path) -> Dict[str, Any]:
    """A JSON cache file as a dict ({} when missing or unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def save_cache(path: Path, cache: Dict[str, Any]) -> None:
    """Write a JSON cache atomically; a cache that cannot be written is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json_text(cache))
    except OSError:
        pass   # a cache that cannot be written only costs time next run


def stored_rows(ds: Dataset, scan: SubjectScan) -> List[Dict[str, Any]]:
    """``subjects.jsonl`` rows for a scanned dataset: what lets a copy of it (another machine,
    no detector installed) skip the search. Misses name the search that missed them."""
    rows = []
    for s, subject in zip(ds.samples, scan.subjects):
        row = ({"found": False, "search": CACHE_VERSION} if subject is None
               else subject.to_dict(s.size or (1, 1)))
        rows.append(dict(row, image=_rel(s, ds.root)))
    return rows


def rates_by_label(ds: Dataset, scan: SubjectScan) -> Dict[str, Tuple[int, int]]:
    """(found, total) per class (or one entry 'all' for keypoint datasets)."""
    out: Dict[str, Tuple[int, int]] = {}
    for s, subject in zip(ds.samples, scan.subjects):
        key = s.label if s.label is not None else "all"
        found, total = out.get(key, (0, 0))
        out[key] = (found + (subject is not None), total + 1)
    return out


def low_rate_hint(kind: str, rate: float) -> str:
    """Why a detector finds few subjects, and what to do."""
    return (f"the {kind} detector found a {kind} in only {rate:.0%} of the images: often a tinted or very "
            f"dark camera image, a backlit or partly visible {kind}, or subjects far smaller than the "
            "frame; check the camera's colour and exposure, or train on whole frames "
            "(--input frame)")
