"""``sim://TASK``: a simulated camera that renders the task's scene with known ground truth."""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from edge_app.errors import SourceError, did_you_mean
from edge_app.sim.backdrop import Light, NoiseBank, background, draw_light
from edge_app.sim.crowd import render_crowd
from edge_app.sim.scenes import SCENES, Scene, render
from edge_app.sources.base import FrameSource
from edge_app.tasks.spec import TaskSpec


def pace(next_time: float, fps: float) -> float:
    """Sleep until ``next_time`` (a live camera's frame interval); the next frame's time."""
    delay = next_time - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    return max(next_time + 1.0 / fps, time.monotonic())


MIN_SIDE, MAX_SIDE = 32, 4096   # below 32 px the scenes cannot be drawn; 4096 is 4K and past
MAX_FPS = 1000.0                # a frame is ~50 MB at 4096x4096, and what else would be asked for?


def check_settings(uri: str, size: Tuple[int, int], fps: float, count: Optional[int]) -> None:
    """Refuse sizes the simulator cannot draw or memory cannot hold, in one line: a negative
    size used to end in a numpy traceback, a huge one in an attempt to allocate 224 GiB."""
    for name, value, usual in zip(("width", "height"), size, (640, 480)):
        if not MIN_SIDE <= value <= MAX_SIDE:
            raise SourceError(f"{uri}: {name} {value} is out of range: the simulated camera draws {MIN_SIDE} to {MAX_SIDE} "
                              f"pixels, e.g. {name}={usual}")
    if not 0.0 <= fps <= MAX_FPS:   # also refuses NaN
        raise SourceError(f"{uri}: fps {fps} is out of range: 0 (as fast as asked) to {MAX_FPS:g}")
    if count is not None and count < 0:
        raise SourceError(f"{uri}: count {count} is negative: give the number of frames, e.g. count=100"
                          )


class Setting:
    """The room a simulated camera is in: by default a new backdrop and lighting every frame
    (the variety training wants); ``background=N`` / ``lighting=N`` hold one of each fixed,
    drawn from seed N, so "trained in one room, deployed in another" can be staged."""

    def __init__(self, backdrop: Optional[np.ndarray] = None, light: Optional[Light] = None) -> None:
        self.backdrop, self.light = backdrop, light

    @classmethod
    def make(cls, uri: str, size: Tuple[int, int], background_seed: Optional[int],
             lighting_seed: Optional[int]) -> Setting:
        """The setting for the ``background`` and ``lighting`` seeds (None: varied)."""
        for name, seed in (("background", background_seed), ("lighting", lighting_seed)):
            if seed is not None and not 0 <= seed < 2 ** 63:
                raise SourceError(f"{uri}: {name} {seed} is out of range: a seed from 0 to 2**63-1, e.g. "
                                  f"{name}=1")
        w, h = size
        backdrop = None if background_seed is None else background(
            np.random.default_rng(background_seed), h, w)
        light = None if lighting_seed is None else draw_light(np.random.default_rng(lighting_seed))
        return cls(backdrop, light)


class _Rendered(FrameSource):
    """What simulated sources share: a seeded generator and sensor noise, restarted on open,
    and a camera's pace when ``fps`` > 0."""

    def _setup(self, size: Tuple[int, int], fps: float, seed: Optional[int], clean: bool,
               count: Optional[int]) -> None:
        check_settings(self.uri, (int(size[0]), int(size[1])), float(fps), count)
        if seed is not None and not 0 <= seed < 2 ** 63:
            raise SourceError(f"{self.uri}: seed {seed} is out of range: 0 to 2**63-1")
        self.has_truth = True
        self.size = (int(size[0]), int(size[1]))
        self.fps, self.live = float(fps), fps > 0
        self.clean, self.count, self._seed = clean, count, seed
        self._rng = np.random.default_rng(seed)
        self._noise: Optional[NoiseBank] = None
        self._next_time = 0.0
        self.info.width, self.info.height, self.info.fps = self.size[0], self.size[1], self.fps
        self.info.fourcc = "SIM"

    def open(self) -> None:
        self._rng = np.random.default_rng(self._seed)
        self._noise = None if self.clean else NoiseBank(self.size[1], self.size[0], seed=int(
            self._rng.integers(1 << 31)))
        self._next_time = time.monotonic()
        self._next_id = 0


