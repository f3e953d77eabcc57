"""The registry of input kinds: what a model is fed (the whole frame, the subject's crop, its
landmarks, its landmarks with the texture of its aligned crop, or crop and landmarks
together), and the input plan a bundle records.

Everything that differs between input kinds on the device lives here: the graph's inputs,
whether the subject stage runs, the live input cut from a frame and its subject, a dummy batch,
and the feature layout a landmark model was trained on. What differs in training (the dataset
as the model sees it, the trainer, the model class) lives on the kind's training side, one
module per kind in ``edge_app.train.inputs``, reached through :meth:`InputKind.training` (torch
is imported only there). No other module compares an input kind's name: adding a kind is one
class here, one module in ``edge_app.train.inputs``, and one :func:`register_input` call.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Protocol, Tuple

import numpy as np

from edge_app.errors import UserError, did_you_mean
from edge_app.model.preprocess import to_model_input
from edge_app.registry import Registry, resolve
from edge_app.subject.crop import PAD
from edge_app.subject.landmarks import SCHEMA_KIND, feature_size, landmark_features
from edge_app.subject.stage import crop_for
from edge_app.subject.texture import texture_size, with_texture

if TYPE_CHECKING:   # annotations only: the training side is never imported on the device
    from edge_app.dataset.samples import Dataset
    from edge_app.dataset.subjects import SubjectScan
    from edge_app.model.bundle import Bundle
    from edge_app.tasks.spec import TaskSpec
    from edge_app.train.candidate import Candidate, TrainJob, View

# The layout of landmark features (edge_app.subject.landmarks): bump it whenever the features
# change meaning, so that models trained on another layout are refused instead of misread.
# 2: per-finger measures for hands, Face Mesh points for faces (the plan records the schema);
# the texture block of edge_app.subject.texture (its window, side and cells) is part of it.
LANDMARK_LAYOUT = 2

Size = Tuple[int, int]   # (height, width)


class InputTraining(Protocol):
    """An input kind's training side (``edge_app.train.inputs.<kind>``): what
    :meth:`InputKind.training` hands out. The training types are named for the type checker
    only; the device never imports them."""

    def view(self, ds: Dataset, plan: InputPlan, scan: Optional[SubjectScan],
             task: TaskSpec, progress: bool = False) -> View:
        """``ds`` as this kind's model sees it."""

    def train(self, job: TrainJob) -> Candidate:
        """Train a model of this kind (DatasetError when the data cannot feed it)."""

    def build(self, bundle: Bundle) -> Any:
        """An untrained model shaped like the bundle's, to load its weights into."""

    def predict(self, model: Any, view: View, size: Size, device: Any,
                progress: bool = False) -> np.ndarray:
        """Raw outputs (logits, or points in the view's coordinates) on a view."""

    def scan(self, ds: Dataset, plan: InputPlan, progress: bool) -> Optional[SubjectScan]:
        """The subjects of ``ds`` where this kind needs them."""


class InputKind:
    """One kind of model input. Subclasses set the flags and the live input."""

    name = ""
    graph_inputs: Tuple[str, ...] = ("images",)   # the exported graph's inputs, in order
    subject = False        # needs the subject stage (a hand or face found in the frame)
    landmarks = False      # takes the subject's landmark features
    # ``--input auto``: among candidates within the validation noise of the best, the lowest
    # rank wins (measured on other people's photos: landmarks 95-98%, both 84-86%, crop 55-75%
    # on the hand splits). Frame models are a candidate only when no subject can be found.
    rank = 9
    trainer = ""           # "module:attribute" of its training side (needs torch)
    auto_subjects: Tuple[str, ...] = ("hand", "face")   # subject kinds ``--input auto`` tries it on

    def training(self) -> InputTraining:
        """The kind's training side (a module of ``edge_app.train.inputs``), imported on first use."""
        training: InputTraining = resolve(self.trainer)  # type: ignore[assignment]
        return training

    def auto_candidate(self, has_subject: bool, mode: str, resume: bool) -> bool:
        """Is this kind tried by ``--input auto`` for data with (or without) a subject?"""
        return has_subject == self.subject and not resume

    def feature_width(self, schema: str) -> int:
        """Landmark features per sample for ``schema`` (kinds that take them)."""

        return feature_size(schema)

    def live_input(self, image: np.ndarray, subject: Any, size: Size, pad: float,
                   schema: Optional[str] = None) -> Tuple[Any, Any]:
        """The batch for one frame and what maps the model's output back into the frame
        (``(None, None)`` when the subject has no usable landmarks of the model's ``schema``,
        the plan's :attr:`InputPlan.feature_schema`)."""
        raise NotImplementedError

    def dummy(self, batch: int, size: Size, plan: InputPlan) -> Any:
        """A zero batch shaped like the live input (warm-up, benchmarks)."""
        h, w = size
        zeros = {"images": np.zeros((batch, h, w, 3), np.uint8),
                 "landmarks": np.zeros((batch, plan.features), np.float32)}
        arrays = tuple(zeros[name] for name in self.graph_inputs)
        return arrays[0] if len(arrays) == 1 else arrays

    def describe_input(self, size: Size, plan: InputPlan) -> str:
        """The input a person would recognise in a listing (``224x224``, ``86 landmarks``)."""
        return f"{size[1]}x{size[0]}"


