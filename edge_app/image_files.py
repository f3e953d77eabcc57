"""Which files are images, listed the same way by sources, datasets and benchmarks, and the one
place where a picture's bytes become pixels (:func:`load_image`, :func:`decode_image`): dataset
readers, training, the subject scans, ``run --source FOLDER``, the studio, shift rendering,
parity and the benchmarks all read through it.

A small file can declare a huge picture: a 109 KB PNG of 30000x30000 zeros decodes to 2.7 GB and
crashes MediaPipe. So the size the file's header declares is read first (:func:`header_size`,
for every format this OpenCV decodes: PNG, JPEG, BMP, WebP, GIF, TIFF, PNM/PAM/PFM, Sun
raster, Radiance HDR, JPEG 2000, AVIF) and a picture above the pixel limit
(``EDGE_APP_MAX_IMAGE_PIXELS``, :func:`edge_app.opencv.max_image_pixels`) is refused before
OpenCV allocates anything. OpenCV is given the same limit (``OPENCV_IO_MAX_IMAGE_PIXELS``), so a
header read wrongly here still cannot make it allocate more. Bytes that are not one of these
formats, a damaged header and a file cut short are refused too, each with one line
(:class:`~edge_app.errors.ImageError`)."""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from edge_app.errors import ImageError, one_line
from edge_app.names import printable
from edge_app.opencv import MAX_PIXELS_ENV, OPENCV_MAX_PIXELS_ENV, cv2, max_image_pixels

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")


def list_images(folder: Path, recursive: bool = True) -> List[Path]:
    """Image files under ``folder`` in a stable order, skipping hidden and temporary files."""
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern)
                  if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


# -- reading ----------------------------------------------------------------------------------

