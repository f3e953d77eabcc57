"""The camera-shift suite: the same photos as other cameras would show them (a tint, too little or
too much light, backlight, few pixels, motion blur, a far subject, a camera turned on its side),
with fixed parameters so that anyone can rerun it and get the same images.

Each shift is a pure function of the image (and, for backlight, of the subject's box when it is
known); nothing is random. :func:`render_dataset` writes a class-folder dataset through one
shift into a new folder with the same layout. A rotation shift turns the pictures and declares
it in the copy's ``dataset.yaml`` (``rotate: <deg>``: turn each image clockwise by that many
degrees to make it upright), because rotation is a property of the camera, never decided per
image (a thumbs-up turned by 180 degrees is a thumbs-down).

The parameters (issue 21):

==========  ===============================================================================
purple      B x1.25, G x0.70, R x1.25 (clipped): a CSI camera without its IR filter tuned
green       B x0.8, G x1.2, R x0.8 (clipped): a white balance gone green
dark        every channel x0.35: under-exposed
bright      every channel x2.0, clipped at 255: over-exposed
backlight   the frame outside the kept region moved 85% of the way to white, fading in over 3%
            of the short side outward from the region's edge, so the region itself is untouched.
            The kept region is the subject's box grown by 10% of its side on each edge when the
            box is known (``subjects.jsonl`` of the source, or ``box=``), else the centred
            rectangle whose sides are sqrt(0.4) of the frame's: 40% of the area kept, the
            outer 60% brightened
lowres      the short side brought down to 64 px (area averaging) and back up (bilinear)
blur        a horizontal 9 px line kernel (each pixel the mean of 9 in a row), edges replicated
far         the photo shrunk to 1/3 of its width and height (area averaging), centred on a
            canvas of its own size filled with its edge colour (the per-channel median of the
            outermost row and column of pixels)
noise       sensor noise of a small camera in dim light (a CSI camera's gain turned up):
            Gaussian, sigma 14 per channel, clipped; the draw is seeded from the image's own
            bytes (PCG64 raw bits through Box-Muller, stable across numpy versions), so the
            same photo always gets the same noise
rot90       turned 90 degrees counter-clockwise, declared ``rotate: 90``
rot180      turned 180 degrees, declared ``rotate: 180``
==========  ===============================================================================
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from edge_app.camera.rotation import inverse, rotate_image, rotate_normalized
from edge_app.dataset.atomic import atomic_write_bytes, atomic_write_text, json_text
from edge_app.dataset.formats import read_dataset
from edge_app.dataset.meta import read_meta
from edge_app.dataset.samples import META_FILE, NATIVE_FORMAT, SUBJECTS_FILE
from edge_app.dataset.verify import read_image
from edge_app.errors import DatasetError, UserError, did_you_mean
from edge_app.image_files import list_images
from edge_app.opencv import cv2
from edge_app.registry import Registry

# Bump when a shift's output changes: rendered copies with another version are rendered again.
SHIFTS_VERSION = 1
MANIFEST = ".shift.json"
Box = Tuple[float, float, float, float]   # x0, y0, x1, y1 in pixels

BACKLIGHT_KEEP_AREA = 0.4     # centred region kept when the subject's box is unknown
BACKLIGHT_WHITE = 0.85        # how far toward white the rest goes
BACKLIGHT_FEATHER = 0.03      # fade width outward from the kept region, of the short side
BACKLIGHT_BOX_MARGIN = 0.10   # the subject's box grown by this much of its side per edge
LOWRES_SIDE = 64
BLUR_LENGTH = 9
FAR_SCALE = 1.0 / 3.0
NOISE_SIGMA = 14.0


@dataclass(frozen=True)
class Shift:
    """One camera shift: ``apply(image, box)`` returns the shifted BGR image; ``rotate`` is the
    clockwise turn (degrees) that makes the result upright again (0 for all but rotations)."""

    name: str
    description: str
    apply: Callable[[np.ndarray, Optional[Box]], np.ndarray] = field(compare=False)
    rotate: int = 0
    # where points (0..1 of the frame, (N, 2)) land in the shifted image of (width, height)
    points: Optional[Callable[[np.ndarray, Tuple[int, int]], np.ndarray]] = field(default=None, compare=False)

    def map_points(self, points: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
        """``points`` (0..1 of the frame) as they sit in the shifted image (0..1 of it)."""
        return np.array(points, dtype=np.float64) if self.points is None else self.points(points, size)


def _gain(b: float, g: float, r: float) -> Callable[[np.ndarray, Optional[Box]], np.ndarray]:
    gains = np.array([b, g, r], np.float32)

    def apply(image: np.ndarray, box: Optional[Box] = None) -> np.ndarray:
        return np.clip(image.astype(np.float32) * gains + 0.5, 0, 255).astype(np.uint8)
    return apply


def backlight(image: np.ndarray, box: Optional[Box] = None) -> np.ndarray:
    """Everything outside the kept region (see the module's table) pushed toward white."""
    h, w = image.shape[:2]
    if box is not None:
        x0, y0, x1, y1 = (float(v) for v in box)
        mx, my = BACKLIGHT_BOX_MARGIN * (x1 - x0), BACKLIGHT_BOX_MARGIN * (y1 - y0)
        x0, y0, x1, y1 = x0 - mx, y0 - my, x1 + mx, y1 + my
    else:
        side = float(np.sqrt(BACKLIGHT_KEEP_AREA))
        x0, x1 = w * (1 - side) / 2, w * (1 + side) / 2
        y0, y1 = h * (1 - side) / 2, h * (1 + side) / 2
    xs = np.arange(w, dtype=np.float32) + 0.5
    ys = np.arange(h, dtype=np.float32) + 0.5
    dx = np.maximum(np.maximum(x0 - xs, xs - x1), 0)[None, :]
    dy = np.maximum(np.maximum(y0 - ys, ys - y1), 0)[:, None]
    feather = max(1.0, BACKLIGHT_FEATHER * min(h, w))
    weight = np.clip(np.hypot(dx, dy) / feather, 0, 1) * BACKLIGHT_WHITE
    img = image.astype(np.float32)
    out = img + (255.0 - img) * weight[:, :, None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def low_resolution(image: np.ndarray, box: Optional[Box] = None) -> np.ndarray:
    """Short side to 64 px and back to the original size."""
    cv = cv2()
    h, w = image.shape[:2]
    scale = LOWRES_SIDE / float(min(h, w))
    if scale >= 1:
        return image.copy()
    small = cv.resize(image, (max(1, int(round(w * scale))), max(1, int(round(h * scale)))),
                      interpolation=cv.INTER_AREA)
    return cv.resize(small, (w, h), interpolation=cv.INTER_LINEAR)


def motion_blur(image: np.ndarray, box: Optional[Box] = None) -> np.ndarray:
    """A horizontal line kernel of 9 px."""
    cv = cv2()
    kernel = np.full((1, BLUR_LENGTH), 1.0 / BLUR_LENGTH, np.float32)
    return cv.filter2D(image, -1, kernel, borderType=cv.BORDER_REPLICATE)


def edge_colour(image: np.ndarray) -> np.ndarray:
    """The per-channel median of the image's outermost rows and columns."""
    ring = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]], axis=0)
    return np.median(ring.reshape(-1, image.shape[2]), axis=0)


