"""Jetson power modes from the board's own nvpmodel table (``/etc/nvpmodel.conf``).

Mode 0 is not always the maximum: on an Orin Nano with JetPack 6.2, 0 is 15 W and 2 is
MAXN_SUPER; Xavier NX has no MAXN at all (its 20 W modes are the top). So the maximum is the
mode with the highest budget: MAXN_SUPER, then MAXN (no budget cap), then the most watts named
(``15W``, ``MODE_30W``, ``MODE_20W_6CORE``); ties go to more CPU cores online, then the higher
GPU clock cap. The file declares each mode as a block::

    < POWER_MODEL ID=2 NAME=MAXN_SUPER >
    CPU_ONLINE CORE_0 1
    GPU MAX_FREQ -1
    < PM_CONFIG DEFAULT=2 >
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

NVPMODEL_CONF = Path("/etc/nvpmodel.conf")

_BLOCK = re.compile(r"^<\s*(\w+)\s+(.*?)\s*>\s*$")
_WATTS = re.compile(r"(\d+(?:\.\d+)?)\s*W(?![A-Za-z])", re.I)


@dataclass(frozen=True)
class PowerMode:
    """One POWER_MODEL block: its id, name and (PARAM, ARG, VALUE) settings."""

    id: int
    name: str
    settings: Tuple[Tuple[str, str, str], ...] = ()

    @property
    def unbounded(self) -> bool:
        """MAXN and MAXN_SUPER: no power budget caps the clocks."""
        return self.name.upper().startswith("MAXN")

    @property
    def budget_w(self) -> Optional[float]:
        """The budget its name states (``MODE_30W`` -> 30.0); None for MAXN or no number."""
        match = None if self.unbounded else _WATTS.search(self.name)
        return float(match.group(1)) if match else None

    @property
    def cpus_online(self) -> Optional[int]:
        """CPU cores it keeps online (None when the mode does not say)."""
        cores = [v for p, _, v in self.settings if p == "CPU_ONLINE"]
        return sum(1 for v in cores if v == "1") if cores else None

    @property
    def gpu_max_hz(self) -> Optional[float]:
        """The GPU clock cap (infinite for -1, no cap); None when the mode does not say."""
        for param, arg, value in self.settings:
            if param == "GPU" and arg == "MAX_FREQ":
                return float("inf") if value.startswith("-") else float(value)
        return None

    def budget_rank(self) -> Tuple[int, float]:
        """Higher is more power: MAXN_SUPER, MAXN, then watts; an unnamed budget lowest."""
        if self.unbounded:
            return 2, 1.0 if "SUPER" in self.name.upper() else 0.0
        budget = self.budget_w
        return (1, budget) if budget is not None else (0, 0.0)

    def rank(self) -> Tuple[int, float, int, float]:
        return self.budget_rank() + (self.cpus_online or 0, self.gpu_max_hz or 0.0)


def parse_nvpmodel(text: str) -> List[PowerMode]:
    """Every POWER_MODEL block of an nvpmodel.conf, in file order."""
    modes: List[PowerMode] = []
    current: Optional[Tuple[int, str]] = None
    settings: List[Tuple[str, str, str]] = []
    for raw in text.splitlines() + ["< END >"]:
        line = raw.split("#", 1)[0].strip()
        block = _BLOCK.match(line)
        if block:
            if current is not None:
                modes.append(PowerMode(current[0], current[1], tuple(settings)))
            current, settings = None, []
            fields: Dict[str, str] = dict(re.findall(r"(\w+)=(\S+)", block.group(2)))
            if block.group(1) == "POWER_MODEL" and fields.get("ID", "").isdigit():
                current = (int(fields["ID"]), fields.get("NAME", fields["ID"]))
        elif current is not None and len(line.split()) == 3:
            param, arg, value = line.split()
            settings.append((param, arg, value))
    return modes


def default_mode_id(text: str) -> Optional[int]:
    """The boot default from ``< PM_CONFIG DEFAULT=n >``."""
    match = re.search(r"<\s*PM_CONFIG\s+DEFAULT=(\d+)\s*>", text)
    return int(match.group(1)) if match else None


def modes_from_names(names: Sequence[str]) -> List[PowerMode]:
    """Modes from their names alone, ids in list order (jetson-stats' ``nvpmodel.models``), for
    when the table file cannot be read."""
    return [PowerMode(i, str(name)) for i, name in enumerate(names)]


def read_modes(path: Path = NVPMODEL_CONF) -> List[PowerMode]:
    """The board's modes; [] off a Jetson or when the file cannot be read."""
    try:
        return parse_nvpmodel(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return []


def maximum(modes: Sequence[PowerMode]) -> Optional[PowerMode]:
    """The mode with the highest budget (ties: more cores, then a higher GPU cap, then the
    lower id); None without modes."""
    return max(modes, key=lambda m: m.rank() + (-m.id,)) if modes else None


def is_maximum(mode_id: Optional[int], modes: Sequence[PowerMode]) -> Optional[bool]:
    """Whether mode ``mode_id`` has the top budget (any of several tied top modes counts);
    None when either is unknown."""
    best = maximum(modes)
    mode = next((m for m in modes if m.id == mode_id), None)
    if best is None or mode is None:
        return None
    return mode.budget_rank() == best.budget_rank()


def parse_query(text: str) -> Tuple[Optional[str], Optional[int]]:
    """(name, id) from ``nvpmodel -q`` ('NV Power Mode: MAXN_SUPER' then the id alone)."""
    name = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if "Power Mode" in ln), None)
    ids = [ln.strip() for ln in text.splitlines() if ln.strip().isdigit()]
    return name, int(ids[-1]) if ids else None