class FrameInput(InputKind):
    """The whole frame, resized."""

    name = "frame"
    trainer = "edge_app.train.inputs.frame:FRAME"

    def auto_candidate(self, has_subject: bool, mode: str, resume: bool) -> bool:
        return not has_subject

    def live_input(self, image: np.ndarray, subject: Any, size: Size, pad: float,
                   schema: Optional[str] = None) -> Tuple[Any, Any]:

        return to_model_input(image, size)[None], None


class CropInput(InputKind):
    """The subject's square crop, resized."""

    name = "crop"
    subject = True
    rank = 3
    trainer = "edge_app.train.inputs.crop:CROP"

    def auto_candidate(self, has_subject: bool, mode: str, resume: bool) -> bool:
        return has_subject   # the one that resumes: its checkpoint is what --resume continues

    def live_input(self, image: np.ndarray, subject: Any, size: Size, pad: float,
                   schema: Optional[str] = None) -> Tuple[Any, Any]:

        crop, cb = crop_for(image, subject, pad, size)
        return crop[None], cb


class LandmarksInput(InputKind):
    """The subject's normalised landmarks (edge_app.subject.landmarks)."""

    name = "landmarks"
    graph_inputs = ("landmarks",)
    subject = True
    landmarks = True
    rank = 0
    trainer = "edge_app.train.inputs.landmarks:LANDMARKS"

    def live_input(self, image: np.ndarray, subject: Any, size: Size, pad: float,
                   schema: Optional[str] = None) -> Tuple[Any, Any]:

        found = landmark_features(subject, schema)
        return (None, None) if found is None else (found[0][None], found[1])

    def describe_input(self, size: Size, plan: InputPlan) -> str:
        return f"{plan.features} landmarks"


class TextureInput(LandmarksInput):
    """The landmarks and a HOG of the subject's crop turned upright in its own frame
    (edge_app.subject.texture), side by side in one feature vector: what points alone cannot
    show (brows drawn together, a wrinkled nose) for a millisecond and no CNN. Auto tries it
    on faces only: on hands it would learn the training person's skin and background."""

    name = "texture"
    rank = 1
    trainer = "edge_app.train.inputs.texture:TEXTURE"
    auto_subjects = ("face",)

    def feature_width(self, schema: str) -> int:

        return feature_size(schema) + texture_size()

    def live_input(self, image: np.ndarray, subject: Any, size: Size, pad: float,
                   schema: Optional[str] = None) -> Tuple[Any, Any]:

        found = with_texture(image, subject, schema)
        return (None, None) if found is None else (found[0][None], found[1])

    def describe_input(self, size: Size, plan: InputPlan) -> str:
        return f"{plan.features} landmark and texture features"


class BothInput(InputKind):
    """The crop and the landmarks side by side, one graph with two inputs."""

    name = "both"
    graph_inputs = ("images", "landmarks")
    subject = True
    landmarks = True
    rank = 2
    trainer = "edge_app.train.inputs.both:BOTH"

    def auto_candidate(self, has_subject: bool, mode: str, resume: bool) -> bool:
        # in fast mode it costs seconds (the crop CNN's features are cached); in full mode
        # it would fine-tune a second CNN
        return has_subject and mode == "fast" and not resume

    def live_input(self, image: np.ndarray, subject: Any, size: Size, pad: float,
                   schema: Optional[str] = None) -> Tuple[Any, Any]:

        found = landmark_features(subject, schema)
        if found is None:
            return None, None
        crop, cb = crop_for(image, subject, pad, size)
        return (crop[None], found[0][None]), cb


