"""Join MP4/MOV files of one video track by copying their coded frames: no decoding, no
re-encoding, so a long recording is joined at the speed of a file copy.

It applies to what the recorder writes (one video track, the same sample description in every
file, no B-frame reordering, no fragments) and refuses anything else with
:class:`Mp4JoinError`, for the caller to fall back to re-encoding. The output is one chunk per
input file in a single ``mdat``, then a ``moov`` built from the first file's with the sample
tables joined and the durations summed.
"""
from __future__ import annotations

import array
import itertools
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Dict, Iterable, List, Optional, Sequence, Tuple

CONTAINERS = ("moov", "trak", "mdia", "minf", "stbl", "edts")
# Every box the join understands, per parent; any other box means a file it does not handle.
ALLOWED = {
    "moov": ("mvhd", "trak", "udta", "iods", "meta"),
    "trak": ("tkhd", "edts", "mdia", "udta"),
    "edts": ("elst",),
    "mdia": ("mdhd", "hdlr", "minf"),
    "minf": ("vmhd", "dinf", "stbl", "hdlr"),
    "stbl": ("stsd", "stts", "stss", "stsc", "stsz", "stco", "co64"),
}


class Mp4JoinError(Exception):
    """The files are not ones this join handles (the caller re-encodes instead)."""


@dataclass
class Box:
    type: str
    payload: bytes = b""                       # leaf boxes
    children: List[Box] = field(default_factory=list)


@dataclass
class Track:
    """What one file contributes: its samples and their timing."""

    path: Path
    moov: Box
    media_scale: int
    movie_scale: int
    stsd: bytes
    deltas: List[int]                          # per sample, in media timescale units
    sizes: List[int]
    offsets: List[int]                         # per sample, in the file
    sync: Optional[List[int]]                  # 1-based sample numbers; None: every sample


def _parse(data: bytes, parent: str = "") -> List[Box]:
    out, pos = [], 0
    while pos < len(data):
        if pos + 8 > len(data):
            raise Mp4JoinError("truncated box header")
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        head = 8
        if size == 1:
            size, head = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        if size < head or pos + size > len(data):
            raise Mp4JoinError("bad box size")
        name = kind.decode("latin-1")
        if parent and name not in ALLOWED.get(parent, ()):
            raise Mp4JoinError(f"'{name}' inside '{parent}'")
        body = data[pos + head:pos + size]
        out.append(Box(name, children=_parse(body, name)) if name in CONTAINERS else Box(name, body))
        pos += size
    return out


def _serialise(box: Box) -> bytes:
    body = b"".join(_serialise(c) for c in box.children) if box.type in CONTAINERS else box.payload
    return struct.pack(">I4s", len(body) + 8, box.type.encode("latin-1")) + body


def _find(box: Box, path: str) -> Box:
    for name in path.split("/"):
        found = [c for c in box.children if c.type == name]
        if len(found) != 1:
            raise Mp4JoinError(f"{len(found)} '{name}' boxes")
        box = found[0]
    return box


class Fragmented(Mp4JoinError):
    """A fragmented MP4 (moof/mfra boxes): joined and counted otherwise, or not at all."""


def _has(box: Box, name: str) -> bool:
    return any(c.type == name for c in box.children)


def _top_level(f: BinaryIO, end: int) -> Dict[str, Tuple[int, int]]:
    """Top-level boxes: type -> (payload offset, payload size); only one of each."""
    found: Dict[str, Tuple[int, int]] = {}
    pos = 0
    while pos + 8 <= end:
        f.seek(pos)
        size, kind = struct.unpack(">I4s", f.read(8))
        head = 8
        if size == 1:
            size, head = struct.unpack(">Q", f.read(8))[0], 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            raise Mp4JoinError("bad top-level box")
        name = kind.decode("latin-1")
        if name in found and name in ("moov", "mdat"):
            raise Mp4JoinError(f"two '{name}' boxes")
        if name in ("moof", "mfra"):
            raise Fragmented("fragmented file")
        found[name] = (pos + head, size - head)
        pos += size
    return found


