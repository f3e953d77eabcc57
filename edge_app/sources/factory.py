"""One factory from a source URI to a :class:`FrameSource`.

Schemes, tried in order: ``sim://TASK``, ``usb:N`` / ``/dev/videoN`` / ``N``, ``csi://N``,
``rtsp://`` / ``rtmp://`` / ``http(s)://``, an image folder or image file, a video file.
Options come as a query string (``usb:0?width=1280&height=720&fps=30``) or as arguments.
Every source takes ``rotate=90|180|270``: the clockwise turn that makes its picture upright
(a property of the camera; on CSI cameras nvvidconv does it), and ``look=NAME``: the camera look
the subject search holds instead of learning one (``plain``, ``grey_world``, ``exposure``,
``grey_world+exposure``; see ``edge-app doctor --source``).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl

from edge_app.camera.rotation import parse_rotation
from edge_app.errors import SourceError
from edge_app.names import printable
from edge_app.sources.base import FrameSource
from edge_app.sources.folder import IMAGE_EXTENSIONS, ImageFolder
from edge_app.sources.video import CSICamera, Stream, V4L2Camera, VideoFile

SOURCE_HELP = ("usb:N or /dev/videoN (USB webcam), csi://N (Jetson CSI camera), a video file, "
               "an image folder, rtsp://... (IP camera), sim://TASK (simulated camera), sim://crowd "
               "(several hands and faces, for detectors); any of them ?rotate=90|180|270 (the "
               "clockwise turn that makes the picture upright) and ?look=NAME (the camera look "
               "the hand or face search holds: plain, grey_world, exposure, grey_world+exposure)")


def source_help() -> str:
    """One line listing the accepted source forms (for --help texts)."""
    return SOURCE_HELP


def _split_query(uri: str) -> Tuple[str, Dict[str, str]]:
    base, _, query = uri.partition("?")
    return base, dict(parse_qsl(query, keep_blank_values=True))


def _num(options: Dict[str, Any], key: str, default: Any, kind: Callable[[str], Any],
         uri: str) -> Any:
    value = options.pop(key, None)
    if value is None:
        return default
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise SourceError(f"{uri}: option '{key}' must be a number, got {value!r}")


def _check_consumed(options: Dict[str, Any], uri: str, allowed: str) -> None:
    if options:
        raise SourceError(f"{uri}: unknown option '{sorted(options)[0]}'; this source takes {allowed}, rotate, look")


def _take_rotation(uri: str, opts: Dict[str, Any]) -> Tuple[str, int]:
    """``uri`` without its ``rotate=`` option, and that rotation (0 when none; the keyword
    option wins). Taken out before the scheme is matched: every source takes it, and a file
    name or a stream address must not carry it."""
    base, sep, query = uri.partition("?")
    value = opts.pop("rotate", None)
    if sep and query:
        kept = []
        for part in query.split("&"):
            key, _, raw = part.partition("=")
            if key == "rotate":
                value = raw if value is None else value
            else:
                kept.append(part)
        uri = base + ("?" + "&".join(kept) if kept else "")
    return uri, 0 if value is None else parse_rotation(value, uri, SourceError)


def _take_plain_option(uri: str, opts: Dict[str, Any], name: str) -> Tuple[str, Optional[str]]:
    """``uri`` without its ``name=`` option, and that option's text (None when absent; the
    keyword option wins). Like ``rotate=``, every source takes it (``look=``: the camera look
    the subject search holds, :mod:`edge_app.subject.search`)."""
    base, sep, query = uri.partition("?")
    value = opts.pop(name, None)
    if sep and query:
        kept = []
        for part in query.split("&"):
            key, _, raw = part.partition("=")
            if key == name:
                value = raw if value is None else value
            else:
                kept.append(part)
        uri = base + ("?" + "&".join(kept) if kept else "")
    return uri, None if value is None else str(value)


def uri_with_rotation(uri: str, rotation: int) -> str:
    """``uri`` with ``rotate=`` set to ``rotation`` (removed for 0), its other options kept."""
    base, _ = _take_rotation(uri, {})
    if not rotation % 360:
        return base
    return "{}{}rotate={}".format(base, "&" if "?" in base else "?", rotation % 360)


def _sim(uri: str, opts: Dict[str, Any]) -> FrameSource:
    # lazy: the simulator's renderer loads only for sim:// (every command's --help imports
    # this module for the source help)
    from edge_app.sources.sim import CrowdSource, SimSource
    from edge_app.tasks.spec import load_task

    base, query = _split_query(uri)
    opts = {**query, **opts}
    if base == "sim://crowd":
        crowd = CrowdSource(uri, width=_num(opts, "width", 640, int, uri),
                            height=_num(opts, "height", 480, int, uri),
                            fps=_num(opts, "fps", 0.0, float, uri), seed=_num(opts, "seed", None, int, uri),
                            clean=bool(_num(opts, "clean", 0, int, uri)),
                            count=_num(opts, "count", None, int, uri),
                            hold=_num(opts, "hold", 1, int, uri))
        _check_consumed(opts, uri, "width, height, fps, seed, clean, count, hold")
        return crowd
    task = load_task(base[len("sim://"):] or "thumbs")
    src = SimSource(uri, task, width=_num(opts, "width", 640, int, uri),
                    height=_num(opts, "height", 480, int, uri), fps=_num(opts, "fps", 0.0, float, uri),
                    seed=_num(opts, "seed", None, int, uri), label=opts.pop("label", None),
                    clean=bool(_num(opts, "clean", 0, int, uri)),
                    count=_num(opts, "count", None, int, uri),
                    background=_num(opts, "background", None, int, uri),
                    lighting=_num(opts, "lighting", None, int, uri))
    _check_consumed(opts, uri, "width, height, fps, seed, label, clean, count, background, lighting")
    return src


def _usb(uri: str, opts: Dict[str, Any]) -> FrameSource:
    base, query = _split_query(uri)
    opts = {**query, **opts}
    number = re.sub(r"^(usb:|/dev/video)", "", base)
    device = base if base.startswith("/dev/") else "/dev/video" + number
    src = V4L2Camera(uri, device, width=_num(opts, "width", 640, int, uri),
                     height=_num(opts, "height", 480, int, uri),
                     fps=_num(opts, "fps", 30.0, float, uri), fourcc=str(opts.pop("fourcc", "MJPG")))
    _check_consumed(opts, uri, "width, height, fps, fourcc")
    return src


def _csi(uri: str, opts: Dict[str, Any]) -> FrameSource:
    base, query = _split_query(uri)
    opts = {**query, **opts}
    sensor = base[len("csi://"):] or "0"
    if not sensor.isdigit():
        raise SourceError(f"{uri}: expected csi://N with a sensor number, e.g. csi://0")
    src = CSICamera(uri, int(sensor), width=_num(opts, "width", 1280, int, uri),
                    height=_num(opts, "height", 720, int, uri), fps=_num(opts, "fps", 30.0, float, uri),
                    flip=_num(opts, "flip", 0, int, uri))
    _check_consumed(opts, uri, "width, height, fps, flip")
    return src


def _stream(uri: str, opts: Dict[str, Any]) -> FrameSource:
    """Streams and files deliver the mode they hold: size and fps options do not apply."""
    return Stream(uri)


def _path(uri: str, opts: Dict[str, Any]) -> FrameSource:
    path = Path(uri).expanduser()
    loop = bool(opts.pop("loop", False))
    if path.is_dir() or path.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageFolder(uri, str(path), loop=loop)
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:   # OpenCV takes the name as UTF-8 and crashes on other bytes
        raise SourceError(f"{printable(path)}: the file name is not valid UTF-8 text; rename the file")
    return VideoFile(uri, str(path))


# (matcher, constructor) pairs, tried in order; later issues may add schemes here.
SCHEMES: List[Tuple[Callable[[str], bool], Callable[[str, Dict[str, Any]], FrameSource]]] = [
    (lambda u: u.startswith("sim://"), _sim),
    (lambda u: bool(re.match(r"^(usb:\d+|/dev/video\d+|\d+)(\?.*)?$", u)), _usb),
    (lambda u: u.startswith("csi://"), _csi),
    (lambda u: bool(re.match(r"^(rtsp|rtsps|rtmp|http|https)://", u)), _stream),
    (lambda u: Path(u).expanduser().exists(), _path),
]


def open_source(uri: str, width: Optional[int] = None, height: Optional[int] = None,
                fps: Optional[float] = None, **options: Any) -> FrameSource:
    """Build the source for ``uri`` (not yet opened). Keyword options override the query."""
    opts: Dict[str, Any] = {k: v for k, v in dict(options, width=width, height=height, fps=fps).items()
                            if v is not None}
    uri, rotation = _take_rotation(str(uri).strip(), opts)
    uri, look = _take_plain_option(uri, opts, "look")
    if re.match(r"^\d+$", uri):
        uri = "usb:" + uri
    for matches, build in SCHEMES:
        if matches(uri):
            source = build(uri, opts)
            if rotation:
                source.set_rotation(rotation)
            source.look = look
            return source
    raise SourceError(f"source '{uri}' not found: it is not a file or folder here, nor one of: {SOURCE_HELP}"
                      )
