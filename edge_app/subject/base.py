"""What the subject stage returns, and the interface every provider implements."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from edge_app.opencv import cv2

SUBJECT_KINDS = ("hand", "face")
RETRY_BORDER = 0.25   # replicated border for the retry, as a fraction of the long side


@dataclass
class Subject:
    """A hand or face in a frame: its box and landmarks in frame pixels."""

    kind: str
    box: Tuple[float, float, float, float]      # x0, y0, x1, y1
    landmarks: Optional[np.ndarray] = None      # (N, 2), provider's own point order
    score: float = 1.0
    source: str = ""                            # the provider that found it
    handedness: Optional[str] = None            # hands: "left" / "right" (the person's own)

    def shifted(self, dx: float, dy: float) -> Subject:
        x0, y0, x1, y1 = self.box
        lm = None if self.landmarks is None else self.landmarks + np.array([dx, dy])
        return replace(self, box=(x0 + dx, y0 + dy, x1 + dx, y1 + dy), landmarks=lm)

    def to_dict(self, frame_size: Tuple[int, int]) -> Dict[str, Any]:
        """JSON form in 0..1 of the frame (``frame_size`` = width, height), as datasets store it."""
        w, h = frame_size
        x0, y0, x1, y1 = self.box
        out: Dict[str, Any] = {"kind": self.kind, "box": [round(x0 / w, 5), round(y0 / h, 5),
                                                         round(x1 / w, 5), round(y1 / h, 5)],
                               "score": round(float(self.score), 4), "source": self.source}
        if self.landmarks is not None:
            out["landmarks"] = np.round(self.landmarks / np.array([w, h]), 5).tolist()
        if self.handedness:
            out["handedness"] = self.handedness
        return out

    @classmethod
    def from_dict(cls, d: Dict[str, Any], frame_size: Tuple[int, int]) -> Subject:
        """Inverse of :meth:`to_dict` (also reads the simulator's ground truth)."""
        w, h = frame_size
        x0, y0, x1, y1 = (float(v) for v in d["box"])
        lm = d.get("landmarks")
        return cls(kind=str(d.get("kind", "hand")), box=(x0 * w, y0 * h, x1 * w, y1 * h),
                   landmarks=None if lm is None else np.asarray(lm, dtype=np.float64) * np.array([w, h]),
                   score=float(d.get("score", 1.0)), source=str(d.get("source", "stored")),
                   handedness=d.get("handedness"))


class SubjectFinder(ABC):
    """Finds one subject of ``kind`` per frame. ``tracking`` providers may use the previous
    frame to find it again cheaply; :meth:`reset` forgets it (a new video, an image set)."""

    name = "finder"

    def __init__(self, kind: str, tracking: bool = False) -> None:
        self.kind, self.tracking = kind, tracking

    @abstractmethod
    def find(self, image: np.ndarray, truth: Optional[Dict[str, Any]] = None) -> Optional[Subject]:
        """The subject in a BGR image, or None when there is none."""

    def find_again(self, image: np.ndarray) -> Optional[Subject]:
        """A fresh search that does not disturb tracking (used by the border retry)."""
        return self.find(image)

    def find_weak(self, image: np.ndarray) -> Optional[Subject]:
        """A fresh search that may accept weaker detections (the hard search's threshold);
        providers without a threshold search as :meth:`find_again` does."""
        return self.find_again(image)

    def find_hard(self, image: np.ndarray) -> Optional[Subject]:
        """A last, more permissive search for stills known to show a subject (labelled
        images): the first of :meth:`attempts` that finds one. Providers without attempts
        return None."""
        for attempt in self.attempts(image):
            found = attempt.run()
            if found is not None:
                return found
        return None

    def attempts(self, image: np.ndarray) -> Iterator[Attempt]:
        """The hard search as single searches, cheapest and likeliest first, each under the
        camera look it tries: eval's search runs them all, the live loop a few per missed
        frame (:class:`edge_app.subject.search.SubjectSearch`). None by default."""
        return iter(())

    def reset(self) -> None:
        """Forget tracking state."""

    def close(self) -> None:
        """Release the provider's resources."""

    def __enter__(self) -> SubjectFinder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def clip_box(box: Tuple[float, float, float, float], w: int, h: int) -> Tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    return (min(max(x0, 0.0), w), min(max(y0, 0.0), h), min(max(x1, 0.0), w), min(max(y1, 0.0), h))


def with_border(image: np.ndarray, fraction: float = RETRY_BORDER) -> Tuple[np.ndarray, int]:
    """``image`` inside a replicated border of ``fraction`` of its long side; and the border."""
    pad = max(1, int(round(max(image.shape[:2]) * fraction)))
    return cv2().copyMakeBorder(image, pad, pad, pad, pad, cv2().BORDER_REPLICATE), pad


def find_bordered(search: Callable[[np.ndarray], Optional[Subject]], image: np.ndarray,
                  fraction: float = RETRY_BORDER) -> Optional[Subject]:
    """``search`` on ``image`` inside a replicated border, the result mapped back to it."""
    padded, pad = with_border(image, fraction)
    found = search(padded)
    if found is None:
        return None
    found = found.shifted(-pad, -pad)
    h, w = image.shape[:2]
    return replace(found, box=clip_box(found.box, w, h))


def find_with_retry(finder: SubjectFinder, image: np.ndarray, always: bool = False,
                    hard: bool = False) -> Optional[Subject]:
    """Detectors miss subjects that fill the frame: on a miss (first, for images that are
    already crops) look again inside a replicated border, and map the result back. ``hard``
    (labelled stills) ends with the provider's permissive :meth:`SubjectFinder.find_hard`."""
    found = None if always else finder.find(image)
    if found is None:
        found = find_bordered(finder.find_again, image)
    if found is None and always:
        found = finder.find(image)
    if found is None and hard:
        found = finder.find_hard(image)
    return found


# -- the hard search's looks at a difficult still (labelled images only) ------------------
@dataclass
class Look:
    """The image as the hard search sees it once more, and how its pixels map back:
    ``original = look / scale + (x0, y0)``."""

    name: str
    image: np.ndarray
    scale: float = 1.0
    x0: float = 0.0
    y0: float = 0.0

    def back(self, found: Subject, w: int, h: int) -> Subject:
        """A subject found in this look, in the original image's pixels (box clipped)."""
        bx0, by0, bx1, by1 = found.box
        s = self.scale
        lm = None if found.landmarks is None else found.landmarks / s + np.array([self.x0, self.y0])
        box = (bx0 / s + self.x0, by0 / s + self.y0, bx1 / s + self.x0, by1 / s + self.y0)
        return replace(found, box=clip_box(box, w, h), landmarks=lm)


@dataclass
class Attempt:
    """One search of the hard search: ``run()`` searches once and returns what it found in
    the original image's pixels; ``look`` names the camera look it tried (``plain``,
    ``grey_world``, ``exposure``, ``denoised``, ``window``, ...)."""

    look: str
    run: Callable[[], Optional[Subject]]


def hard_attempts(weak: Callable[[np.ndarray], Optional[Subject]], image: np.ndarray) -> Iterator[Attempt]:
    """The hard search of ``image`` with a permissive single search ``weak``: the image, inside
    a replicated border and a wider one; then each of :func:`look_makers`, alone and inside a
    border (windows alone: a border there would show what is not there), mapped back. Lazy:
    a look is computed only when an attempt that needs it runs."""
    h, w = image.shape[:2]

    def mapped(look: Look, found: Optional[Subject]) -> Optional[Subject]:
        return None if found is None else look.back(found, w, h)

    yield Attempt("plain", lambda: weak(image))
    yield Attempt("plain", lambda: find_bordered(weak, image))
    yield Attempt("plain", lambda: find_bordered(weak, image, 0.5))
    for name, make in look_makers(image):
        yield Attempt(name, lambda make=make: mapped(make(), weak(make().image)))  # type: ignore[misc]
        if name != "window":
            yield Attempt(name, lambda make=make: mapped(  # type: ignore[misc]
                make(), find_bordered(weak, make().image)))


def grey_world(image: np.ndarray) -> np.ndarray:
    """Colour cast removed: each channel scaled so that its mean is the image's grey mean
    (a purple or green camera back to neutral; a neutral image is left nearly as it is)."""
    means = image.reshape(-1, 3).astype(np.float64).mean(axis=0)
    gains = means.mean() / np.maximum(means, 1.0)
    return np.clip(image.astype(np.float32) * gains.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)


def exposure_corrected(image: np.ndarray) -> np.ndarray:
    """Too dark or too bright images brought toward mid-grey: a gamma that puts the median
    lightness at the middle of the range, then local contrast (CLAHE) on lightness only."""
    cv = cv2()
    lab = cv.cvtColor(image, cv.COLOR_BGR2LAB)
    light = lab[:, :, 0].astype(np.float32) / 255.0
    median = float(np.clip(np.median(light), 0.03, 0.97))
    gamma = float(np.clip(np.log(0.5) / np.log(median), 0.3, 3.0))
    lifted = np.clip(np.power(light, gamma) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    lab[:, :, 0] = cv.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4)).apply(lifted)
    return cv.cvtColor(lab, cv.COLOR_LAB2BGR)