def _table(payload: bytes, width: int, header: int = 8) -> List[Tuple[int, ...]]:
    """Entries of a full box's table: version/flags, count, then ``count`` entries."""
    count = struct.unpack(">I", payload[4:8])[0]
    size = 4 * width
    if header + count * size > len(payload):
        raise Mp4JoinError("truncated table")
    fmt = ">" + "I" * width
    return [struct.unpack(fmt, payload[header + i * size:header + (i + 1) * size]) for i in range(count)]


def _read_track(path: Path) -> Track:
    with open(str(path), "rb") as f:
        f.seek(0, 2)
        top = _top_level(f, f.tell())
        if "moov" not in top or "mdat" not in top:
            raise Mp4JoinError(f"{path.name}: no moov or mdat")
        f.seek(top["moov"][0])
        moov = Box("moov", children=_parse(f.read(top["moov"][1]), "moov"))
    traks = [c for c in moov.children if c.type == "trak"]
    if len(traks) != 1:
        raise Mp4JoinError(f"{len(traks)} tracks")
    stbl = _find(traks[0], "mdia/minf/stbl")
    mdhd = _find(traks[0], "mdia/mdhd").payload
    media_scale = struct.unpack(">I", mdhd[20:24] if mdhd[0] == 1 else mdhd[12:16])[0]
    mvhd = _find(moov, "mvhd").payload
    movie_scale = struct.unpack(">I", mvhd[20:24] if mvhd[0] == 1 else mvhd[12:16])[0]
    _check_edits(traks[0])
    deltas = [d for n, d in _table(_find(stbl, "stts").payload, 2) for _ in range(n)]
    stsz = _find(stbl, "stsz").payload
    fixed, count = struct.unpack(">II", stsz[4:12])
    sizes = [fixed] * count if fixed else [s for (s,) in _table(stsz[4:], 1, 8)[:count]]
    if len(sizes) != count or len(deltas) != count:
        raise Mp4JoinError("sample tables disagree")
    sync = [n for (n,) in _table(_find(stbl, "stss").payload, 1)] if _has(stbl, "stss") else None
    return Track(path, moov, media_scale, movie_scale, _find(stbl, "stsd").payload, deltas, sizes,
                 _sample_offsets(stbl, sizes), sync)


def sample_count(path: Path) -> Optional[int]:
    """Frames in the MP4/MOV at ``path`` by its sample table, without decoding: 0 when the file
    has no complete index (a writer that ran out of disk leaves none, or a box cut short), None
    when it is laid out otherwise (fragments, several tracks): then it is not counted."""
    with open(str(path), "rb") as f:
        try:
            top = _top_level(f, f.seek(0, 2))
        except Fragmented:
            return None
        except Mp4JoinError:
            return 0
        if "moov" not in top:
            return 0
        f.seek(top["moov"][0])
        data = f.read(top["moov"][1])
    try:
        traks = [c for c in _parse(data, "moov") if c.type == "trak"]
        if len(traks) != 1:
            return None
        return int(struct.unpack(">I", _find(traks[0], "mdia/minf/stbl/stsz").payload[8:12])[0])
    except (Mp4JoinError, struct.error):
        return 0


def _check_edits(trak: Box) -> None:
    """An edit list is fine when it only says "play the media from its start"."""
    if not _has(trak, "edts"):
        return
    elst = _find(trak, "edts/elst").payload
    version, count = elst[0], struct.unpack(">I", elst[4:8])[0]
    if count != 1:
        raise Mp4JoinError(f"edit list of {count} entries")
    media_time = struct.unpack(">q", elst[16:24])[0] if version == 1 else struct.unpack(">i", elst[12:16])[0]
    if media_time != 0:
        raise Mp4JoinError(f"edit list starts at {media_time}")


def _sample_offsets(stbl: Box, sizes: List[int]) -> List[int]:
    if _has(stbl, "co64"):
        chunks = [hi << 32 | lo for hi, lo in _table(_find(stbl, "co64").payload, 2)]
    else:
        chunks = [c for (c,) in _table(_find(stbl, "stco").payload, 1)]
    runs = _table(_find(stbl, "stsc").payload, 3)
    offsets: List[int] = []
    for i, (first, per_chunk, _) in enumerate(runs):
        last = runs[i + 1][0] - 1 if i + 1 < len(runs) else len(chunks)
        for chunk in range(first - 1, min(last, len(chunks))):
            pos = chunks[chunk]
            for _ in range(per_chunk):
                if len(offsets) == len(sizes):
                    raise Mp4JoinError("more samples in chunks than sizes")
                offsets.append(pos)
                pos += sizes[len(offsets) - 1]
    if len(offsets) != len(sizes):
        raise Mp4JoinError(f"chunks hold {len(offsets)} of {len(sizes)} samples")
    return offsets


