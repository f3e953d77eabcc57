"""Task specs: YAML files loaded into a validated, frozen :class:`TaskSpec`."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from edge_app.errors import SpecError, did_you_mean
from edge_app.tasks.kinds import TASK_KINDS, TaskKind
from edge_app.tasks.safe_yaml import load_yaml

SUBJECTS = ("hand", "face", "none")
TOP_KEYS = ("name", "kind", "description", "classes", "points", "subject", "input_size", "flip",
            "count", "thumb", "sim", "train")
# What a class name can count (``count:``): each class is that many of them, whichever ones.
COUNTS = {"fingers": 5}
# Where a class's thumb points in the picture (``thumb:``). Only up and down: a hand's left and
# right are mirrored away in its landmark features (a left hand is read as a right one).
THUMB_DIRECTIONS = ("up", "down")
SIM_KEYS = ("scene", "labels")


@dataclass(frozen=True)
class SimSpec:
    """How the simulated camera renders this task: a scene and, per class, the scene's pose."""

    scene: str
    labels: Tuple[Tuple[str, str], ...] = ()

    def pose_for(self, label: str) -> str:
        """The scene pose that shows ``label``."""
        return dict(self.labels)[label]


@dataclass(frozen=True)
class TaskSpec:
    """A validated task: its kind, label names, input size and optional simulator mapping."""

    name: str
    kind: str
    classes: Tuple[str, ...] = ()
    points: Tuple[str, ...] = ()
    description: str = ""
    subject: str = "none"
    input_size: Tuple[int, int] = (224, 224)   # (height, width)
    flip: bool = True          # a mirrored image is a valid example (left/right points swap)
    count: str = ""            # each class name is a number of these raised (COUNTS), or ""
    thumb: Tuple[Tuple[str, str], ...] = ()   # class -> where its thumb points (THUMB_DIRECTIONS)
    sim: Optional[SimSpec] = None
    train: Tuple[Tuple[str, Any], ...] = ()    # training defaults; command-line options win
    path: Optional[str] = field(default=None, compare=False)

    @property
    def task_kind(self) -> TaskKind:
        return TASK_KINDS[self.kind]

    @property
    def labels(self) -> Tuple[str, ...]:
        """Class names for classification, point names for keypoints."""
        return tuple(getattr(self, self.task_kind.labels_key))

    def to_dict(self) -> Dict[str, Any]:
        """The spec as plain data, in the YAML's own keys (saved in datasets and bundles)."""
        out: Dict[str, Any] = {"name": self.name, "kind": self.kind}
        out[self.task_kind.labels_key] = list(self.labels)
        out.update(description=self.description, subject=self.subject,
                   input_size=list(self.input_size), flip=self.flip)
        if self.count:
            out["count"] = self.count
        if self.thumb:
            out["thumb"] = dict(self.thumb)
        if self.sim is not None:
            out["sim"] = {"scene": self.sim.scene, "labels": dict(self.sim.labels)}
        if self.train:
            out["train"] = dict(self.train)
        return out


def builtin_dir() -> Path:
    """Folder of the built-in task YAMLs, in editable and regular installs alike, and in a
    source checkout run without installing (PYTHONPATH=.)."""
    try:
        # lazy: missing in a source checkout run uninstalled; setup.py maps configs/ to it
        import edge_app.builtin_configs as pkg
    except ImportError:
        checkout = Path(__file__).resolve().parents[2] / "configs"
        if checkout.is_dir():
            return checkout
        raise
    return Path(pkg.__file__).resolve().parent


def builtin_tasks() -> List[str]:
    """Names of the built-in tasks."""
    return sorted(p.stem for p in builtin_dir().glob("*.yaml"))