# Two strengths (OpenCV's h): the gentle one keeps a low-contrast hand that the strong one
# flattens; the strong one clears heavy noise on a well-lit picture. Measured on noisy thumbs
# and signdigits photos (issue 20 note): either alone finds fewer hands than both in turn.
DENOISE_STRENGTHS = (10.0, 16.0)
DENOISE_SIDE = 640   # larger pictures are shrunk first: the search costs time only on misses


NOISY_SIGMA = 6.0   # estimated noise (grey levels) above which a still is searched cleaned first
# A noisy picture is searched after a Gaussian blur of SMOOTH_SIGMA pixels per SMOOTH_SIDE pixels
# of its short side (the detectors see about that many: a larger picture needs the blur in
# proportion). Non-local means finds as many hands but flattens them into patches where their
# points scatter (hand points against the clean photo's, in hand sizes, noisy fingers_set1:
# 0.115 -> 0.050). A noisy still takes the median of three cleanings (:func:`noisy_looks`).
SMOOTH_SIGMA = 0.7
SMOOTH_SIDE = 240


def shrunk(image: np.ndarray, long_side: int = DENOISE_SIDE) -> Tuple[np.ndarray, float]:
    """``image`` at most ``long_side`` pixels on its long side (area averaging), and the scale."""
    h, w = image.shape[:2]
    scale = min(1.0, long_side / float(max(h, w, 1)))
    if scale == 1.0:
        return image, 1.0
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    return cv2().resize(image, size, interpolation=cv2().INTER_AREA), scale