VISUAL_ENTRY = 78   # bytes of a VisualSampleEntry's own fields, before its child boxes


def _format_key(stsd: bytes) -> bytes:
    """The sample description without its bitrate hints (the ``btrt`` box and the bitrates of
    an ``esds``), which an encoder writes per file: equal keys decode alike."""
    entries = _parse(stsd[8:])
    if len(entries) != 1 or len(entries[0].payload) < VISUAL_ENTRY:
        raise Mp4JoinError(f"{len(entries)} sample descriptions")
    entry = entries[0]
    parts = [entry.type.encode("latin-1"), entry.payload[:VISUAL_ENTRY]]
    for child in _parse(entry.payload[VISUAL_ENTRY:]):
        if child.type == "btrt":
            continue
        body = _without_bitrates(child.payload) if child.type == "esds" else child.payload
        parts.append(child.type.encode("latin-1") + body)
    return b"|".join(parts)


def _descriptor(data: bytes, pos: int) -> Tuple[int, int, int]:
    """An MPEG-4 descriptor at ``pos``: (tag, body start, body end)."""
    tag, pos, size = data[pos], pos + 1, 0
    for _ in range(4):
        byte = data[pos]
        pos += 1
        size = size << 7 | byte & 0x7F
        if not byte & 0x80:
            break
    return tag, pos, pos + size


def _without_bitrates(esds: bytes) -> bytes:
    """An ``esds`` payload with the DecoderConfigDescriptor's buffer size and bitrates zeroed."""
    try:
        tag, start, end = _descriptor(esds, 4)
        if tag != 3:
            raise Mp4JoinError("esds without an ES descriptor")
        flags = esds[start + 2]
        pos = start + 3 + (2 if flags & 0x80 else 0) + (2 if flags & 0x20 else 0)
        if flags & 0x40:
            pos += 1 + esds[pos]
        tag, body, _ = _descriptor(esds, pos)
        if tag != 4:
            raise Mp4JoinError("esds without a decoder config")
    except IndexError:
        raise Mp4JoinError("truncated esds")
    return esds[:body + 2] + bytes(11) + esds[body + 13:]


def join_mp4(paths: Sequence[Path], out: Path) -> int:
    """Write the samples of ``paths``, in order, as one MP4 at ``out``; the samples written."""
    tracks = [_read_track(Path(p)) for p in paths]
    first = tracks[0]
    key = (_format_key(first.stsd), first.media_scale, first.movie_scale)
    for t in tracks[1:]:
        if (_format_key(t.stsd), t.media_scale, t.movie_scale) != key:
            raise Mp4JoinError(f"{t.path.name}: another format than {first.path.name}")
    with open(str(paths[0]), "rb") as f:
        f.seek(0, 2)
        top = _top_level(f, f.tell())
        ftyp = b""
        if "ftyp" in top:
            f.seek(top["ftyp"][0])
            ftyp = _serialise(Box("ftyp", f.read(top["ftyp"][1])))
    with open(str(out), "wb") as dst:
        dst.write(ftyp)
        mdat_at = dst.tell()
        dst.write(struct.pack(">I4sQ", 1, b"mdat", 0))   # 64-bit size, patched below
        chunk_offsets = []
        for t in tracks:
            chunk_offsets.append(dst.tell())
            _copy_samples(t, dst)
        end = dst.tell()
        dst.seek(mdat_at + 8)
        dst.write(struct.pack(">Q", end - mdat_at))
        dst.seek(end)
        dst.write(_serialise(_joined_moov(tracks, chunk_offsets)))
    return sum(len(t.sizes) for t in tracks)


