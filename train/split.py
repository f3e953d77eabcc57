"""Validation splits: stratified with a fixed seed, or given, or grouped by a name pattern so
near-identical frames (CK+'s sequences, one person's session) never straddle the split."""
from __future__ import annotations

import re
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from edge_app.dataset.samples import Sample
from edge_app.errors import UserError


def split_indices(samples: Sequence[Sample], strata: Sequence[int], fraction: float, seed: int,
                  group: Optional[str] = None) -> Tuple[List[int], List[int]]:
    """(train, val) indices. Samples marked ``split: val`` (jetson-inference, splits.csv)
    form the validation set when there are any; otherwise a stratified random split."""
    given = [i for i, s in enumerate(samples) if s.split == "val"]
    if given:
        return [i for i, s in enumerate(samples) if s.split not in ("val", "test")], given
    rng = np.random.default_rng(seed)
    units = _units(samples, group)
    by_stratum: Dict[int, List[List[int]]] = defaultdict(list)
    for members in units:
        majority = int(np.bincount([strata[i] for i in members]).argmax())
        by_stratum[majority].append(members)
    train: List[int] = []
    val: List[int] = []
    for stratum in sorted(by_stratum):
        groups = by_stratum[stratum]
        order = rng.permutation(len(groups))
        n_val = int(round(len(groups) * fraction))
        if fraction > 0 and len(groups) > 1:
            n_val = min(max(n_val, 1), len(groups) - 1)
        for rank, g in enumerate(order):
            (val if rank < n_val else train).extend(groups[g])
    return sorted(train), sorted(val)


def _units(samples: Sequence[Sample], group: Optional[str]) -> List[List[int]]:
    if not group:
        return [[i] for i in range(len(samples))]
    try:
        pattern = re.compile(group)
    except re.error as exc:
        raise UserError(f"--group {group!r}: not a valid regular expression ({exc})")
    groups: Dict[str, List[int]] = defaultdict(list)
    unmatched = 0
    for i, s in enumerate(samples):
        m = pattern.search(s.path.name)
        key = (m.group(1) if m and m.groups() else m.group(0)) if m else "\0" + str(i)
        unmatched += m is None
        groups[key].append(i)
    if unmatched == len(samples):
        raise UserError("--group {!r} matches no file name (e.g. {}); use a pattern like "
                        "'^(S\\d+)_'".format(group, samples[0].path.name if samples else "?"))
    return list(groups.values())