def noise_level(image: np.ndarray, long_side: int = DENOISE_SIDE) -> float:
    """The picture's noise as a Gaussian sigma in grey levels, measured at most ``long_side``
    pixels wide (as the denoised look sees it): the median of a Laplacian-like residual that
    cancels smooth shading (Immerkaer's kernel), so edges and texture, being sparse, barely
    count. Clean photos here read 0.2-3.5, sigma-14 sensor noise about 9."""
    if image.size == 0:
        return 0.0
    cv = cv2()
    grey, _ = shrunk(cv.cvtColor(image, cv.COLOR_BGR2GRAY) if image.ndim == 3 else image, long_side)
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    residual = cv.filter2D(grey.astype(np.float32), -1, kernel)[1:-1, 1:-1]
    if residual.size == 0:
        return 0.0
    # |residual| of Gaussian noise: median = 0.6745 * 6 * sigma (the kernel's norm is 6)
    return float(np.median(np.abs(residual)) / (0.6745 * 6.0))


def denoised(image: np.ndarray, strength: float, long_side: int = DENOISE_SIDE) -> Look:
    """``image`` with sensor noise removed (non-local means on colour), shrunk first to at most
    ``long_side`` pixels on its long side (area averaging removes noise too)."""
    small, scale = shrunk(image, long_side)
    return Look("denoised", cv2().fastNlMeansDenoisingColored(small, None, strength, strength, 7, 21), scale)


def smoothed(image: np.ndarray, strength: float = 1.0) -> Look:
    """``image`` with sensor noise blurred away for the detector: a Gaussian of ``strength`` x
    ``SMOOTH_SIGMA`` pixels per ``SMOOTH_SIDE`` of its short side (smaller pictures as if they
    had that side); the same size, so points map back as they are."""
    sigma = strength * SMOOTH_SIGMA * max(1.0, min(image.shape[:2]) / float(SMOOTH_SIDE))
    return Look("smoothed", cv2().GaussianBlur(image, (0, 0), sigma))


SMOOTH_STRONG = 2.0   # the strong smoothing of a noisy still, in SMOOTH_SIGMAs