def _copy_samples(track: Track, dst: BinaryIO) -> None:
    with open(str(track.path), "rb") as src:
        for offset, size in zip(track.offsets, track.sizes):
            src.seek(offset)
            data = src.read(size)
            if len(data) != size:
                raise Mp4JoinError(f"{track.path.name}: a sample lies past the end")
            dst.write(data)


def _full(version_flags: bytes, fmt: str, *values: int) -> bytes:
    return version_flags + struct.pack(fmt, *values)


def _runs(values: Iterable[int]) -> List[Tuple[int, int]]:
    """Run-length pairs (count, value)."""
    out: List[Tuple[int, int]] = []
    for v in values:
        if out and out[-1][1] == v:
            out[-1] = (out[-1][0] + 1, v)
        else:
            out.append((1, v))
    return out


def _big_endian(values: Iterable[int], code: str = "I") -> bytes:
    """Unsigned integers as big-endian bytes (an array, not a list: hours of frames stay small)."""
    packed = array.array(code, values)
    if sys.byteorder == "little":
        packed.byteswap()
    return packed.tobytes()


def _joined_tables(tracks: List[Track], chunk_offsets: List[int]) -> Dict[str, Optional[bytes]]:
    vf = b"\0\0\0\0"
    samples = sum(len(t.sizes) for t in tracks)
    stts = _runs(d for t in tracks for d in t.deltas)
    stsc: List[Tuple[int, int]] = []   # (first chunk, samples per chunk)
    for i, t in enumerate(tracks):
        if not stsc or stsc[-1][1] != len(t.sizes):
            stsc.append((i + 1, len(t.sizes)))
    stss = None
    if any(t.sync is not None for t in tracks):
        bases = [0] + list(itertools.accumulate(len(t.sizes) for t in tracks))[:-1]
        sync = array.array("I", (base + n for t, base in zip(tracks, bases)
                                 for n in (t.sync if t.sync is not None else range(1, len(t.sizes) + 1))))
        stss = _full(vf, ">I", len(sync)) + _big_endian(sync)
    return {
        "stts": _full(vf, ">I", len(stts)) + b"".join(struct.pack(">II", n, d) for n, d in stts),
        "stsc": _full(vf, ">I", len(stsc)) + b"".join(struct.pack(">III", c, n, 1) for c, n in stsc),
        "stsz": _full(vf, ">II", 0, samples) + _big_endian(s for t in tracks for s in t.sizes),
        "co64": _full(vf, ">I", len(chunk_offsets)) + _big_endian(chunk_offsets, "Q"),
        "stss": stss,
    }


def _with_duration(payload: bytes, at32: int, at64: int, value: int) -> bytes:
    """``payload`` (mvhd, tkhd or mdhd) with its duration set (versions 0 and 1)."""
    if payload[0] == 1:
        return payload[:at64] + struct.pack(">Q", value) + payload[at64 + 8:]
    if value > 0xFFFFFFFF:
        raise Mp4JoinError("duration too long for a version 0 header")
    return payload[:at32] + struct.pack(">I", value) + payload[at32 + 4:]


def _joined_moov(tracks: List[Track], chunk_offsets: List[int]) -> Box:
    first = tracks[0]
    media = sum(sum(t.deltas) for t in tracks)
    movie = (media * first.movie_scale + first.media_scale // 2) // max(1, first.media_scale)
    tables = _joined_tables(tracks, chunk_offsets)
    moov = first.moov
    mvhd = _find(moov, "mvhd")
    mvhd.payload = _with_duration(mvhd.payload, 16, 24, movie)
    trak = _find(moov, "trak")
    tkhd = _find(trak, "tkhd")
    tkhd.payload = _with_duration(tkhd.payload, 20, 28, movie)
    mdhd = _find(trak, "mdia/mdhd")
    mdhd.payload = _with_duration(mdhd.payload, 16, 24, media)
    if _has(trak, "edts"):
        elst = _find(trak, "edts/elst")
        elst.payload = _with_duration(elst.payload, 8, 8, movie)
    stbl = _find(trak, "mdia/minf/stbl")
    kept = [Box("stsd", first.stsd)]
    for name in ("stts", "stss", "stsc", "stsz", "co64"):
        payload = tables[name]
        if payload is not None:
            kept.append(Box(name, payload))
    stbl.children = kept
    return moov