def far(image: np.ndarray, box: Optional[Box] = None) -> np.ndarray:
    """The photo at 1/3 of its side, centred in a frame of its own size and edge colour."""
    cv = cv2()
    h, w = image.shape[:2]
    x, y, sw, sh = _far_box(w, h)
    small = cv.resize(image, (sw, sh), interpolation=cv.INTER_AREA)
    out = np.empty_like(image)
    out[:] = np.round(edge_colour(image)).astype(np.uint8)
    out[y:y + sh, x:x + sw] = small
    return out


def _far_box(w: int, h: int) -> Tuple[int, int, int, int]:
    """Where the shrunk photo sits in the far frame: x, y, width, height."""
    sw, sh = max(1, int(round(w * FAR_SCALE))), max(1, int(round(h * FAR_SCALE)))
    return (w - sw) // 2, (h - sh) // 2, sw, sh


def far_points(points: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Points of the photo as they sit in its far frame (both 0..1)."""
    w, h = size
    x, y, sw, sh = _far_box(w, h)
    pts = np.array(points, dtype=np.float64)
    return (pts * np.array([sw, sh]) + np.array([x, y])) / np.array([w, h])


def sensor_noise(image: np.ndarray, box: Optional[Box] = None) -> np.ndarray:
    """Gaussian noise of NOISE_SIGMA per channel, the same for the same image."""
    seed = int.from_bytes(hashlib.sha1(image.tobytes()).digest()[:8], "little")
    # raw PCG64 bits, not Generator.normal: the suite must render the same on every numpy
    raw = np.random.PCG64(seed).random_raw(2 * ((image.size + 1) // 2))
    u = (raw >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)   # [0, 1), 53 bits
    u1, u2 = 1.0 - u[0::2], u[1::2]
    r = np.sqrt(-2.0 * np.log(u1))
    normal = np.concatenate([r * np.cos(2 * np.pi * u2), r * np.sin(2 * np.pi * u2)])[:image.size]
    noisy = image.astype(np.float64) + NOISE_SIGMA * normal.reshape(image.shape)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


def turned(image: np.ndarray, degrees: int) -> np.ndarray:
    """``image`` turned counter-clockwise by ``degrees`` (a multiple of 90): what a camera
    turned clockwise by that much shows. Turning the result clockwise by the same amount
    (:func:`upright`) gives back ``image`` exactly."""
    return np.ascontiguousarray(rotate_image(image, inverse(int(degrees) % 360)))


def upright(image: np.ndarray, rotate: int) -> np.ndarray:
    """``image`` turned clockwise by ``rotate`` degrees (what ``rotate:`` in dataset.yaml asks)."""
    return np.ascontiguousarray(rotate_image(image, int(rotate) % 360))


def _turn(degrees: int) -> Callable[[np.ndarray, Optional[Box]], np.ndarray]:
    def apply(image: np.ndarray, box: Optional[Box] = None) -> np.ndarray:
        return turned(image, degrees)
    return apply


def _turn_points(degrees: int) -> Callable[[np.ndarray, Tuple[int, int]], np.ndarray]:
    """Where points (0..1) land when the image is turned counter-clockwise by ``degrees``."""
    def move(points: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
        return rotate_normalized(points, inverse(degrees % 360))
    return move


SHIFTS: Registry[Shift] = Registry("camera shift", {s.name: s for s in (
    Shift("purple", "purple tint: B x1.25, G x0.70, R x1.25", _gain(1.25, 0.70, 1.25)),
    Shift("green", "green tint: B x0.8, G x1.2, R x0.8", _gain(0.8, 1.2, 0.8)),
    Shift("dark", "exposure x0.35", _gain(0.35, 0.35, 0.35)),
    Shift("bright", "exposure x2.0, clipped", _gain(2.0, 2.0, 2.0)),
    Shift("backlight", "outer 60% brightened to near white, subject kept", backlight),
    Shift("lowres", "short side 64 px and back", low_resolution),
    Shift("blur", "9 px horizontal motion blur", motion_blur),
    Shift("far", "shrunk to 1/3 of its side in a border of its edge colour", far, points=far_points),
    Shift("noise", "sensor noise, Gaussian sigma 14 (a small camera in dim light)", sensor_noise),
    Shift("rot90", "turned 90 degrees, declared (rotate: 90)", _turn(90), rotate=90,
          points=_turn_points(90)),
    Shift("rot180", "turned 180 degrees, declared (rotate: 180)", _turn(180), rotate=180,
          points=_turn_points(180)),
)}.items())


def shift_names(spec: str = "all") -> List[str]:
    """The shifts a comma list names (``all``: every one, ``none``: none), in suite order,
    then any composites (``dark+noise``) in the order given; an unknown name is one line
    with a did-you-mean."""
    spec = (spec or "none").strip()
    if spec == "none":
        return []
    if spec == "all":
        return list(SHIFTS)
    names = [get_shift(n.strip()).name for n in spec.split(",") if n.strip()]
    return [n for n in SHIFTS if n in names] + list(dict.fromkeys(n for n in names if n not in SHIFTS))


def get_shift(name: str) -> Shift:
    """The registered shift called ``name``, or a composite of registered shifts applied left
    to right (``purple+dark+noise+rot90``: one camera with several faults)."""
    if "+" in name:
        return composite([get_shift(part.strip()) for part in name.split("+")])
    if name not in SHIFTS:
        raise UserError("camera shift '{}' is not one of {}{}".format(
            name, ", ".join(SHIFTS), did_you_mean(name, SHIFTS)))
    return SHIFTS[name]


def composite(parts: Sequence[Shift]) -> Shift:
    """The shifts ``parts`` one after the other. A subject's box reaches the parts before the
    first one that moves the picture (far, a turn); after it the box no longer fits."""
    moves = [i for i, p in enumerate(parts) if p.points is not None]
    first_move = moves[0] if moves else len(parts)

    def apply(image: np.ndarray, box: Optional[Box] = None) -> np.ndarray:
        for i, part in enumerate(parts):
            image = part.apply(image, box if i < first_move else None)
        return image

    def move(points: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
        turns = sum(p.rotate for p in parts) % 180 != 0
        w, h = (size[1], size[0]) if turns else size   # the original picture's size
        for part in parts:
            if part.rotate % 180:
                w, h = h, w
            points = part.map_points(points, (w, h))
        return points

    return Shift("+".join(p.name for p in parts), "; then ".join(p.description for p in parts),
                 apply, rotate=sum(p.rotate for p in parts) % 360, points=move if moves else None)


def apply_shift(image: np.ndarray, shift: str, box: Optional[Box] = None) -> np.ndarray:
    """``image`` (BGR) as the camera ``shift`` would show it."""
    return get_shift(shift).apply(image, box)


# -- datasets ----------------------------------------------------------------------------
def _stored_boxes(root: Path) -> Dict[str, Box]:
    """Subject boxes of ``subjects.jsonl`` rows (0..1 of the frame), by image path relative
    to ``root``."""
    out: Dict[str, Box] = {}
    path = root / SUBJECTS_FILE
    if not path.is_file():
        return out
    for line in path.read_bytes().decode("utf-8", "replace").splitlines():
        try:
            row = json.loads(line)
            box = row.get("box")
            if box and len(box) == 4:
                x0, y0, x1, y1 = (float(v) for v in box)
                out[str(row["image"])] = (x0, y0, x1, y1)
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return out


def _meta(root: Path, classes: List[str], rotate: int) -> Dict[str, Any]:
    """The copy's ``dataset.yaml``: the source's (its images are read upright, so its own
    ``rotate:`` does not carry over), and ``rotate:`` for a rotation shift; empty when there
    is nothing to declare (the copy is then a plain class-folder tree)."""
    meta: Dict[str, Any] = read_meta(root) if (root / META_FILE).is_file() else {}
    meta.pop("rotate", None)
    if rotate:
        if not meta:
            meta = {"format": NATIVE_FORMAT, "version": 1, "kind": "classification",
                    "classes": sorted(set(classes), key=classes.index)}
        meta["rotate"] = int(rotate)
    return meta


def _class_images(src: Path) -> List[Tuple[str, Path]]:
    """(relative path, file) of every image in ``src``'s class folders."""
    folders = sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith("."))
    images = [(p.relative_to(src).as_posix(), p) for d in folders for p in list_images(d, recursive=False)]
    if not images:
        raise DatasetError(f"{src}: no class folders with images to render (expected "
                           "<class>/<image>.jpg)")
    return images