def load_image(path: Union[str, Path]) -> np.ndarray:
    """The picture in the file ``path`` as a BGR array, as stored (no turn), or an
    :class:`~edge_app.errors.ImageError` naming the file and what is wrong with it. Read as
    bytes: OpenCV's imread takes the name as UTF-8 text and crashes on a name that is not."""
    name = printable(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageError(name, f"cannot read: {exc.strerror or exc}") from None
    return decode_image(data, name)


def decode_image(data: bytes, name: str = "") -> np.ndarray:
    """``data`` (a whole image file) decoded to a BGR array, or an
    :class:`~edge_app.errors.ImageError`: empty, not an image, a damaged header, cut short,
    above the pixel limit (checked on the header, before anything is decoded), or refused by
    OpenCV. ``name`` (the file) heads the error's line. A bad ``EDGE_APP_MAX_IMAGE_PIXELS`` is
    a :class:`~edge_app.errors.UserError` of its own: it is no fault of this file."""
    limit = max_image_pixels()
    if not data:
        raise ImageError(name, "empty file")
    head = header_size(data, name)
    if head.pixels > limit:
        raise ImageError(name, too_large(head, limit))
    if not _complete(head.format, data):
        raise ImageError(name, f"truncated {head.format} ({_END[head.format]}): the file was cut short")
    cv = cv2()
    try:
        image = cv.imdecode(np.frombuffer(data, np.uint8), cv.IMREAD_COLOR)
    except cv.error as exc:
        if "CV_IO_MAX_IMAGE_PIXELS" in str(exc):
            raise ImageError(name, f"{head.width}x{head.height} is above OpenCV's limit, "
                             f"{OPENCV_MAX_PIXELS_ENV}={os.environ.get(OPENCV_MAX_PIXELS_ENV)}; raise it "
                             f"or unset it (edge-app sets it to {MAX_PIXELS_ENV})") from None
        raise ImageError(name, "OpenCV cannot decode it: " + one_line(str(exc), 200)) from None
    if image is None or image.ndim < 2 or not image.size:
        raise ImageError(name, "not an image OpenCV can decode")
    if image.shape[0] * image.shape[1] > limit:   # a header read wrongly here: never passed on
        raise ImageError(name, too_large(Header(head.format, image.shape[1], image.shape[0]), limit))
    return image


def too_large(head: Header, limit: int) -> str:
    """Why a picture of ``head``'s size is refused, and how to read it all the same."""
    area = head.width * head.height
    extra = "" if head.pixels == area else f" (its frames or tiles span {_amount(head.pixels)})"
    return (f"{head.width}x{head.height} {head.format} is {_amount(area)}{extra}, above the limit of "
            f"{_amount(limit)}: to read it, set {MAX_PIXELS_ENV}={head.pixels} or more")


def _amount(pixels: int) -> str:
    return f"{pixels / 1e6:.4g} megapixels" if pixels >= 1_000_000 else f"{pixels} pixels"


# -- headers ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Header:
    """What a file's header declares: its format, width and height; ``extent`` is more pixels
    a decoder may allocate for it, where frames (GIF) or tiles (TIFF) reach further."""

    format: str
    width: int
    height: int
    extent: int = 0

    @property
    def pixels(self) -> int:
        """The most pixels decoding it may allocate."""
        return max(self.width * self.height, self.extent)


class _Bad(Exception):
    """A header that cannot be read (turned into an ImageError with the format's name)."""


def header_size(data: bytes, name: str = "") -> Header:
    """The format and size the header of ``data`` declares, read without decoding anything; an
    :class:`~edge_app.errors.ImageError` for bytes that are none of the formats OpenCV decodes
    here, or a header that is damaged, cut short or declares no pixels. Pure Python, and it
    raises nothing else whatever the bytes."""
    for fmt, signature, parse in _FORMATS:
        if signature(data):
            try:
                head = parse(data)
            except _Bad as exc:
                raise ImageError(name, f"damaged {fmt} header: {exc}") from None
            except (struct.error, IndexError):
                raise ImageError(name, f"truncated {fmt}: the file ends inside its header") from None
            except (ValueError, OverflowError):   # offsets past any file, numbers that are not
                raise ImageError(name, f"damaged {fmt} header: inconsistent") from None
            if head.width < 1 or head.height < 1:
                raise ImageError(name, f"damaged {fmt} header: it declares {head.width}x{head.height} pixels")
            return head
    raise ImageError(name, "not an image OpenCV can decode")


def _png(d: bytes) -> Header:
    if d[12:16] != b"IHDR":
        raise _Bad("its first chunk is not IHDR")
    w, h = struct.unpack_from(">II", d, 16)
    return Header("PNG", w, h)


def _png_end(d: bytes) -> bool:
    """Whether the chunks, followed by their lengths, reach IEND within ``d``."""
    pos = 8
    while pos + 12 <= len(d):
        length, kind = struct.unpack_from(">I4s", d, pos)
        pos += 12 + length
        if kind == b"IEND":
            return pos <= len(d)
    return False


_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}   # not DHT, JPG, DAC
_JPEG_ALONE = frozenset(range(0xD0, 0xD8)) | {0x01, 0xD8}     # RSTn, TEM, SOI: no length


def _jpeg_markers(d: bytes, to_scan: bool) -> Tuple[Header, int]:
    """The frame header (SOFn) and, ``to_scan``, where the first scan's data starts (else 0),
    found the way libjpeg finds them: bytes before a marker are skipped, FF fill bytes
    swallowed, segments skipped by their length; its first SOF is the only one it takes."""
    pos, head = 2, None
    while True:
        while d[pos] != 0xFF:
            pos += 1
        while d[pos] == 0xFF:
            pos += 1
        marker = d[pos]
        pos += 1
        if marker == 0 or marker in _JPEG_ALONE:
            continue
        if marker == 0xD9:
            raise _Bad("it ends before its first scan")
        length = struct.unpack_from(">H", d, pos)[0]
        if length < 2:
            raise _Bad(f"a segment of length {length}")
        if marker in _JPEG_SOF and head is None:
            h, w = struct.unpack_from(">HH", d, pos + 3)
            if h == 0:
                raise _Bad("height 0 (set later by a DNL marker, which is not supported)")
            head = Header("JPEG", w, h)
            if not to_scan:
                return head, 0
        if marker == 0xDA:
            if head is None:
                raise _Bad("a scan comes before the frame header (SOF)")
            return head, pos + length
        pos += length