class SimSource(_Rendered):
    """Renders frames of a task's sim scene. Classes come in shuffled, balanced rounds unless
    one is set with :meth:`set_label` (what a person posing for the capture tool would do).
    ``fps`` > 0 paces it like a real camera (and makes it live); 0 renders as fast as asked."""

    def __init__(self, uri: str, task: TaskSpec, width: int = 640, height: int = 480,
                 fps: float = 0.0, seed: Optional[int] = None, label: Optional[str] = None,
                 clean: bool = False, count: Optional[int] = None,
                 background: Optional[int] = None, lighting: Optional[int] = None) -> None:
        super().__init__(uri)
        if task.sim is None:
            raise SourceError(f"{uri}: task '{task.name}' has no 'sim:' section, so it cannot be simulated; "
                              "add one (see configs/thumbs.yaml) or use a camera")
        self._setup((width, height), fps, seed, clean, count)
        self.setting = Setting.make(uri, self.size, background, lighting)
        self.task = task
        self.scene: Scene = SCENES[task.sim.scene]
        self._label = label
        self._queue: List[str] = []
        if label is not None:
            self.set_label(label)

    def request_label(self, label: Optional[str]) -> bool:
        """Render only ``label`` from now on (None: all classes again)."""
        self.set_label(label)
        return True

    def set_label(self, label: Optional[str]) -> None:
        """Render only ``label`` from now on (None: all classes again)."""
        if label is not None and label not in self.task.classes:
            raise SourceError("{}: '{}' is not a class of task '{}'{}; classes: {}".format(
                self.uri, label, self.task.name, did_you_mean(label, self.task.classes),
                ", ".join(self.task.classes)))
        self._label = label

    def _next_label(self) -> Optional[str]:
        if not self.task.classes:
            return None
        if self._label is not None:
            return self._label
        if not self._queue:
            self._queue = [str(c) for c in self._rng.permutation(list(self.task.classes))]
        return self._queue.pop()

    def _grab(self) -> Optional[Tuple[np.ndarray, Dict[str, Any]]]:
        if self.count is not None and self._next_id >= self.count:
            return None
        if self.live:
            self._next_time = pace(self._next_time, self.fps)
        label = self._next_label()
        if label is not None:
            pose = self.task.sim.pose_for(label) if self.task.sim else label
        else:
            pose = self.scene.poses[int(self._rng.integers(len(self.scene.poses)))]
        image, subject = render(self.scene, pose, self._rng, self.size, clean=self.clean,
                                noise=self._noise, backdrop=self.setting.backdrop,
                                light=self.setting.light)
        return image, {"truth": self._truth(label, pose, subject)}

    def _truth(self, label: Optional[str], pose: str, subject: Dict[str, Any]) -> Dict[str, Any]:
        w, h = self.size
        scale = np.array([w, h], dtype=np.float64)
        lm = np.asarray(subject["landmarks"]) / scale
        x0, y0, x1, y1 = subject["box"]
        truth: Dict[str, Any] = {
            "task": self.task.name, "pose": pose, "label": label,
            "subject": {"kind": self.scene.name,
                        "box": [round(x0 / w, 5), round(y0 / h, 5), round(x1 / w, 5), round(y1 / h, 5)],
                        "landmarks": np.round(lm, 5).tolist()},
        }
        if "handedness" in subject:
            truth["subject"]["handedness"] = subject["handedness"]
        if self.task.points:
            names = self.scene.landmark_names
            truth["points"] = {p: np.round(lm[names.index(p)], 5).tolist() for p in self.task.points}
        return truth


class CrowdSource(_Rendered):
    """``sim://crowd``: several hands and faces a frame (see :mod:`edge_app.sim.crowd`), every
    one's box and landmarks in the frame's ground truth (``subjects``)."""

    def __init__(self, uri: str, width: int = 640, height: int = 480, fps: float = 0.0,
                 seed: Optional[int] = None, clean: bool = False, count: Optional[int] = None,
                 hold: int = 1) -> None:
        super().__init__(uri)
        self.hold = max(1, int(hold))   # frames one scene stays in view, drifting (for tracking)
        self._scene: Tuple[np.ndarray, List[Dict[str, Any]]] = (np.zeros(0), [])
        self._setup((width, height), fps, seed, clean, count)


    def _grab(self) -> Optional[Tuple[np.ndarray, Dict[str, Any]]]:
        if self.count is not None and self._next_id >= self.count:
            return None
        if self.live:
            self._next_time = pace(self._next_time, self.fps)
        step = self._next_id % self.hold
        if step == 0:
            self._scene = render_crowd(self._rng, self.size, self.clean, self._noise)
        image, subjects = _drift(*self._scene, step)
        w, h = self.size
        scale = np.array([w, h], np.float64)
        truth = [{"kind": s["kind"], "box": np.round(np.asarray(s["box"]) / np.tile(scale, 2), 5).tolist(),
                  "landmarks": np.round(np.asarray(s["landmarks"]) / scale, 5).tolist()}
                 for s in subjects]
        return image, {"truth": {"scene": "crowd", "subjects": truth}}


def _drift(image: np.ndarray, subjects: List[Dict[str, Any]], step: int) -> Tuple[np.ndarray, List[Dict[str, Any]]]:
    """The scene moved ``step`` pixels right and half as many down (a slow pan), truth too."""
    if step == 0:
        return image, subjects
    import cv2

    h, w = image.shape[:2]
    dx, dy = float(step), step / 2.0
    moved = cv2.warpAffine(image, np.array([[1, 0, dx], [0, 1, dy]], np.float32), (w, h),
                           borderMode=cv2.BORDER_REPLICATE)
    out = []
    for s in subjects:
        box = np.asarray(s["box"], np.float64) + [dx, dy, dx, dy]
        out.append(dict(s, box=box.clip(0, [w, h, w, h]).tolist(),
                        landmarks=np.asarray(s["landmarks"]) + [dx, dy]))
    return moved, out