def _fingerprint(images: Sequence[Tuple[str, Path]], shift: Shift, boxes: Mapping[str, Any],
                 meta: Mapping[str, Any]) -> str:
    h = hashlib.sha1(json_text([SHIFTS_VERSION, shift.name, sorted(meta.items(), key=str)],
                                default=str).encode())
    for rel, path in images:
        st = path.stat()
        h.update(f"{rel}|{st.st_size}|{st.st_mtime_ns}|{boxes.get(rel)}\n".encode())
    return h.hexdigest()


def render_dataset(src: Path, dst: Path, shift: str,
                   boxes: Optional[Mapping[str, Box]] = None, honour_rotate: bool = True) -> Path:
    """Write the class-folder dataset ``src`` through ``shift`` into ``dst`` (same class
    folders and file stems, PNG files, so nothing is lost to compression twice).

    ``boxes``: subject boxes in 0..1 of the frame by relative image path (backlight keeps
    them); by default those of ``src/subjects.jsonl``. ``src/dataset.yaml`` is carried over;
    a rotation shift adds ``rotate:`` to it. ``honour_rotate=False`` is for readers that do not
    yet turn images by ``rotate:``: the copy is then written upright (the declared turn
    applied) and declares nothing. Rendering is deterministic, and a copy already rendered
    from the same files with the same shift is left as it is (its files keep their times, so
    subject caches keyed by file stay warm)."""
    s = get_shift(shift)
    src, dst = Path(src), Path(dst)
    images = _class_images(src)
    if boxes is None:
        given: Dict[str, Any] = dict(_stored_boxes(src))
    else:
        given = dict(boxes)
    meta = _meta(src, [rel.split("/")[0] for rel, _ in images], s.rotate if honour_rotate else 0)
    stamp = _fingerprint(images, s, given, meta)
    manifest = dst / MANIFEST
    try:
        if json.loads(manifest.read_text()).get("fingerprint") == stamp:
            return dst
    except (OSError, ValueError, AttributeError):
        pass
    cv = cv2()
    dst.mkdir(parents=True, exist_ok=True)
    written = []
    for rel, path in images:
        image, problem = read_image(path)
        if image is None:
            continue   # unreadable: the reader of the copy reports it for the source anyway
        h, w = image.shape[:2]
        box = given.get(rel)
        px = None if box is None else (box[0] * w, box[1] * h, box[2] * w, box[3] * h)
        out = s.apply(image, px)
        if not honour_rotate and s.rotate:
            out = upright(out, s.rotate)
        ok, data = cv.imencode(".png", out)
        if not ok:
            raise DatasetError(f"{path}: could not encode the shifted image")
        target = dst / Path(rel).with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, data.tobytes())
        written.append(target.relative_to(dst).as_posix())
    _remove_stale(dst, set(written))
    if meta:
        import yaml

        atomic_write_text(dst / META_FILE, yaml.safe_dump(meta, sort_keys=False))
    elif (dst / META_FILE).exists():
        (dst / META_FILE).unlink()
    atomic_write_text(manifest, json_text({"fingerprint": stamp, "shift": s.name, "source": str(src),
                                            "version": SHIFTS_VERSION, "images": len(written),
                                            "rotate": meta.get("rotate", 0)}))
    return dst


def _remove_stale(dst: Path, written: set) -> None:
    """Images of an earlier render whose source is gone: the copy holds what the source holds."""
    for path in list_images(dst):
        if path.relative_to(dst).as_posix() not in written:
            path.unlink()


def rotation_honoured() -> bool:
    """Whether this edge-app's dataset reader turns images by ``rotate:`` in dataset.yaml
    (probed on a two-pixel dataset, so it tracks the reader whatever its interface)."""
    import tempfile

    cv = cv2()
    with tempfile.TemporaryDirectory(prefix="edge-rotate-probe-") as tmp:
        root = Path(tmp)
        (root / "a").mkdir()
        (root / "b").mkdir()
        tall = np.zeros((2, 1, 3), np.uint8)   # 1 wide, 2 high: turned by 90 it is 2 wide
        tall[0] = 255
        for c in ("a", "b"):
            cv.imwrite(str(root / c / "x.png"), tall)
        (root / "dataset.yaml").write_text("kind: classification\nrotate: 90\n")
        try:
            ds = read_dataset(root).verify()
        except UserError:
            return False
        if not ds.samples or ds.samples[0].size != (2, 1):
            return False
        image, _ = read_image(ds.samples[0].path)
        return image is not None and image.shape[:2] == (1, 2)