def _jpeg(d: bytes) -> Header:
    return _jpeg_markers(d, to_scan=False)[0]


def _jpeg_end(d: bytes) -> bool:
    """Whether the end marker follows the first scan (entropy-coded data cannot hold FF D9;
    a thumbnail's end marker comes before the scan, a phone's motion video after the end)."""
    return d.find(b"\xff\xd9", _jpeg_markers(d, to_scan=True)[1]) >= 0


def _bmp(d: bytes) -> Header:
    size = struct.unpack_from("<I", d, 14)[0]
    if size == 12:   # OS/2 BITMAPCOREHEADER
        w, h = struct.unpack_from("<HH", d, 18)
    elif 36 <= size <= 124:
        w, h = struct.unpack_from("<ii", d, 18)
    else:
        raise _Bad(f"unknown info header of {size} bytes")
    return Header("BMP", w, abs(h))


def _webp(d: bytes) -> Header:
    chunk = d[12:16]
    if chunk == b"VP8X":   # the canvas (animations and pictures with alpha or metadata)
        w = 1 + int.from_bytes(d[24:27], "little")
        h = 1 + int.from_bytes(d[27:30], "little")
        if len(d) < 30:
            raise _Bad("cut short")
    elif chunk == b"VP8 ":
        if d[23:26] != b"\x9d\x01\x2a":
            raise _Bad("no VP8 key frame")
        w, h = (v & 0x3FFF for v in struct.unpack_from("<HH", d, 26))
    elif chunk == b"VP8L":
        if d[20] != 0x2F:
            raise _Bad("no VP8L signature")
        bits = struct.unpack_from("<I", d, 21)[0]
        w, h = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    else:
        raise _Bad(f"unknown first chunk {chunk!r}")
    return Header("WebP", w, h)


def _gif(d: bytes) -> Header:
    """The logical screen, widened to every frame's extent (a frame may reach past it)."""
    w, h, flags = struct.unpack_from("<HHB", d, 6)
    right, bottom = w, h
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while pos < len(d) and d[pos] != 0x3B:
        if d[pos] == 0x21:    # extension: label, then data sub-blocks
            pos = _gif_blocks(d, pos + 2)
        elif d[pos] == 0x2C:  # image descriptor
            x, y, fw, fh, fflags = struct.unpack_from("<HHHHB", d, pos + 1)
            right, bottom = max(right, x + fw), max(bottom, y + fh)
            pos += 10 + (3 << ((fflags & 7) + 1) if fflags & 0x80 else 0) + 1   # + LZW code size
            pos = _gif_blocks(d, pos)
        else:                 # not GIF any more: the decoder stops here too
            break
    return Header("GIF", w, h, right * bottom)


def _gif_blocks(d: bytes, pos: int) -> int:
    while pos < len(d):
        size = d[pos]
        pos += 1 + size
        if size == 0:
            break
    return pos


_TIFF_TYPES = {3: ("H", 2), 4: ("I", 4), 16: ("Q", 8)}   # SHORT, LONG, LONG8


def _tiff(d: bytes) -> Header:
    """The first directory's width and length (the page OpenCV decodes), and its tiles."""
    order = "<" if d[:2] == b"II" else ">"
    big = struct.unpack_from(order + "H", d, 2)[0] == 43
    if big:
        entry, count_fmt, value_size = 20, "Q", 8
        ifd = struct.unpack_from(order + "Q", d, 8)[0]
    else:
        entry, count_fmt, value_size = 12, "I", 4
        ifd = struct.unpack_from(order + "I", d, 4)[0]
    count = struct.unpack_from(order + ("Q" if big else "H"), d, ifd)[0]
    first = ifd + (8 if big else 2)
    tags: Dict[int, int] = {}
    for i in range(min(count, 4096)):
        pos = first + i * entry
        tag, kind = struct.unpack_from(order + "HH", d, pos)
        if tag in (256, 257, 322, 323) and kind in _TIFF_TYPES:
            code, size = _TIFF_TYPES[kind]
            if size <= value_size:
                tags[tag] = struct.unpack_from(order + code, d, pos + 4 + struct.calcsize(count_fmt))[0]
    if 256 not in tags or 257 not in tags:
        raise _Bad("no image width or length")
    w, h = tags[256], tags[257]
    return Header("TIFF", w, h, tags.get(322, 0) * tags.get(323, 0))


