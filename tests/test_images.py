"""Hostile pictures: every image reader checks the size a file's header declares before
decoding, refuses pictures above the pixel limit (EDGE_APP_MAX_IMAGE_PIXELS) with one line
naming the file, and the commands skip such files and go on. A small PNG can declare a huge
picture: 30000x30000 zeros is 109 KB and grew train, eval and run to 6 GB and a segfault in the
hand search; 60000x60000 gave a cv2.error traceback. The commands run in processes of their
own here, so that a crash is a failed test and not a dead test run."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from edge_app.dataset.formats import read_dataset
from edge_app.dataset.verify import read_image
from edge_app.errors import ImageError, UserError
from edge_app.image_files import decode_image, header_size, load_image
from edge_app.opencv import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, OPENCV_MAX_PIXELS_ENV

from helpers import (
    capture_sim,
    fast_train,
    fuzz_settings,
    write_class_tree,
    write_image,
    write_truncated_jpeg,
    zero_png,
)

HUGE = (30000, 60000)


@pytest.fixture(scope="module")
def huge(tmp_path_factory):
    """The two PNGs of the finding: 30000x30000 and 60000x60000 zeros (109 KB and 437 KB)."""
    folder = tmp_path_factory.mktemp("huge")
    for n in HUGE:
        (folder / f"zero{n}.png").write_bytes(zero_png(n, n))
    return [folder / f"zero{n}.png" for n in HUGE]


def add(folder: Path, files) -> None:
    for f in files:
        shutil.copy(str(f), str(folder / f.name))


def edge_app(*argv: str, **env: str) -> subprocess.CompletedProcess:
    """``edge-app ARGV`` in a process of its own, with the default pixel limit unless ``env``
    sets one (a hang guard of minutes, not a time bound)."""
    environ = {k: v for k, v in os.environ.items() if k not in (MAX_PIXELS_ENV, OPENCV_MAX_PIXELS_ENV)}
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "edge_app"] + list(argv), capture_output=True,
                          text=True, env=environ, timeout=900)


def one_line_each(proc: subprocess.CompletedProcess, files, limit: str = "100 megapixels") -> None:
    """The command said, in one line each, that it skipped ``files``, why and how to read them;
    no traceback, no crash."""
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text and proc.returncode >= 0, text[-3000:]
    for f in files:
        lines = [line for line in text.splitlines() if f.name in line]
        assert len(lines) == 1, (f.name, lines, text[-3000:])
        assert f"above the limit of {limit}" in lines[0] and f"{MAX_PIXELS_ENV}=" in lines[0], lines[0]


# -- the reader ---------------------------------------------------------------------------

def test_data_info_names_each_huge_picture_and_goes_on(tmp_path, huge):
    root = write_class_tree(tmp_path / "ds", {"thumbs_up": 2, "thumbs_down": 2})
    add(root / "thumbs_up", huge)
    proc = edge_app("data", "info", "--task", "thumbs", "--subject", "none", str(root))
    assert proc.returncode == 0, proc.stderr
    one_line_each(proc, huge)
    assert "images    4" in proc.stdout and "problems  2" in proc.stdout


def test_a_picture_at_the_limit_loads_and_one_pixel_more_does_not(tmp_path, monkeypatch):
    monkeypatch.setenv(MAX_PIXELS_ENV, "10000")
    for ext in (".png", ".jpg", ".bmp", ".webp", ".tiff"):
        at = write_image(tmp_path / f"at{ext}", 100, 100)
        over = write_image(tmp_path / f"over{ext}", 101, 100)
        assert load_image(at).shape == (100, 100, 3)
        with pytest.raises(ImageError) as err:
            load_image(over)
        message = str(err.value)
        assert message.startswith(f"{over}: 101x100 ") and "\n" not in message, message
        assert "above the limit of 10000 pixels" in message and f"{MAX_PIXELS_ENV}=10100 or more" in message
        image, why = read_image(over)
        assert image is None and why == err.value.reason
    ds = read_dataset(write_class_tree(tmp_path / "ds", {"a": 1, "b": 1}, 101, 100)).verify()
    assert ds.samples == [] and len(ds.problems) == 2
    monkeypatch.setenv(MAX_PIXELS_ENV, "10100")
    assert len(read_dataset(tmp_path / "ds").verify().samples) == 2


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5", "nan", "inf", "1e300"])
def test_a_bad_limit_is_one_line(tmp_path, monkeypatch, value):
    path = write_image(tmp_path / "a.png", 8, 8)
    monkeypatch.setenv(MAX_PIXELS_ENV, value)
    with pytest.raises(UserError) as err:
        load_image(path)
    assert not isinstance(err.value, ImageError), "no fault of the file"
    assert MAX_PIXELS_ENV in str(err.value) and "\n" not in str(err.value)
    monkeypatch.setenv(MAX_PIXELS_ENV, "1_000_000")
    assert load_image(path).shape == (8, 8, 3)


def test_opencv_is_given_the_limit_before_it_loads():
    """OpenCV reads OPENCV_IO_MAX_IMAGE_PIXELS once, when loaded: importing edge_app sets it
    (unless the user did), so that OpenCV itself refuses what the header check might miss."""
    code = """if True:
        import os, sys
        import numpy as np
        import edge_app, cv2
        print(os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS"))
        for w in (100, 101):
            ok, buf = cv2.imencode(".png", np.zeros((100, w, 3), np.uint8))
            try:
                print(w, cv2.imdecode(buf, cv2.IMREAD_COLOR).shape)
            except cv2.error:
                print(w, "refused")
        from edge_app.image_files import decode_image
        from edge_app.errors import ImageError
        ok, buf = cv2.imencode(".png", np.zeros((10, 10, 3), np.uint8))
        try:
            print(decode_image(buf.tobytes(), "ten.png").shape)
        except ImageError as exc:
            print(exc)
    """
    environ = {k: v for k, v in os.environ.items() if k != OPENCV_MAX_PIXELS_ENV}
    environ[MAX_PIXELS_ENV] = "10000"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ,
                         timeout=300).stdout.splitlines()
    assert out[:3] == ["10000", "100 (100, 100, 3)", "101 refused"], out
    environ[OPENCV_MAX_PIXELS_ENV] = "50"   # the user's own setting is kept, and named
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ,
                         timeout=300).stdout.splitlines()
    assert out[0] == "50" and out[3].startswith("ten.png: 10x10 is above OpenCV's limit"), out
    assert f"{OPENCV_MAX_PIXELS_ENV}=50" in out[3]


def test_every_format_opencv_decodes_has_its_size_read():
    import cv2

    image = (np.random.default_rng(0).random((80, 100, 3)) * 255).astype(np.uint8)
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    cases = {".png": image, ".jpg": image, ".bmp": image, ".webp": image, ".gif": image,
             ".tiff": image, ".pgm": grey, ".ppm": image, ".pbm": grey, ".pam": image,
             ".pfm": image.astype(np.float32) / 255, ".ras": image, ".hdr": image.astype(np.float32) / 255,
             ".jp2": image, ".avif": image}
    seen = set()
    for ext, pixels in cases.items():
        try:
            ok, buf = cv2.imencode(ext, pixels)
        except cv2.error:   # a build without that codec
            continue
        data = buf.tobytes()
        head = header_size(data)
        assert (head.width, head.height) == (100, 80), (ext, head)
        assert decode_image(data, ext).shape == (80, 100, 3), ext
        seen.add(head.format)
        if ext == ".jp2":   # the bare codestream too
            stream = data[data.find(b"jp2c") + 4:]
            assert (header_size(stream).width, header_size(stream).height) == (100, 80)
    assert {"PNG", "JPEG", "BMP", "TIFF", "PNM"} <= seen, seen
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert header_size(buf.tobytes()).width == 100


def test_headers_that_lie_are_refused_before_decoding(tmp_path, huge):
    for f in huge:   # whole and valid: refused for the size they declare
        with pytest.raises(ImageError, match=r"is \d+ megapixels, above the limit of 100 megapixels"):
            load_image(f)
    png = zero_png(64, 64)
    lying = png[:16] + struct.pack(">II", 40000, 40000) + png[24:]   # a small IDAT, a huge IHDR
    with pytest.raises(ImageError, match="40000x40000 PNG is 1600 megapixels"):
        decode_image(lying, "lie.png")
    jpeg = write_image(tmp_path / "a.jpg", 64, 48).read_bytes()
    sof = jpeg.find(b"\xff\xc0")
    lying = jpeg[:sof + 5] + struct.pack(">HH", 65000, 65000) + jpeg[sof + 9:]
    with pytest.raises(ImageError, match="65000x65000 JPEG"):
        decode_image(lying, "lie.jpg")
    gif = _gif_with_frame(10, 10, 50000, 50000)   # a frame far past its logical screen
    with pytest.raises(ImageError, match="frames or tiles span 2500 megapixels"):
        decode_image(gif, "lie.gif")


def _gif_with_frame(w: int, h: int, fw: int, fh: int) -> bytes:
    return (b"GIF89a" + struct.pack("<HHBBB", w, h, 0, 0, 0) + b"\x2c" + struct.pack("<HHHHB", 0, 0, fw, fh, 0)
            + b"\x02\x02\x44\x01\x00\x3b")


def test_cut_short_garbage_and_empty_are_one_line(tmp_path):
    cut = write_truncated_jpeg(tmp_path / "cut.jpg")
    png = zero_png(64, 64)
    (tmp_path / "cut.png").write_bytes(png[:-20])
    (tmp_path / "garbage.png").write_bytes(b"this is not a picture at all")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "header.png").write_bytes(png[:20])
    (tmp_path / "damaged.png").write_bytes(png[:12] + b"IDAT" + png[16:])
    reasons = {}
    for f in [cut] + [tmp_path / n for n in ("cut.png", "garbage.png", "empty.jpg", "header.png", "damaged.png")]:
        with pytest.raises(ImageError) as err:
            load_image(f)
        assert str(err.value).startswith(f"{f}: ") and "\n" not in str(err.value)
        reasons[f.name] = err.value.reason
    assert reasons["cut.jpg"].startswith("truncated JPEG") and reasons["cut.png"].startswith("truncated PNG")
    assert reasons["garbage.png"] == "not an image OpenCV can decode" and reasons["empty.jpg"] == "empty file"
    assert reasons["header.png"] == "truncated PNG: the file ends inside its header"
    assert reasons["damaged.png"] == "damaged PNG header: its first chunk is not IHDR"
    # A phone's motion photo: a video after the JPEG's end marker; a thumbnail before its scan.
    whole = write_image(tmp_path / "a.jpg", 64, 48).read_bytes()
    assert load_image(tmp_path / "a.jpg").shape == (48, 64, 3)
    assert decode_image(whole + os.urandom(4096), "motion.jpg").shape == (48, 64, 3)


# -- the commands -------------------------------------------------------------------------

def test_run_on_a_folder_skips_each_bad_picture_with_one_line(tmp_path, huge):
    from edge_app.subject.mediapipe_finder import mediapipe_available

    if not mediapipe_available():   # the built-in hands model is MediaPipe's
        pytest.skip("MediaPipe is not installed (python -m edge_app.subject.install)")
    src = tmp_path / "src"
    for i in range(3):
        write_image(src / f"good_{i}.jpg", 96, 64)
    add(src, huge)
    write_truncated_jpeg(src / "cut.jpg")
    (src / "garbage.png").write_bytes(os.urandom(300))
    proc = edge_app("run", "--model", "hands", "--headless", "--frames", "10", "--source", str(src))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    one_line_each(proc, huge)
    assert "3 frames" in proc.stdout, proc.stdout
    for name in ("cut.jpg", "garbage.png"):
        assert sum(name in line for line in proc.stdout.splitlines()) == 1, proc.stdout


def test_train_and_eval_skip_each_huge_picture_with_one_line(tmp_path, huge):
    pytest.importorskip("torch")
    data = capture_sim("thumbs", tmp_path / "d", 8, 1, "128x96")
    add(data / "thumbs_up", huge)
    bundle = tmp_path / "b"
    proc = edge_app("train", "--task", "thumbs", "--data", str(data), "--out", str(bundle),
                    *fast_train(64, 1, "--input", "frame"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    one_line_each(proc, huge)
    assert (bundle / "bundle.json").is_file()
    proc = edge_app("eval", "--model", str(bundle), "--data", str(data), "--json", str(tmp_path / "e.json"),
                    "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    one_line_each(proc, huge)


def test_the_limit_can_be_raised_to_read_a_big_picture(tmp_path):
    root = write_class_tree(tmp_path / "ds", {"thumbs_up": 1, "thumbs_down": 1})
    (root / "thumbs_up" / "wide.png").write_bytes(zero_png(3000, 2000))
    proc = edge_app("data", "info", "--task", "thumbs", "--subject", "none", "--json", "-", str(root),
                    **{MAX_PIXELS_ENV: "5000000"})
    assert proc.returncode == 0 and "above the limit of 5 megapixels" in proc.stdout, proc.stdout
    proc = edge_app("data", "info", "--task", "thumbs", "--subject", "none", "--json", "-", str(root),
                    **{MAX_PIXELS_ENV: "6000000"})
    assert proc.returncode == 0 and '"3000x2000": 1' in proc.stdout, proc.stdout
    proc = edge_app("data", "info", "--task", "thumbs", str(root), **{MAX_PIXELS_ENV: "lots"})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and MAX_PIXELS_ENV in proc.stderr, proc.stderr


def test_every_image_read_goes_through_the_one_reader():
    """No reader of its own: a cv2.imread or imdecode elsewhere would skip the header check."""
    repo = Path(__file__).resolve().parents[1]
    offenders = [str(p.relative_to(repo)) for package in ("edge_app", "train", "export", "benchmarks")
                 for p in (repo / package).rglob("*.py")
                 if p.name != "image_files.py" and "train" not in p.relative_to(repo).parts[1:2]
                 and "export" not in p.relative_to(repo).parts[1:2]   # edge_app/train, edge_app/export: links
                 and any(call in p.read_text() for call in ("imread(", "imdecode(", "Image.open("))]
    assert offenders == []


def test_the_default_fits_any_camera():
    assert DEFAULT_MAX_PIXELS >= 7680 * 4320 * 2   # twice 8K


# -- fuzz ---------------------------------------------------------------------------------
try:
    from hypothesis import given
    from hypothesis import strategies as st
except ImportError:   # the Python 3.8 run installs the runtime and pytest only
    given = None

if given is not None:
    FUZZ = fuzz_settings()
    FUZZ_LIMIT = 1_000_000   # pictures the fuzz may decode stay small

    def _refused_or_small(data: bytes) -> None:
        """The header parser and the decoder on ``data``: an ImageError of one line, or a size
        within the limit; nothing else raised, nothing larger decoded."""
        try:
            head = header_size(data)
            assert head.width >= 1 and head.height >= 1 and head.pixels >= head.width * head.height
        except ImageError as exc:
            assert "\n" not in str(exc)
        try:
            image = decode_image(data, "fuzz")
            assert image.ndim == 3 and image.shape[0] * image.shape[1] <= FUZZ_LIMIT
        except ImageError as exc:
            assert "\n" not in str(exc) and str(exc).startswith("fuzz: ")

    @pytest.fixture
    def fuzz_limit(monkeypatch):
        monkeypatch.setenv(MAX_PIXELS_ENV, str(FUZZ_LIMIT))

    def _chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    SIDES = st.one_of(st.integers(0, 2 ** 32 - 1), st.integers(0, 2000), st.sampled_from([0, 1, 999, 1000, 1001]))

    @st.composite
    def pngs(draw):
        """A PNG whose IHDR declares any size, depth and colour type, its data for another
        size, cut anywhere."""
        w, h = draw(SIDES), draw(SIDES)
        depth, colour = draw(st.sampled_from([1, 2, 4, 8, 16, 3, 0])), draw(st.sampled_from([0, 2, 3, 4, 6, 1]))
        rows = draw(st.integers(0, 64))
        raw = zlib.compress(b"\0" * rows * (1 + draw(st.integers(0, 300))))
        data = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0))
                + _chunk(b"IDAT", raw) + _chunk(b"IEND", b""))
        return data[:draw(st.integers(0, len(data)))] if draw(st.booleans()) else data

    @st.composite
    def jpegs(draw):
        """A real JPEG whose SOF declares any size (or a bare header), cut anywhere."""
        import cv2

        h0, w0 = draw(st.integers(1, 40)), draw(st.integers(1, 40))
        data = cv2.imencode(".jpg", np.full((h0, w0, 3), 90, np.uint8))[1].tobytes()
        sof = data.find(b"\xff\xc0")
        w, h = draw(st.integers(0, 65535)), draw(st.integers(0, 65535))
        data = data[:sof + 5] + struct.pack(">HH", h, w) + data[sof + 9:]
        if draw(st.booleans()):
            data = data[:draw(st.integers(0, len(data)))]
        return data

    SIGNATURES = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"RIFF\0\0\0\0WEBPVP8X", b"RIFF\0\0\0\0WEBPVP8L",
                  b"RIFF\0\0\0\0WEBPVP8 ", b"GIF89a", b"II*\0", b"MM\0*", b"II+\0\x08\0\0\0", b"P6\n", b"P7\n",
                  b"PF\n", b"\x59\xa6\x6a\x95", b"#?RADIANCE\n", b"\xff\x4f\xff\x51",
                  b"\0\0\0\x0cjP  \r\n\x87\n", b"\0\0\0\x18ftypavif\0\0\0\0avifmif1"]

    @FUZZ
    @given(data=st.binary(max_size=200))
    def test_fuzz_random_bytes(fuzz_limit, data):
        _refused_or_small(data)

    @FUZZ
    @given(signature=st.sampled_from(SIGNATURES), tail=st.binary(max_size=120))
    def test_fuzz_every_format_header(fuzz_limit, signature, tail):
        _refused_or_small(signature + tail)

    @FUZZ
    @given(data=pngs())
    def test_fuzz_png_headers(fuzz_limit, data):
        _refused_or_small(data)

    @FUZZ
    @given(data=jpegs())
    def test_fuzz_jpeg_headers(fuzz_limit, data):
        _refused_or_small(data)

    @st.composite
    def damaged(draw):
        """A real small picture of each format, bytes overwritten and the file cut anywhere."""
        import cv2

        ext = draw(st.sampled_from([".png", ".jpg", ".bmp", ".webp", ".gif", ".tiff", ".ppm", ".ras", ".pam"]))
        data = bytearray(cv2.imencode(ext, np.full((9, 13, 3), 77, np.uint8))[1].tobytes())
        for at, value in draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), max_size=6)):
            data[at] = value
        return bytes(data[:draw(st.integers(0, len(data)))])

    @FUZZ
    @given(data=damaged())
    def test_fuzz_damaged_pictures(fuzz_limit, data):
        _refused_or_small(data)