def load_task(name_or_path: Union[str, Path]) -> TaskSpec:
    """Load a built-in task by name (``thumbs``) or a user's YAML file (``my.yaml``)."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.suffix.lower() not in (".yaml", ".yml") and not path.is_file():
        candidate = builtin_dir() / (text + ".yaml")
        if not candidate.is_file():
            raise SpecError("unknown task '{}': built-in tasks are {}, or give a YAML file{}"
                            .format(text, ", ".join(builtin_tasks()),
                                    did_you_mean(text, builtin_tasks())))
        path = candidate
    if not path.is_file():
        raise SpecError(f"{path}: task file not found")

    return parse_task(load_yaml(path, SpecError), source=str(path))


def parse_task(raw: Any, source: str = "<spec>", saved: bool = False) -> TaskSpec:
    """Validate a spec mapping (from YAML) into a :class:`TaskSpec`. A ``saved`` spec (from a
    bundle or an ONNX file) may carry keys a later release added: they are dropped, since the
    model itself carries what they changed, so a newer model runs on an older device install."""

    def fail(key: str, problem: str) -> SpecError:
        return SpecError(f"{source}: key '{key}': {problem}")

    if not isinstance(raw, Mapping):
        raise SpecError(f"{source}: a task spec must be a mapping of keys (name, kind, classes or points, ...)"
                        )
    if saved:
        raw = {k: v for k, v in raw.items() if k in TOP_KEYS}
    _reject_unknown(raw, TOP_KEYS, "", fail)
    for key in ("name", "kind"):
        if key not in raw:
            raise fail(key, "missing (required)")
    name = _text(raw["name"], "name", fail, "e.g. name: thumbs")
    kind_name = _text(raw["kind"], "kind", fail, "one of " + ", ".join(TASK_KINDS))
    if kind_name not in TASK_KINDS:
        raise fail("kind", "unknown kind '{}'{}; kinds are {}".format(
            kind_name, did_you_mean(kind_name, TASK_KINDS), ", ".join(TASK_KINDS)))
    kind = TASK_KINDS[kind_name]
    if not kind.trainer:
        raise fail("kind", f"'{kind_name}' models come from an ONNX file, not a task spec: run one with "
                   "edge-app run --model M.onnx --labels L.txt")
    for other in (k.labels_key for k in TASK_KINDS.values() if k.labels_key != kind.labels_key):
        if other in raw:
            raise fail(other, f"not used by kind '{kind_name}'; use '{kind.labels_key}'")
    if kind.labels_key not in raw:
        raise fail(kind.labels_key, f"missing (required for kind '{kind_name}')")
    labels, problem = kind.check_labels(_labels(raw[kind.labels_key], kind.labels_key, fail))
    if problem:
        raise fail(kind.labels_key, problem)
    subject = _text(raw.get("subject", "none"), "subject", fail, "one of " + ", ".join(SUBJECTS))
    if subject not in SUBJECTS:
        raise fail("subject", "'{}' is not one of {}{}".format(
            subject, ", ".join(SUBJECTS), did_you_mean(subject, SUBJECTS)))
    if raw.get("count") is not None and raw.get("thumb") is not None:
        raise fail("thumb", "a task either counts fingers (count:) or reads the thumb (thumb:), not both")
    flip = raw.get("flip", True)
    if not isinstance(flip, bool):
        raise fail("flip", f"expected true or false, got {_shown(flip)}")
    return TaskSpec(
        name=name, kind=kind_name, subject=subject,
        description=_text(raw.get("description") or "", "description", fail, "a line of text",
                          empty=True),
        input_size=_input_size(raw.get("input_size", 224), fail), flip=flip,
        count=_count(raw.get("count"), labels, kind_name, subject, fail),
        thumb=_thumb(raw.get("thumb"), labels, kind_name, subject, fail),
        sim=_sim(raw.get("sim"), labels, kind, fail), train=_train(raw.get("train"), fail),
        path=source, **{kind.labels_key: labels})


def _text(value: Any, key: str, fail: Any, example: str, empty: bool = False) -> str:
    """A scalar that is text (a bare number is taken as its text: ``name: 2024``); lists,
    mappings, booleans and the like are refused."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise fail(key, f"expected text ({example}), got {_shown(value)}")
    if not empty and not str(value).strip():
        raise fail(key, f"is empty; expected text ({example})")
    return str(value)


def _labels(value: Any, key: str, fail: Any) -> Any:
    """The label list with every entry checked to be a name (text or a bare number)."""
    if isinstance(value, (list, tuple)):
        for i, entry in enumerate(value):
            if isinstance(entry, bool) or not isinstance(entry, (str, int)):
                raise fail(key, f"entry {i + 1} is {_shown(entry)}: expected a name, e.g. [a, b]")
    return value


def _shown(value: Any) -> str:
    """A value as a short one-line quote for an error message."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _train(value: Any, fail: Any) -> Tuple[Tuple[str, Any], ...]:
    """Training defaults from the YAML, checked against the training options."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise fail("train", "expected a mapping of training options, e.g. {epochs: 10}")
    # lazy: train_config pulls in the model and subject rooms (numpy); only a train: section needs it
    from edge_app.tasks.train_config import check_options

    for key, val in value.items():
        problem = check_options(str(key), val) or _train_type(str(key), val)
        if problem:
            raise fail("train." + str(key), problem)
    return tuple(sorted((str(k), v) for k, v in value.items()))


# Types of the training options that check_options leaves open (it checks choices and ranges).
TRAIN_TEXT = ("arch", "weights", "mode", "device", "input", "subject_provider", "group")
TRAIN_INTEGER = ("epochs", "batch_size", "seed", "patience", "views", "workers")


def _train_type(key: str, value: Any) -> str:
    """What is wrong with the type of training option ``key``, or ``""``."""
    if value is None:
        return ""   # the mode's default
    if key in TRAIN_TEXT and not isinstance(value, str):
        return f"expected text, got {_shown(value)}"
    if key in TRAIN_INTEGER and (isinstance(value, bool) or not isinstance(value, int)):
        return f"expected a whole number, got {_shown(value)}"
    if key == "group":
        import re

        try:
            re.compile(value)
        except re.error as exc:
            return f"not a valid regular expression ({exc})"
    if key == "input_size":
        try:
            _input_size(value, lambda _key, problem: SpecError(problem))
        except SpecError as exc:
            return str(exc)
    return ""


