"""The benchmark's outputs: a terminal table (rich when installed), JSON, a PNG chart, the
warnings that make figures untrustworthy, and two runs side by side."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from edge_app.dataset.atomic import atomic_write_text, json_text
from edge_app.errors import UserError

WIDE_SPREAD = 0.10   # repeated runs further apart than this are not a stable figure


def warnings_for(result: Dict[str, Any]) -> List[str]:
    """Reasons not to trust the figures."""
    out: List[str] = []
    state = result.get("state", {})
    if state.get("jetson_clocks") == "OFF":
        out.append("jetson_clocks is off: clocks scale with load and figures vary; run "
                   "'sudo jetson_clocks' before benchmarking")
    if state.get("nvpmodel_is_max") is False:
        out.append("power mode '{}' is not the maximum ('{}'): 'sudo nvpmodel -m {}' for peak "
                   "figures, or keep it to measure this mode on purpose".format(
                       state.get("nvpmodel"), state.get("nvpmodel_max"), state.get("nvpmodel_max_id", 0)))
    for row in result.get("rows", []):
        if row.get("telemetry", {}).get("throttling"):
            out.append("{}: thermal throttling seen ({}); cool the board or add a fan".format(
                row["key"], row["telemetry"]["throttling"]))
        runs = row.get("fps_runs") or {}
        if runs.get("runs", 0) > 1 and runs.get("relative", 0) > WIDE_SPREAD:
            out.append("{}: repeated runs differ by {:.0%}; close other programs".format(
                row["key"], runs["relative"]))
        loop = row.get("loop") or {}
        asked = result["settings"].get("camera_fps_asked")
        if asked and loop.get("camera_fps") and loop["camera_fps"] < asked * 0.95:
            out.append("the camera delivers {:.0f} FPS, {:.0f} asked: the loop cannot go faster "
                       "(check the mode with v4l2-ctl --list-formats-ext)".format(loop["camera_fps"], asked))
    return out


def _cells(row: Dict[str, Any]) -> List[str]:
    lat, tel, loop = row["latency_ms"], row.get("telemetry", {}), row.get("loop") or {}
    fps_w = "{:.1f}".format(row["fps"] / tel["power_w"]) if tel.get("power_w") else "-"
    spread = row.get("fps_runs", {})
    return [row["describe"], row["precision"], str(row["batch"]), "{:.2f}".format(lat["p50"]),
            "{:.2f}".format(lat["p95"]), "{:.2f}".format(lat["p99"]),
            "{:.2f}".format(lat["trimmed_mean"]), "{:.1f}".format(row["fps"]),
            "±{:.0%}".format(spread["relative"] / 2) if spread.get("runs", 1) > 1 else "-",
            "{:.1f}".format(loop["fps"]) if loop.get("fps") else "-",
            _load(tel), "{:.1f}".format(tel["power_w"]) if tel.get("power_w") else "-", fps_w]


def _load(tel: Dict[str, Any]) -> str:
    if tel.get("gpu_percent") is not None:
        return "GPU {:.0f}%".format(tel["gpu_percent"])
    if tel.get("cpu_percent") is not None:
        return "CPU {:.0f}%".format(tel["cpu_percent"])
    return "-"


HEAD = ["backend", "prec", "batch", "p50 ms", "p95 ms", "p99 ms", "mean ms", "FPS", "spread",
        "loop FPS", "load", "W", "FPS/W"]


def table(result: Dict[str, Any]) -> str:
    """The main table, plus the stage breakdown of each loop run."""
    rows = [_cells(r) for r in result["rows"] if not r.get("skipped")]
    lines = [_render(HEAD, rows, "inference ({} frames, {} warm-up, {} run(s))".format(
        result["settings"]["frames"], result["settings"]["warmup"], result["settings"]["repeat"]))
             if rows else "nothing could be measured"]
    lines[0] += "".join("\nskipped {} {} batch {}: {}".format(r["backend"], r["precision"], r["batch"],
                                                             r["skipped"])
                        for r in result["rows"] if r.get("skipped"))
    decode = [[r["key"], "{:.3f}".format(r["decode_ms"]["p50"]), "{:.3f}".format(r["decode_ms"]["mean"]),
               "{:.3f}".format(r["decode_ms"]["p95"]), str(r.get("boxes", ""))]
              for r in result["rows"] if r.get("decode_ms")]
    if decode:
        lines.append(_render(["backend", "p50 ms", "mean ms", "p95 ms", "boxes"], decode,
                             "detector decode + NMS per frame (threshold, class filter, NMS, boxes to the frame)"))
    for r in result["rows"]:
        loop = r.get("loop") or {}
        if loop.get("stages_ms"):
            total = sum(loop["stages_ms"].values()) or 1.0
            stage_rows = [[k, f"{v:.2f}", f"{v / total:.0%}"]
                          for k, v in loop["stages_ms"].items()]
            lines.append(_render(["stage", "ms", "share"], stage_rows, "loop on {}: {:.1f} FPS ({})".format(
                r["describe"], loop["fps"], loop.get("source", ""))))
    return "\n\n".join(lines)


def _render(head: Sequence[str], rows: List[List[str]], title: str) -> str:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        return _plain(head, rows, title)
    t = Table()
    for h in head:
        t.add_column(h, justify="left" if h in ("backend", "stage", "prec") else "right")
    for row in rows:
        t.add_row(*(row + [""] * (len(head) - len(row))))
    console = Console(width=140, record=True, force_terminal=False)
    with console.capture() as cap:
        console.print(t)
    return title + "\n" + cap.get().rstrip()


def _plain(head: Sequence[str], rows: List[List[str]], title: str) -> str:
    widths = [max([len(h)] + [len(r[i]) for r in rows if i < len(r) and len(r) == len(head)])
              for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths)))
    out = [title, fmt(head)]
    for r in rows:
        out.append(fmt(r) if len(r) == len(head) else "  ".join(r))
    return "\n".join(out)


def write_json(path: str, result: Dict[str, Any]) -> None:
    atomic_write_text(path, json_text(result, indent=2, default=str) + "\n")


def chart(path: str, result: Dict[str, Any]) -> Optional[str]:
    """Latency per combination (p50 with p95 whiskers) and the loop's stage breakdown, as PNG.
    Returns a note instead when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "chart: skipped (pip install matplotlib)"
    rows = [r for r in result["rows"] if not r.get("skipped")]
    loops = [r for r in rows if (r.get("loop") or {}).get("stages_ms")]
    fig, axes = plt.subplots(1, 2 if loops else 1, figsize=(12 if loops else 7, 4), squeeze=False)
    ax = axes[0][0]
    names = [r["key"] for r in rows]
    p50 = [r["latency_ms"]["p50"] for r in rows]
    p95 = [r["latency_ms"]["p95"] - r["latency_ms"]["p50"] for r in rows]
    ax.barh(names, p50, xerr=[[0] * len(rows), p95], color="#4c9be8")
    ax.set_xlabel("latency per call, ms (p50, whisker to p95)")
    ax.set_title("{} on {}".format(result["model"]["name"], result["device"].get("model") or
                                   result["device"].get("cpu", "")), fontsize=9)
    if loops:
        ax2 = axes[0][1]
        stages = list(loops[0]["loop"]["stages_ms"])
        left = [0.0] * len(loops)
        for stage in stages:
            values = [r["loop"]["stages_ms"].get(stage, 0.0) for r in loops]
            ax2.barh([r["key"] for r in loops], values, left=left, label=stage)
            left = [a + b for a, b in zip(left, values)]
        ax2.set_xlabel("loop ms per frame, by stage")
        ax2.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def compare(a: Dict[str, Any], b: Dict[str, Any]) -> str:
    """Two runs side by side: the same combinations, B relative to A."""
    def label(r: Dict[str, Any]) -> str:
        return "{} ({})".format(r["device"].get("model") or r["device"].get("cpu", "?"), r["created"])

    by_key = {r["key"]: r for r in a["rows"] if not r.get("skipped")}
    rows = []
    for r in b["rows"]:
        other = by_key.get(r["key"])
        if r.get("skipped") or other is None:
            continue
        loop_a, loop_b = (other.get("loop") or {}).get("fps"), (r.get("loop") or {}).get("fps")
        rows.append([r["key"], "{:.1f}".format(other["fps"]), "{:.1f}".format(r["fps"]),
                     "{:.2f}x".format(r["fps"] / other["fps"]),
                     "{:.2f}".format(other["latency_ms"]["p50"]), "{:.2f}".format(r["latency_ms"]["p50"]),
                     "{:.2f}x".format(r["latency_ms"]["p50"] / other["latency_ms"]["p50"]),
                     f"{loop_b / loop_a:.2f}x" if loop_a and loop_b else "-"])
    if not rows:
        return "nothing to compare: the two runs share no backend/precision/batch combination"
    head = ["combination", "A FPS", "B FPS", "B/A", "A p50", "B p50", "B/A", "loop B/A"]
    return "A: {}\nB: {}\n{}".format(label(a), label(b), _render(head, rows, "B relative to A"))


def load(path: str) -> Dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a benchmark JSON ({exc})")
    if not isinstance(data, dict) or "rows" not in data:
        raise UserError(f"{path}: not a benchmark JSON from edge-app bench --json")
    return data