_WINDOW = 1 << 16   # text headers (PNM, PAM, PFM, HDR) are read within their first 64 KiB


def _numbers(d: bytes, pos: int, count: int) -> List[int]:
    """``count`` decimal numbers from ``pos``, across white space and ``#`` comments (PNM)."""
    found: List[int] = []
    end = min(len(d), _WINDOW)
    while len(found) < count:
        while pos < end and (d[pos] in b" \t\r\n\v\f" or d[pos] == 0x23):
            if d[pos] == 0x23:
                while pos < end and d[pos] not in b"\r\n":
                    pos += 1
            else:
                pos += 1
        start = pos
        while pos < end and 0x30 <= d[pos] <= 0x39 and pos - start < 12:
            pos += 1
        if pos == start:
            raise _Bad("no size where it belongs")
        found.append(int(d[start:pos]))
    return found


def _pnm(d: bytes) -> Header:
    w, h = _numbers(d, 2, 2)
    return Header("PNM", w, h)


def _pam(d: bytes) -> Header:
    fields: Dict[bytes, int] = {}
    for line in d[:_WINDOW].split(b"\n")[1:]:
        words = line.split()
        if words[:1] == [b"ENDHDR"]:
            break
        if len(words) >= 2 and words[0] in (b"WIDTH", b"HEIGHT") and words[1].isdigit() and len(words[1]) <= 12:
            fields[words[0]] = int(words[1])
    if b"WIDTH" not in fields or b"HEIGHT" not in fields:
        raise _Bad("no WIDTH or HEIGHT")
    return Header("PAM", fields[b"WIDTH"], fields[b"HEIGHT"])


def _pfm(d: bytes) -> Header:
    w, h = _numbers(d, 2, 2)
    return Header("PFM", w, h)


def _sun(d: bytes) -> Header:
    w, h = struct.unpack_from(">II", d, 4)
    return Header("Sun raster", w, h)


def _hdr(d: bytes) -> Header:
    """Radiance: header lines, a blank line, then the resolution (``-Y 480 +X 640``)."""
    text = d[:_WINDOW]
    blank = text.find(b"\n\n")
    if blank < 0:
        raise _Bad("no end of header")
    words = text[blank + 2:].split(b"\n", 1)[0].split()
    if len(words) < 4 or not all(n.isdigit() and len(n) <= 12 for n in (words[1], words[3])):
        raise _Bad("no resolution line")
    axes = {words[0][-1:]: int(words[1]), words[2][-1:]: int(words[3])}
    if set(axes) != {b"X", b"Y"}:
        raise _Bad("no resolution line")
    return Header("HDR", axes[b"X"], axes[b"Y"])


def _j2k(d: bytes, pos: int = 0) -> Header:
    """A JPEG 2000 codestream's SIZ marker segment: the image area less its offset."""
    if d[pos:pos + 4] != b"\xff\x4f\xff\x51":
        raise _Bad("no SIZ marker after SOC")
    x, y, x0, y0 = struct.unpack_from(">IIII", d, pos + 8)
    return Header("JPEG 2000", x - x0, y - y0)


def _jp2(d: bytes) -> Header:
    """A JP2 file: the codestream box (``jp2c``) holds the size the decoder uses."""
    pos = 0
    while pos + 8 <= len(d):
        length, kind = struct.unpack_from(">I4s", d, pos)
        skip = 8
        if length == 1:
            length, skip = struct.unpack_from(">Q", d, pos + 8)[0], 16
        elif length == 0:
            length = len(d) - pos
        if kind == b"jp2c":
            return _j2k(d, pos + skip)
        if length < skip:
            break
        pos += length
    raise _Bad("no codestream box")