def _count(value: Any, labels: Tuple[str, ...], kind: str, subject: str, fail: Any) -> str:
    """``count: fingers``: a classification task of hands whose class names are numbers."""
    if value is None:
        return ""
    what = _text(value, "count", fail, "one of " + ", ".join(COUNTS))
    if what not in COUNTS:
        raise fail("count", "'{}' is not something edge-app counts{}; use one of {}".format(
            what, did_you_mean(what, COUNTS), ", ".join(COUNTS)))
    if kind != "classification" or subject != "hand":
        raise fail("count", f"counting {what} needs kind: classification and subject: hand")
    wrong = [c for c in labels if not (c.isdigit() and int(c) <= COUNTS[what])]
    if wrong:
        raise fail("count", f"class '{wrong[0]}' is not a number of {what} from 0 to {COUNTS[what]}: with count: {what}, "
                   "name each class by its count, e.g. classes: ['1', '2', '3']")
    seen: Dict[int, str] = {}
    for c in labels:
        if int(c) in seen:
            raise fail("count", f"classes '{seen[int(c)]}' and '{c}' are the same count; give each count one class"
                       )
        seen[int(c)] = c
    return what


def _thumb(value: Any, labels: Tuple[str, ...], kind: str, subject: str, fail: Any
           ) -> Tuple[Tuple[str, str], ...]:
    """``thumb: {thumbs_up: up, thumbs_down: down}``: every class of a hand task is a direction
    the thumb points in the picture."""
    if value is None:
        return ()
    example = "e.g. thumb: {thumbs_up: up, thumbs_down: down}"
    if not isinstance(value, Mapping):
        raise fail("thumb", "expected a mapping of each class to up or down, " + example)
    if kind != "classification" or subject != "hand":
        raise fail("thumb", "a thumb's direction needs kind: classification and subject: hand")
    mapping = {str(k): _text(v, "thumb." + str(k), fail, " or ".join(THUMB_DIRECTIONS))
               for k, v in value.items()}
    for name, where in mapping.items():
        if name not in labels:
            raise fail("thumb." + name, "not a class{}; classes are {}".format(
                did_you_mean(name, labels), ", ".join(labels)))
        if where not in THUMB_DIRECTIONS:
            raise fail("thumb." + name, "'{}' is not a direction; use {}".format(
                where, " or ".join(THUMB_DIRECTIONS)))
        same = [c for c in mapping if c != name and mapping[c] == where]
        if same:   # two classes with one direction always score alike
            raise fail("thumb." + name, "'{}' is already class '{}''s direction; each class needs "
                       "its own ({})".format(where, same[0], " or ".join(THUMB_DIRECTIONS)))
    missing = [c for c in labels if c not in mapping]
    if missing:
        raise fail("thumb", f"class '{missing[0]}' has no direction; map every class, {example}")
    return tuple((c, mapping[c]) for c in labels)


def _reject_unknown(raw: Mapping, allowed: Tuple[str, ...], prefix: str, fail: Any) -> None:
    for key in raw:
        if key not in allowed:
            raise fail(prefix + str(key), "unknown key{}; allowed: {}".format(
                did_you_mean(str(key), allowed), ", ".join(allowed)))


def _input_size(value: Any, fail: Any) -> Tuple[int, int]:
    sizes = [value, value] if isinstance(value, int) else value
    if (not isinstance(sizes, (list, tuple)) or len(sizes) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in sizes)
            or not all(32 <= s <= 2048 for s in sizes)):
        raise fail("input_size", f"expected an integer or [height, width] between 32 and 2048, got {_shown(value)}"
                   )
    return int(sizes[0]), int(sizes[1])


def _sim(value: Any, labels: Tuple[str, ...], kind: TaskKind, fail: Any) -> Optional[SimSpec]:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise fail("sim", "expected a mapping with 'scene' (and 'labels' for classes)")
    _reject_unknown(value, SIM_KEYS, "sim.", fail)
    from edge_app.sim.scenes import SCENES  # lazy: the simulator's renderer (numpy), only for sim:

    scene = _text(value.get("scene", ""), "sim.scene", fail, "one of " + ", ".join(SCENES))
    if scene not in SCENES:
        raise fail("sim.scene", "'{}' is not a simulated scene{}; scenes are {}".format(
            scene, did_you_mean(scene, SCENES), ", ".join(SCENES)))
    mapping = value.get("labels") or {}
    if not isinstance(mapping, Mapping):
        raise fail("sim.labels", "expected a mapping of class name to scene pose")
    mapping = {str(k): _text(v, "sim.labels." + str(k), fail, "a pose of the scene")
               for k, v in mapping.items()}
    problem = SCENES[scene].check(kind.labels_key, labels, mapping)
    if problem:
        raise fail("sim.labels" if kind.labels_key == "classes" else "points", problem)
    return SimSpec(scene=scene, labels=tuple((k, mapping[k]) for k in labels if k in mapping))