INPUT_KINDS: Registry[InputKind] = Registry("input kind")


def register_input(kind: InputKind) -> InputKind:
    """Add an input kind to the registry."""
    return INPUT_KINDS.register(kind.name, kind)


FRAME = register_input(FrameInput())
CROP = register_input(CropInput())
LANDMARKS = register_input(LandmarksInput())
TEXTURE = register_input(TextureInput())
BOTH = register_input(BothInput())


def input_kind(name: str, source: str = "input") -> InputKind:
    """The registered kind called ``name``, or one line naming the choices."""
    try:
        return INPUT_KINDS[name]
    except (KeyError, TypeError):
        raise UserError("{}: unknown input kind {!r}{}; known: {}".format(
            source, name, did_you_mean(str(name), INPUT_KINDS), ", ".join(INPUT_KINDS)))


def input_names() -> Tuple[str, ...]:
    """The registered kinds' names (``--input`` choices besides ``auto``)."""
    return tuple(INPUT_KINDS)


def auto_candidates(has_subject: bool, mode: str, resume: bool, subject: Optional[str] = None
                    ) -> List[InputKind]:
    """The kinds ``--input auto`` trains for ``subject`` ("hand", "face"), most general first
    (see :attr:`InputKind.rank`)."""
    found = [k for k in INPUT_KINDS.values() if k.auto_candidate(has_subject, mode, resume)
             and (subject is None or not k.subject or subject in k.auto_subjects)]
    return sorted(found, key=lambda k: k.rank)


@dataclass
class InputPlan:
    """What the model sees; saved in the bundle (and the ONNX metadata) and followed by every
    later stage."""

    input: str                       # a registered input kind
    subject: Optional[str] = None    # "hand" | "face"
    pad: float = PAD
    provider: str = "auto"
    crops: bool = False              # the training images were declared crops
    detection_rate: Optional[float] = None
    reason: str = ""
    features: int = 0                # landmark features per sample (models that take them)
    embed: int = 0                   # the crop CNN's pooled features (fused models)
    layout: int = 0                  # LANDMARK_LAYOUT of those features (0: none used)
    schema: str = ""                 # their points (edge_app.subject.landmarks.SCHEMA_POINTS)

    @property
    def feature_schema(self) -> Optional[str]:
        """The landmark schema the model reads (older plans: the subject kind's own)."""
        if not self.kind.landmarks:
            return None
        return self.schema or self.subject

    @property
    def kind(self) -> InputKind:
        return input_kind(self.input)

    @property
    def subject_kind(self) -> Optional[str]:
        """'hand' or 'face' when the model needs the subject stage, else None."""
        return self.subject if self.kind.subject else None

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any, source: str) -> InputPlan:
        """A saved plan, validated (one line naming ``source`` when it is malformed). Plans
        from before the subject stage are whole frames; keys of later releases are ignored;
        landmark plans saved before layouts were versioned used layout 1."""
        if data is None:
            return cls(FRAME.name)
        if not isinstance(data, Mapping):
            raise UserError(f"{source}: input_plan must be a mapping, got {type(data).__name__}")
        values = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        values.setdefault("input", FRAME.name)
        kind = input_kind(values["input"], source + ": input_plan")
        for f in dataclasses.fields(cls)[1:]:   # the kind's name is checked above
            if f.name in values and not _type_ok(values[f.name], f.default):
                raise UserError(f"{source}: input_plan.{f.name} has the wrong type ({values[f.name]!r})")
        if kind.landmarks and not values.get("layout"):
            values["layout"] = 1
        return cls(**values)

    def check_layout(self, source: str) -> None:
        """A model trained on another landmark feature layout would read garbage: refused."""

        schema = self.feature_schema
        if schema is None or self.subject not in SCHEMA_KIND.values():
            return
        want = self.kind.feature_width(schema) if schema in SCHEMA_KIND else -1
        if self.layout != LANDMARK_LAYOUT or self.features != want:
            raise UserError(f"{source}: a landmark model for {self.features} features of layout {self.layout}, but this version "
                            f"computes {want} of layout {LANDMARK_LAYOUT}; retrain it (edge-app train ... --input {self.input}) "
                            "and export it again")


def _type_ok(value: Any, default: Any) -> bool:
    """Does a saved value have the type of the field's default (None: str or None)?"""
    if default is None:
        return value is None or isinstance(value, (str, int, float)) and not isinstance(value, bool)
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, type(default))
