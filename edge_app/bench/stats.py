"""Outlier-robust latency statistics and the spread between repeated runs."""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np


def latency_stats(ms: Sequence[float]) -> Dict[str, float]:
    """Mean, percentiles and a trimmed mean (the middle 90%: one hiccup of the OS or a
    clock change does not move it) of per-call milliseconds."""
    a = np.sort(np.asarray(ms, dtype=np.float64))
    if not a.size:
        return {"n": 0}
    cut = int(len(a) * 0.05)
    middle = a[cut:len(a) - cut] if len(a) > 2 * cut else a
    q1, q3 = np.percentile(a, [25, 75])
    return {"n": int(a.size), "mean": float(a.mean()), "trimmed_mean": float(middle.mean()),
            "p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "p99": float(np.percentile(a, 99)), "min": float(a[0]), "max": float(a[-1]),
            "std": float(a.std()), "iqr": float(q3 - q1),
            "outliers": int(((a < q1 - 3 * (q3 - q1)) | (a > q3 + 3 * (q3 - q1))).sum())}


def spread(values: Sequence[float]) -> Dict[str, float]:
    """Median of repeated runs and how far apart they were, relative to it."""
    a = np.asarray(values, dtype=np.float64)
    med = float(np.median(a))
    return {"median": med, "min": float(a.min()), "max": float(a.max()),
            "relative": float((a.max() - a.min()) / med) if med else 0.0, "runs": int(a.size)}