def _boxes(d: bytes, start: int, end: int) -> List[Tuple[bytes, int, int]]:
    """ISO base media boxes between ``start`` and ``end``: (type, content start, end)."""
    found, pos = [], start
    while pos + 8 <= end:
        length, kind = struct.unpack_from(">I4s", d, pos)
        skip = 8
        if length == 1:
            length, skip = struct.unpack_from(">Q", d, pos + 8)[0], 16
        elif length == 0:
            length = end - pos
        if length < skip:
            break
        found.append((kind, pos + skip, min(pos + length, end)))
        pos += length
    return found


def _avif(d: bytes) -> Header:
    """AVIF: the largest image spatial extent (``ispe``) among the item properties."""
    sizes = []
    for kind, start, end in _boxes(d, 0, len(d)):
        if kind != b"meta":
            continue
        for kind2, start2, end2 in _boxes(d, start + 4, end):   # meta is a full box
            if kind2 != b"iprp":
                continue
            for kind3, start3, end3 in _boxes(d, start2, end2):
                if kind3 == b"ipco":
                    sizes += [struct.unpack_from(">II", d, s + 4)
                              for k, s, _ in _boxes(d, start3, end3) if k == b"ispe"]
    if not sizes:
        raise _Bad("no image size (ispe) property")
    w, h = max(sizes, key=lambda s: s[0] * s[1])
    return Header("AVIF", w, h)


def _is_avif(d: bytes) -> bool:
    if d[4:8] != b"ftyp":
        return False
    size = int.from_bytes(d[:4], "big")
    brands = [d[i:i + 4] for i in range(8, min(size, len(d), 4096) - 3, 4) if i != 12]
    return b"avif" in brands or b"avis" in brands


_FORMATS: Tuple[Tuple[str, Callable[[bytes], bool], Callable[[bytes], Header]], ...] = (
    ("PNG", lambda d: d[:8] == b"\x89PNG\r\n\x1a\n", _png),
    ("JPEG", lambda d: d[:3] == b"\xff\xd8\xff", _jpeg),
    ("BMP", lambda d: d[:2] == b"BM", _bmp),
    ("WebP", lambda d: d[:4] == b"RIFF" and d[8:12] == b"WEBP", _webp),
    ("GIF", lambda d: d[:6] in (b"GIF87a", b"GIF89a"), _gif),
    ("TIFF", lambda d: d[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"), _tiff),
    ("PNM", lambda d: len(d) > 2 and d[:1] == b"P" and d[1:2] in b"123456", _pnm),
    ("PAM", lambda d: d[:3] in (b"P7\n", b"P7\r", b"P7 "), _pam),
    ("PFM", lambda d: d[:2] in (b"PF", b"Pf"), _pfm),
    ("Sun raster", lambda d: d[:4] == b"\x59\xa6\x6a\x95", _sun),
    ("HDR", lambda d: d[:10] == b"#?RADIANCE" or d[:6] == b"#?RGBE", _hdr),
    ("JPEG 2000", lambda d: d[:4] == b"\xff\x4f\xff\x51", _j2k),
    ("JPEG 2000", lambda d: d[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n", _jp2),
    ("AVIF", _is_avif, _avif),
)

_END: Dict[str, str] = {"PNG": "no IEND chunk", "JPEG": "no end marker after its scan"}
_END_CHECKS: Dict[str, Callable[[bytes], bool]] = {"PNG": _png_end, "JPEG": _jpeg_end}


def _complete(fmt: str, data: bytes) -> bool:
    """Whether a PNG or JPEG is whole: OpenCV decodes one cut short into a half-grey picture
    without an error. Other formats are left to the decoder."""
    check: Optional[Callable[[bytes], bool]] = _END_CHECKS.get(fmt)
    if check is None:
        return True
    try:
        return check(data)
    except (struct.error, IndexError, OverflowError, _Bad):
        return False
