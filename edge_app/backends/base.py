"""The interface every inference backend implements, and the input conversion they share.

Every backend takes the same input, a batch of RGB uint8 frames already resized to the model
input (N, H, W, 3), or a landmark model's (N, F) features, or for a model with several inputs
a tuple of those in the graph's input order; and returns the exported graph's outputs (class
probabilities, or points). Backends live in their own modules and import this one; the
registry that names them is :mod:`edge_app.backends.registry`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Dict, Literal, Optional, Sequence, Tuple, Type, TypeVar, Union

import numpy as np

# For annotations only: edge_app.model.info imports edge_app.detect, whose built-in detectors
# are backends, so importing it here would close a cycle.
if TYPE_CHECKING:
    from edge_app.model.info import ModelInfo

Batch = Union[np.ndarray, Sequence[np.ndarray]]
Precision = Literal["fp32", "fp16", "int8"]
B = TypeVar("B", bound="Backend")


def as_inputs(batch: Batch) -> Tuple[np.ndarray, ...]:
    """One graph input per item, each as the graph takes it (see :func:`to_nchw`)."""
    items = (batch,) if isinstance(batch, np.ndarray) else tuple(batch)
    return tuple(to_nchw(b) for b in items)


def to_nchw(batch: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 frames -> (N, 3, H, W) float32 pixels; normalisation is in the
    graph. Anything else (a landmark model's (N, F) features, a detector's input already
    normalised and laid out for its graph) is passed on as float32."""
    if batch.ndim != 4 or batch.dtype != np.uint8:
        return np.ascontiguousarray(batch, dtype=np.float32)
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)


@dataclass(frozen=True)
class BackendOptions:
    """Run settings beyond the thread count; each backend reads those that apply to it."""

    subject_provider: str = "auto"   # the built-in detectors: truth on sim://, else MediaPipe
    tracking: bool = True            # ... and whether they track hands between frames


class Backend(ABC):
    """One way to run a model. A context manager: ``with make_backend(...) as b:`` closes it
    however the block ends (commands hold several in one ``contextlib.ExitStack``)."""

    name = ""
    precision: Precision = "fp32"

    def __init__(self, threads: Optional[int] = None) -> None:
        """``threads``: CPU threads, for the backends that use them."""

    @classmethod
    def create(cls: Type[B], threads: Optional[int] = None,
               options: Optional[BackendOptions] = None) -> B:
        """A backend of this kind for these settings; the registry makes backends this way,
        so a backend with settings of its own overrides it to read them from ``options``."""
        return cls(threads=threads)

    @abstractmethod
    def load(self, model: ModelInfo) -> None:
        """Prepare the model; raise UserError saying why it cannot load."""

    @abstractmethod
    def infer(self, batch: Batch) -> np.ndarray:
        """Outputs for a batch of resized RGB uint8 frames (or features; see the module)."""

    def infer_all(self, batch: Batch) -> Dict[str, np.ndarray]:
        """Every output of the graph by name (detectors have several)."""
        return {"output": self.infer(batch)}

    def detect(self, image: np.ndarray, batch: Batch,
               truth: Optional[Dict[str, Any]] = None) -> Dict[str, np.ndarray]:
        """A detection model's raw outputs for one frame: ``batch`` is what its detector
        prepared from ``image``; backends that look at the frame itself (and, on simulated
        frames, its ground ``truth``) override this."""
        return self.infer_all(batch)

    def warmup(self, model: ModelInfo, runs: int = 3) -> None:
        """A few inferences so that the first timed frame is not the slowest."""
        dummy = model.dummy_input()
        for _ in range(runs):
            self.infer(dummy)

    def close(self) -> None:
        """Release the session or device memory."""

    def __enter__(self: B) -> B:
        return self

    def __exit__(self, kind: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.close()

    def describe(self) -> str:
        """What runs the model, for the status line (e.g. ``onnx (CPU, 4 threads)``)."""
        return self.name
