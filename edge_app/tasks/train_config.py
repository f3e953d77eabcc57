"""The training configuration: defaults, the task YAML's ``train:`` section, then command-line
options, resolved into one dataclass that is saved in the bundle. Pure Python (no torch), so
task specs can be validated on a device without the training extras."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Literal, Mapping, Optional, Tuple

from edge_app.errors import did_you_mean
from edge_app.model.inputs import input_names
from edge_app.subject import provider_names

# Closed choices are Literal types, their tuples what options and YAML are checked against.
# --input stays a str: its choices grow with the input-kind registry.
Mode = Literal["auto", "fast", "full"]
MODES: Tuple[Mode, ...] = ("auto", "fast", "full")
# auto: landmarks first, CNN candidates only where they fall short; all: every candidate
AUTO_INPUTS = ("auto", "all")
INPUTS = AUTO_INPUTS + input_names()


@dataclass
class TrainConfig:
    """Everything a training run depends on. ``None`` means "the mode's default"."""

    arch: str = "resnet18"
    weights: str = "imagenet"          # imagenet | none | a path to a state_dict file
    mode: Mode = "auto"                # fast (frozen backbone, cached features) | full | auto
    epochs: Optional[int] = None       # fast: 60 head epochs; full: 15
    batch_size: int = 16
    lr: Optional[float] = None         # 3e-3 (full mode: the head; the backbone at 1/10)
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    balance: bool = True               # class weights against imbalance
    val_fraction: float = 0.2
    seed: int = 0
    group: Optional[str] = None        # regex: names sharing the match stay on one side
    patience: int = 6                  # early stopping, in epochs without improvement
    views: int = 4                     # fast mode: augmented views per training image
    input_size: Optional[Tuple[int, int]] = None   # default: the task's
    workers: Optional[int] = None      # DataLoader workers; default from the CPU count
    device: str = "auto"               # auto | cpu | cuda | cuda:N
    input: str = "auto"                # crop | landmarks (of the subject) | both | frame | auto | all
    subject_provider: str = "auto"     # who finds the subject (edge_app.subject.providers)
    crops: bool = False                # the dataset's images are already crops of the subject
    extra: Dict[str, Any] = field(default_factory=dict)

    def resolved(self, cuda: bool) -> TrainConfig:
        """A copy with every mode default filled in."""
        mode = self.mode if self.mode != "auto" else ("full" if cuda else "fast")
        fast = mode == "fast"
        return dataclasses.replace(
            self, mode=mode, epochs=self.epochs or (60 if fast else 15),
            lr=self.lr or 3e-3)

    def to_dict(self) -> Dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("extra")
        if out["input_size"] is not None:
            out["input_size"] = list(out["input_size"])
        return out


_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig) if f.name != "extra"}
_CHOICES = {"mode": MODES, "input": INPUTS,
            "subject_provider": provider_names()}
_NUMBER_RANGES = {"epochs": (1, 10000), "batch_size": (1, 4096), "lr": (1e-7, 10.0),
                  "weight_decay": (0.0, 1.0), "label_smoothing": (0.0, 0.5),
                  "val_fraction": (0.0, 0.9), "patience": (1, 1000), "views": (0, 64),
                  "workers": (0, 64), "seed": (0, 2 ** 31)}


def check_options(key: str, value: Any) -> str:
    """Problem with one training option (from YAML or the command line), or ``""``."""
    if key not in _FIELDS:
        return "unknown training option{}; options: {}".format(
            did_you_mean(key, _FIELDS), ", ".join(_FIELDS))
    if key in _CHOICES and value not in _CHOICES[key]:
        return "'{}' is not one of {}".format(value, ", ".join(_CHOICES[key]))
    if key in _NUMBER_RANGES:
        low, high = _NUMBER_RANGES[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            return f"expected a number from {low} to {high}, got {value!r}"
    if key in ("balance", "crops") and not isinstance(value, bool):
        return f"expected true or false, got {value!r}"
    return ""


def build_config(task_defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> TrainConfig:
    """Defaults < the task YAML's ``train:`` < command-line options (those not None)."""
    values: Dict[str, Any] = dict(task_defaults)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if values.get("input_size") is not None:
        size = values["input_size"]
        values["input_size"] = (size, size) if isinstance(size, int) else tuple(size)
    return TrainConfig(**values)