def noisy_looks(image: np.ndarray) -> Iterator[Look]:
    """How a noisy still is cleaned for the search, whose finds the caller takes the median of:
    lightly and strongly smoothed, and non-local means. Each alone wins on some cameras and
    loses on others (300 of the signdigits photos with sensor noise, and darkened as well, count
    rule: light 81% / 61%, non-local means 74% / 70%, the median of the three finds' points
    83% / 74%; fingers_set1 and thumbs agreed on noise, not on dark+noise)."""
    yield smoothed(image)
    yield smoothed(image, SMOOTH_STRONG)
    if DENOISE_STRENGTHS and image.ndim == 3:   # OpenCV's colour non-local means
        yield denoised(image, DENOISE_STRENGTHS[-1])


def box_iou(a: Tuple[float, float, float, float], b: Tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def upscaled(image: np.ndarray, short_side: int) -> Look:
    """``image`` enlarged (bicubic) so its short side is at least ``short_side``, with a
    little sharpening against the softness of a low-resolution camera."""
    cv = cv2()
    h, w = image.shape[:2]
    scale = max(1.0, short_side / float(min(h, w)))
    big = cv.resize(image, (int(round(w * scale)), int(round(h * scale))), interpolation=cv.INTER_CUBIC)
    soft = cv.GaussianBlur(big, (0, 0), 1.0 * scale)
    sharp = cv.addWeighted(big, 1.5, soft, -0.5, 0)
    return Look("upscaled", sharp, scale)


def windows(image: np.ndarray, fraction: float = 0.5, short_side: int = 192) -> List[Look]:
    """Overlapping windows of ``fraction`` of the image's side (a 3x3 grid, centre first),
    each enlarged so a small, far subject fills more of what the detector sees."""
    cv = cv2()
    h, w = image.shape[:2]
    ww, wh = max(1, int(round(w * fraction))), max(1, int(round(h * fraction)))
    spots = [(0.5, 0.5)] + [(fx, fy) for fy in (0.0, 0.5, 1.0) for fx in (0.0, 0.5, 1.0)
                            if (fx, fy) != (0.5, 0.5)]
    out = []
    for fx, fy in spots:
        x0, y0 = int(round((w - ww) * fx)), int(round((h - wh) * fy))
        crop = image[y0:y0 + wh, x0:x0 + ww]
        scale = max(1.0, short_side / float(min(wh, ww)))
        big = cv.resize(crop, (int(round(ww * scale)), int(round(wh * scale))), interpolation=cv.INTER_CUBIC)
        out.append(Look("window", big, scale, float(x0), float(y0)))
    return out


def _once(make: Callable[[], Look]) -> Callable[[], Look]:
    """``make`` computed on the first call only."""
    done: List[Look] = []

    def get() -> Look:
        if not done:
            done.append(make())
        return done[0]
    return get


def look_makers(image: np.ndarray, small: int = 192) -> List[Tuple[str, Callable[[], Look]]]:
    """What the hard search tries after the image itself, cheapest and likeliest first, each
    computed when first asked for: colour normalised, exposure corrected, both, sensor noise
    removed (alone, then with the colour and exposure corrected; a gentle strength, then a
    strong one), the image enlarged when it is small, then windows for a far subject."""
    grey = _once(lambda: Look("grey_world", grey_world(image)))
    out: List[Tuple[str, Callable[[], Look]]] = [
        ("grey_world", grey),
        ("exposure", _once(lambda: Look("exposure", exposure_corrected(image)))),
        ("grey_world+exposure", _once(lambda: Look("grey_world+exposure",
                                                   exposure_corrected(grey().image))))]
    for strength in DENOISE_STRENGTHS:
        clean = _once(lambda strength=strength: denoised(image, strength))  # type: ignore[misc]
        out.append(("denoised", clean))
        out.append(("denoised+grey_world+exposure", _once(lambda clean=clean: replace(  # type: ignore[misc]
            clean(), name="denoised+grey_world+exposure",
            image=exposure_corrected(grey_world(clean().image))))))
    if min(image.shape[:2]) < small:
        out.append(("upscaled", _once(lambda: upscaled(image, small))))
    views: List[List[Look]] = []   # the nine windows, cut together when the first is asked for

    def window(i: int) -> Look:
        if not views:
            views.append(windows(image))
        return views[0][i]
    out += [("window", lambda i=i: window(i)) for i in range(9)]  # type: ignore[misc]
    return out


def hard_looks(image: np.ndarray, small: int = 192) -> Iterator[Look]:
    """The looks of :func:`look_makers`, computed one after the other."""
    for _, make in look_makers(image, small):
        yield make()
