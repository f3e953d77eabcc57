"""Power, load and temperatures sampled in a background thread while a benchmark runs.

Sources, best first: jetson-stats (``jtop``: power per rail and total, GPU and CPU load,
temperatures, nvpmodel and jetson_clocks), ``nvidia-smi`` on a desktop GPU, ``psutil`` (CPU
load and memory) anywhere. A missing source is one line in the report, never a traceback.
Shutdown: :meth:`Sampler.stop` sets an event and joins the thread (it wakes every interval).
"""
from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from edge_app.device import power

THROTTLE_C = 85.0   # Jetson modules start thermal throttling in the high 80s to 90s (°C)


class JtopSource:
    """jetson-stats. Reads its flat ``stats`` dict: 'Power TOT' and 'Power <rail>' in mW,
    'GPU' and 'CPU<n>' in % ('OFF' for a parked core), 'Temp <zone>' in °C, 'jetson_clocks'
    'ON'/'OFF', 'nvp model' the mode's name; the maximum power mode comes from the board's
    nvpmodel table (:mod:`edge_app.device.power`)."""

    name = "jtop"

    def __init__(self, factory: Optional[Callable[[], Any]] = None,
                 nvpmodel_conf: Path = power.NVPMODEL_CONF) -> None:
        self._nvpmodel_conf = nvpmodel_conf
        if factory is None:
            from jtop import jtop  # jetson-stats; its service must be running

            factory = jtop
        self._jtop = factory()
        self._jtop.start()

    def sample(self) -> Dict[str, Any]:
        stats = dict(self._jtop.stats)
        cpus = [v for k, v in stats.items() if k.startswith("CPU") and isinstance(v, (int, float))]
        temps = {k[5:]: float(v) for k, v in stats.items()
                 if k.startswith("Temp ") and isinstance(v, (int, float)) and v > -100}
        rails = {k[6:]: float(v) / 1000.0 for k, v in stats.items()
                 if k.startswith("Power ") and k != "Power TOT" and isinstance(v, (int, float))}
        out: Dict[str, Any] = {"cpu_percent": float(np.mean(cpus)) if cpus else None,
                               "gpu_percent": _number(stats.get("GPU")), "temps_c": temps,
                               "rails_w": rails}
        if isinstance(stats.get("Power TOT"), (int, float)):
            out["power_w"] = float(stats["Power TOT"]) / 1000.0
        return out

    def state(self) -> Dict[str, Any]:
        """Settings that decide whether figures can be trusted."""
        stats = dict(self._jtop.stats)
        out: Dict[str, Any] = {"jetson_clocks": stats.get("jetson_clocks"),
                               "nvpmodel": stats.get("nvp model")}
        nvp = getattr(self._jtop, "nvpmodel", None)
        if nvp is None:
            return out
        # The board's table decides the maximum (mode 0 is 15 W on an Orin Nano with JetPack
        # 6.2); jtop's list of names stands in when the table cannot be read.
        modes = power.read_modes(self._nvpmodel_conf) or power.modes_from_names(
            list(getattr(nvp, "models", []) or []))
        best = power.maximum(modes)
        if best is not None:
            out["nvpmodel_max"] = best.name
            out["nvpmodel_max_id"] = best.id
            out["nvpmodel_is_max"] = power.is_maximum(getattr(nvp, "id", None), modes)
        return out

    def close(self) -> None:
        self._jtop.close()


class SmiSource:
    """nvidia-smi on a desktop GPU."""

    name = "nvidia-smi"
    QUERY = "utilization.gpu,power.draw,temperature.gpu,memory.used,clocks_throttle_reasons.active"

    def __init__(self) -> None:
        if shutil.which("nvidia-smi") is None:
            raise RuntimeError("nvidia-smi not found")
        self.sample()

    def sample(self) -> Dict[str, Any]:
        text = subprocess.run(["nvidia-smi", "--query-gpu=" + self.QUERY,
                               "--format=csv,noheader,nounits"], capture_output=True, text=True,
                              timeout=5, check=True).stdout.splitlines()[0]
        util, power, temp, mem, throttle = [v.strip() for v in text.split(",")][:5]
        return {"gpu_percent": _number(util), "power_w": _number(power),
                "temps_c": {"GPU": float(temp)} if _number(temp) is not None else {},
                "gpu_memory_mb": _number(mem), "throttle_reasons": throttle}

    def state(self) -> Dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


class PsutilSource:
    """CPU load and memory anywhere."""

    name = "psutil"

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        psutil.cpu_percent()   # the first call only starts the measurement

    def sample(self) -> Dict[str, Any]:
        return {"cpu_percent": float(self._psutil.cpu_percent()),
                "memory_percent": float(self._psutil.virtual_memory().percent)}

    def state(self) -> Dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


SOURCES: Dict[str, Callable[[], Any]] = {"jtop": JtopSource, "nvidia-smi": SmiSource,
                                         "psutil": PsutilSource}


def _number(value: Any) -> Optional[float]:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def open_sources(names: Optional[List[str]] = None) -> tuple:
    """The sources that work here, and one line per source that does not (and why)."""
    sources, notes = [], []
    for name in names or list(SOURCES):
        try:
            sources.append(SOURCES[name]())
        except Exception as exc:   # ImportError, no service, no permission: all just notes
            notes.append(f"telemetry {name}: unavailable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
        if name == "jtop" and sources:
            break   # on a Jetson, jtop has everything
    return sources, notes


class Sampler:
    """Samples every source each ``interval`` seconds between :meth:`start` and :meth:`stop`."""

    def __init__(self, sources: List[Any], interval: float = 0.5) -> None:
        self.sources, self.interval = sources, interval
        self.samples: List[Dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> Sampler:
        self.samples, self._stop = [], threading.Event()
        if self.sources:
            self._thread = threading.Thread(target=self._run, name="telemetry", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            merged: Dict[str, Any] = {}
            for source in self.sources:
                try:
                    merged.update({k: v for k, v in source.sample().items() if v is not None})
                except Exception:
                    continue   # one failed read is a missing sample, not a failed benchmark
            self.samples.append(merged)

    def stop(self) -> Dict[str, Any]:
        """Stop sampling; a summary of the samples (means, peak temperature)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval * 4 + 1)
        return summarize(self.samples)


def summarize(samples: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Means of the numeric readings, the peak temperature and the throttling signs seen."""
    out: Dict[str, Any] = {"samples": len(samples)}
    for key in ("power_w", "gpu_percent", "cpu_percent", "memory_percent", "gpu_memory_mb"):
        values = [s[key] for s in samples if isinstance(s.get(key), (int, float))]
        if values:
            out[key] = round(float(np.mean(values)), 3)
    temps = [max(s["temps_c"].values()) for s in samples if s.get("temps_c")]
    if temps:
        out["temp_max_c"] = round(float(max(temps)), 1)
    rails: Dict[str, List[float]] = {}
    for s in samples:
        for name, watts in (s.get("rails_w") or {}).items():
            rails.setdefault(name, []).append(watts)
    if rails:
        out["rails_w"] = {k: round(float(np.mean(v)), 3) for k, v in rails.items()}
    reasons = {str(s["throttle_reasons"]) for s in samples if s.get("throttle_reasons")} - {
        "0x0000000000000000", "0x0000000000000001"}   # none, or only "GPU idle"
    if temps and max(temps) >= THROTTLE_C or reasons:
        out["throttling"] = (f"temperature reached {max(temps):.0f} °C" if temps and
                             max(temps) >= THROTTLE_C else "GPU clock limits: " + ", ".join(sorted(reasons)))
    return out
