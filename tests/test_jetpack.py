"""JetPack as it really ships: the release table the installer reads, each release's pins
(checked offline, and against PyPI by the network test), the TensorRT 8.5/8.6/10/11 shims
against stand-in ``tensorrt`` modules, INT8 calibration and the timing cache with a stand-in
builder that records its calls, the backend fallback, and power modes from nvpmodel tables."""
from __future__ import annotations

import re
import subprocess
import sys
import types
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List

import numpy as np
import pytest

from edge_app.device import jetpack, power
from edge_app.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "nvpmodel"


# --- the release table ----------------------------------------------------------------------

@pytest.mark.parametrize("text,release", [
    ("# R35 (release), REVISION: 2.1, GCID: 32413640, BOARD: t186ref, EABI: aarch64", "5.1.x"),
    ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64", "5.1.x"),
    ("# R35 (release), REVISION: 6.0, GCID: 1, BOARD: generic, EABI: aarch64", "5.1.x"),
    ("# R36 (release), REVISION: 2.0, GCID: 35084178, BOARD: generic, EABI: aarch64", "6.0"),
    ("# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, EABI: aarch64", "6.0"),
    ("# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64", "6.1/6.2"),
    ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64", "6.1/6.2"),
    ("r35.4.1", "5.1.x"), ("r36.2.0", "6.0"), ("36.4.3", "6.1/6.2"),   # container tags too
])
def test_l4t_release_picks_its_jetpack_constraints_and_wheel(text, release):
    row = jetpack.release_for(text)
    assert row.jetpack == release
    assert (DEPLOY / row.constraints).is_file()
    assert row.torch_wheel.startswith(jetpack.TORCH_REDIST)
    tag = "cp" + row.python.replace(".", "")
    assert f"-{tag}-{tag}-linux_aarch64.whl" in row.torch_wheel, "the wheel is for its Python"


def test_each_release_has_its_own_torch_wheel():
    wheels = {r.jetpack: r.torch_wheel for r in jetpack.RELEASES}
    assert "/v512/" in wheels["5.1.x"] and "torch-2.1" in wheels["5.1.x"]
    assert "/v60/" in wheels["6.0"] and "torch-2.4" in wheels["6.0"]
    assert "/v61/" in wheels["6.1/6.2"], "JetPack 6.1/6.2 (CUDA 12.6) needs its own wheel"
    assert len(set(wheels.values())) == 3


@pytest.mark.parametrize("text,says", [
    ("# R35 (release), REVISION: 1.0, GCID: 31346300, BOARD: t186ref, EABI: aarch64", "TensorRT 8.4"),
    ("# R32 (release), REVISION: 7.4, GCID: 33514132, BOARD: t210ref, EABI: aarch64", "JetPack 4"),
    ("# R34 (release), REVISION: 1.1, GCID: 1, BOARD: t186ref, EABI: aarch64", "not a release"),
    ("# R36 (release), REVISION: 0.0, GCID: 1, BOARD: generic, EABI: aarch64", "not a release"),
    ("# R38 (release), REVISION: 2.0, GCID: 1, BOARD: generic, EABI: aarch64", "not a release"),
    ("garbage", "cannot read"),
])
def test_unsupported_releases_are_one_line(text, says):
    with pytest.raises(jetpack.UnsupportedRelease) as err:
        jetpack.release_for(text)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_table_runs_as_a_script_for_the_installer(tmp_path):
    release = tmp_path / "nv_tegra_release"
    release.write_text("# R35 (release), REVISION: 1.0, GCID: 1, BOARD: t186ref, EABI: aarch64\n")
    script = str(ROOT / "edge_app" / "device" / "jetpack.py")
    bad = subprocess.run([sys.executable, script, "--release-file", str(release), "constraints"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stdout == "" and bad.stderr.count("\n") == 1
    release.write_text("# R36 (release), REVISION: 4.3, GCID: 1, BOARD: generic, EABI: aarch64\n")
    good = subprocess.run([sys.executable, script, "--release-file", str(release), "constraints"],
                          capture_output=True, text=True)
    assert good.returncode == 0 and good.stdout.strip() == "constraints-jetpack-6.1-6.2.txt"


# --- the constraints files ------------------------------------------------------------------

def _pins(path: Path) -> Dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", path.read_text(), re.M))


@pytest.mark.parametrize("row", jetpack.RELEASES, ids=lambda r: r.jetpack)
def test_constraints_pin_numpy_one_at_or_above_what_opencv_was_built_with(row):
    pins = _pins(DEPLOY / row.constraints)
    numpy = tuple(int(v) for v in pins["numpy"].split(".")[:2])
    built = tuple(int(v) for v in row.numpy_built.split("."))
    assert numpy[0] == 1 and numpy >= built, "JetPack's OpenCV and NVIDIA's torch are numpy-1 builds"
    if row.tensorrt.startswith("8.5"):
        assert numpy < (1, 24), "TensorRT 8.5's trt.nptype maps BOOL to np.bool, gone in numpy 1.24"
    assert "onnxruntime" in pins, "what the installer pip-installs is pinned"
    assert not any(name.startswith("opencv") for name in pins), "never a pip OpenCV"


def test_every_constraints_file_belongs_to_a_release():
    files = {p.name for p in DEPLOY.glob("constraints-*.txt")}
    assert files == {r.constraints for r in jetpack.RELEASES}


def _pypi_reachable() -> bool:
    try:
        urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=5).close()
    except Exception:
        return False
    return True


@pytest.mark.network
@pytest.mark.timeout(600)
def test_every_release_resolves_at_its_pins_from_pypi():
    """pip's resolver, for each release's Python on aarch64, with the installer's packages."""
    if not _pypi_reachable():
        pytest.skip("PyPI is unreachable: the resolver check needs the package index")
    proc = subprocess.run([sys.executable, str(DEPLOY / "resolve_check.py")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert proc.stdout.count("ok  JetPack") == len(jetpack.RELEASES)


# --- stand-in TensorRT modules ----------------------------------------------------------------

class FakeTimingCache:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def serialize(self) -> bytes:
        return b"TIMINGS-FOR-THIS-BOARD"


class FakeProfile:
    def __init__(self) -> None:
        self.shapes: Dict[str, tuple] = {}

    def set_shape(self, name, low, opt, high) -> None:
        self.shapes[name] = (tuple(low), tuple(opt), tuple(high))


class FakeConfig:
    """Records what the builder is told; refuses timing caches that another setup wrote."""

    def __init__(self, log: List[Any]) -> None:
        self.log, self.int8_calibrator, self.cache = log, None, None

    def set_memory_pool_limit(self, pool, size) -> None:
        self.log.append(("workspace", size))

    def set_flag(self, flag) -> None:
        self.log.append(("flag", flag))

    def add_optimization_profile(self, profile) -> int:
        self.log.append(("profile", profile.shapes))
        return 0

    def set_calibration_profile(self, profile) -> bool:
        self.log.append(("calibration_profile", profile.shapes))
        return True

    def create_timing_cache(self, data: bytes) -> FakeTimingCache:
        if data.startswith(b"CORRUPT"):
            raise RuntimeError("Error Code 2: Internal Error (timing cache corrupt)")
        return FakeTimingCache(data)

    def set_timing_cache(self, cache, ignore_mismatch) -> bool:
        self.log.append(("timing_cache", cache.data))
        accepted = not cache.data.startswith(b"DESKTOP")
        if accepted:
            self.cache = cache
        return accepted

    def get_timing_cache(self):
        return self.cache


def fake_trt(version: str, inputs=(("pixels", (-1, 3, 8, 8)),)) -> types.ModuleType:
    """A ``tensorrt`` module as each release shapes it: 8.x/10.x have precision flags and
    ``platform_has_fast_fp16``; 11 has neither (strongly typed). ``nptype`` is TensorRT 8.5's,
    which fails under numpy >= 1.24."""
    major = int(version.split(".")[0])
    log: List[Any] = []
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.log = log
    trt.BuilderFlag = SimpleNamespace(FP16="FP16", INT8="INT8") if major < 11 else SimpleNamespace()
    trt.NetworkDefinitionCreationFlag = SimpleNamespace(EXPLICIT_BATCH=0, STRONGLY_TYPED=5)
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level=0: None})
    trt.MemoryPoolType = SimpleNamespace(WORKSPACE="WORKSPACE")
    trt.Dims = lambda dims: tuple(dims)
    trt.DataType = SimpleNamespace(**{n: SimpleNamespace(name=n) for n in
                                      ("FLOAT", "HALF", "INT8", "INT32", "BOOL", "BF16")})

    def nptype(dtype):
        raise AttributeError("module 'numpy' has no attribute 'bool'")
    trt.nptype = nptype

    class Builder:
        def __init__(self, logger) -> None:
            if major < 11:
                self.platform_has_fast_fp16 = True
                self.platform_has_fast_int8 = True

        def create_network(self, flags):
            log.append(("network_flags", flags))
            net = SimpleNamespace(num_inputs=len(inputs))
            net.get_input = lambda i: SimpleNamespace(name=inputs[i][0], shape=inputs[i][1])
            return net

        def create_builder_config(self):
            return FakeConfig(log)

        def create_optimization_profile(self):
            return FakeProfile()

        def build_serialized_network(self, network, config):
            log.append(("calibrator", config.int8_calibrator))
            return b"ENGINE"

    class OnnxParser:
        num_errors = 0

        def __init__(self, network, logger) -> None:
            pass

        def parse(self, data: bytes) -> bool:
            log.append(("parsed", data))
            return True
    trt.Builder, trt.OnnxParser = Builder, OnnxParser
    return trt


@pytest.fixture
def use_trt(monkeypatch):
    """Install a stand-in tensorrt module for the test."""
    def install(version: str, **kwargs) -> types.ModuleType:
        module = fake_trt(version, **kwargs)
        monkeypatch.setitem(sys.modules, "tensorrt", module)
        return module
    return install




def _device():
    from edge_app.export.engine_cache import DeviceInfo

    return DeviceInfo("10.3.0", "Orin", "8.7")


def _build(tmp_path: Path, precision: str = "fp16", **kwargs) -> List[str]:
    from edge_app.export.tensorrt_build import build_engine

    onnx_path = tmp_path / "model.onnx"
    if not onnx_path.exists():
        onnx_path.write_bytes(b"ONNX")
    notes: List[str] = []
    build_engine(onnx_path, tmp_path / "model.engine", precision, log=notes.append,
                 device=_device(), **kwargs)
    return notes


# --- TensorRT version shims ------------------------------------------------------------------

@pytest.mark.parametrize("version", ["8.5.2.2", "8.6.2.3", "10.3.0.30", "11.0.0"])
def test_output_dtypes_never_call_trt_nptype(use_trt, version):
    from edge_app.backends.trt import TrtBackend
    from edge_app.export.trt_compat import numpy_dtype

    trt = use_trt(version)
    backend = TrtBackend()
    backend.engine = SimpleNamespace(get_tensor_dtype=lambda name: getattr(trt.DataType, name))
    assert backend._dtype("BOOL") == np.bool_ and backend._dtype("INT32") == np.int32
    assert backend._dtype("HALF") == np.float16 and backend._dtype("FLOAT") == np.float32
    assert numpy_dtype("DataType.INT8") == np.int8, "str() of a real DataType works too"
    with pytest.raises(UserError, match="BF16"):
        backend._dtype("BF16")


@pytest.mark.parametrize("version,flags", [
    ("8.5.2.2", 1 << 0), ("8.6.2.3", 1 << 0), ("10.3.0.30", 0), ("11.0.0", 1 << 5)])
def test_network_flags_per_release(use_trt, tmp_path, version, flags):
    trt = use_trt(version)
    _build(tmp_path, "fp32")
    assert ("network_flags", flags) in trt.log


def test_tensorrt_before_8_5_is_one_line_in_the_backend(use_trt, tmp_path):
    from edge_app.backends.trt import TrtBackend

    use_trt("8.4.1.5")
    model = SimpleNamespace(onnx=tmp_path / "model.onnx", name="m")
    with pytest.raises(UserError) as err:
        TrtBackend().load(model)
    assert "8.4.1.5" in str(err.value) and "8.5" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("version", ["8.5.2.2", "8.6.2.3", "10.3.0.30"])
def test_fp16_and_int8_use_builder_flags_before_11(use_trt, tmp_path, version):
    trt = use_trt(version)
    _build(tmp_path, "fp16")
    assert [e for e in trt.log if e[0] == "flag"] == [("flag", "FP16")]


def test_tensorrt_11_is_strongly_typed(use_trt, tmp_path):
    """No platform_has_fast_fp16 and no precision flags: FP16 is an FP16 ONNX graph; INT8 is
    one line saying so."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxconverter_common")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["pixels"], ["out"])], "g",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", 3, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 3, 8, 8])])
    (tmp_path / "model.onnx").write_bytes(helper.make_model(graph).SerializeToString())
    trt = use_trt("11.0.0")
    _build(tmp_path, "fp16")
    assert not [e for e in trt.log if e[0] == "flag"]
    parsed = onnx.load_from_string(next(e[1] for e in trt.log if e[0] == "parsed"))
    assert any(n.op_type == "Cast" for n in parsed.graph.node), "parsed the FP16 graph"
    with pytest.raises(UserError) as err:
        _build(tmp_path, "int8", calibration=lambda: iter([(np.zeros((8, 3, 8, 8), np.float32),)]))
    assert "strongly typed" in str(err.value) and "\n" not in str(err.value)


def test_a_gpu_without_fast_fp16_is_refused(use_trt, tmp_path, monkeypatch):
    trt = use_trt("8.5.2.2")
    real = trt.Builder

    class Slow(real):
        def __init__(self, logger):
            super().__init__(logger)
            self.platform_has_fast_fp16 = False
    monkeypatch.setattr(trt, "Builder", Slow)
    with pytest.raises(UserError, match="no fast FP16"):
        _build(tmp_path, "fp16")


# --- INT8 calibration ------------------------------------------------------------------------

def _recording_calibrator(monkeypatch) -> List[Dict[str, np.ndarray]]:
    from edge_app.export import tensorrt_build

    feeds: List[Dict[str, np.ndarray]] = []

    def calibrator(names, batches):
        feeds.extend(dict(zip(names, b)) for b in batches())
        return "calibrator"
    monkeypatch.setattr(tensorrt_build, "_calibrator", calibrator)
    return feeds


def test_int8_calibrates_at_a_profile_of_the_calibration_batch(use_trt, tmp_path, monkeypatch):
    from edge_app.export.tensorrt_build import calibration_batches

    trt = use_trt("8.5.2.2")
    feeds = _recording_calibrator(monkeypatch)
    images = np.arange(20 * 3 * 8 * 8, dtype=np.float32).reshape(20, 3, 8, 8)
    _build(tmp_path, "int8", calibration=calibration_batches(images, batch=8))
    assert ("profile", {"pixels": ((1, 3, 8, 8), (1, 3, 8, 8), (8, 3, 8, 8))}) in trt.log, \
        "the live loop's profile keeps batch 1 as its opt shape"
    assert ("calibration_profile", {"pixels": ((8, 3, 8, 8),) * 3}) in trt.log, \
        "calibration runs at exactly the calibration batch, not profile 0's opt batch 1"
    assert ("calibrator", "calibrator") in trt.log
    assert [f["pixels"].shape[0] for f in feeds] == [8, 8], "whole batches of 8"
    assert np.array_equal(np.concatenate([f["pixels"] for f in feeds]), images[:16])


def test_int8_on_a_fixed_batch_graph_rebatches_to_it(use_trt, tmp_path, monkeypatch):
    from edge_app.export.tensorrt_build import calibration_batches

    trt = use_trt("10.3.0.30", inputs=(("pixels", (2, 3, 8, 8)),))
    feeds = _recording_calibrator(monkeypatch)
    images = np.random.default_rng(0).random((8, 3, 8, 8)).astype(np.float32)
    _build(tmp_path, "int8", calibration=calibration_batches(images, batch=8))
    assert not [e for e in trt.log if e[0] in ("profile", "calibration_profile")]
    assert [f["pixels"].shape for f in feeds] == [(2, 3, 8, 8)] * 4
    assert np.array_equal(np.concatenate([f["pixels"] for f in feeds]), images)


def test_int8_without_images_is_one_line(use_trt, tmp_path):
    use_trt("8.6.2.3")
    with pytest.raises(UserError, match="calibration images"):
        _build(tmp_path, "int8")


# --- the timing cache ------------------------------------------------------------------------

def test_timing_cache_is_keyed_and_beside_the_engines(use_trt, tmp_path):
    from edge_app.export.engine_cache import DeviceInfo, timing_cache_path

    trt = use_trt("10.3.0.30")
    _build(tmp_path, timing_cache=tmp_path / "timing.cache")   # export/cli.py's keyword
    keyed = timing_cache_path(tmp_path, _device())
    assert keyed.name == "timing.trt10.3.0.sm87.orin.cache"
    assert keyed.read_bytes() == b"TIMINGS-FOR-THIS-BOARD"
    assert not (tmp_path / "timing.cache").exists(), "never one unkeyed cache per bundle"
    assert ("timing_cache", b"") in trt.log
    desktop = timing_cache_path(tmp_path, DeviceInfo("10.3.0", "NVIDIA GeForce RTX 4090", "8.9"))
    assert desktop != keyed, "a desktop's cache never reaches the board"
    _build(tmp_path, timing_cache=tmp_path)   # a folder works too, and reads the cache back
    assert ("timing_cache", b"TIMINGS-FOR-THIS-BOARD") in trt.log


@pytest.mark.parametrize("content", [b"DESKTOP-TIMINGS", b"CORRUPT"])
def test_a_refused_timing_cache_is_a_note_and_a_build_without_it(use_trt, tmp_path, content):
    from edge_app.export.engine_cache import timing_cache_path

    trt = use_trt("8.6.2.3")
    keyed = timing_cache_path(tmp_path, _device())
    keyed.write_bytes(content)
    notes = _build(tmp_path, timing_cache=tmp_path)
    refused = [n for n in notes if "timing cache" in n]
    assert len(refused) == 1 and "\n" not in refused[0] and keyed.name in refused[0]
    assert (tmp_path / "model.engine").read_bytes() == b"ENGINE"
    assert ("timing_cache", b"") in trt.log, "rebuilt with a fresh cache"
    assert keyed.read_bytes() == b"TIMINGS-FOR-THIS-BOARD", "the refused cache is replaced"


# --- choose_backend: load and warm-up ---------------------------------------------------------

class _Stub:
    """A backend whose load or warm-up can fail like the TensorRT one on numpy 1.24."""

    name = "stub"
    fail_in = ""
    closed: List[str] = []

    def __init__(self, threads=None) -> None:
        self.warm = False

    @classmethod
    def create(cls, threads=None, options=None):
        return cls(threads)

    def load(self, model) -> None:
        if self.fail_in == "load":
            raise RuntimeError("CUDA driver version is insufficient")

    def warmup(self, model, runs: int = 3) -> None:
        if self.fail_in == "warmup":
            raise AttributeError("module 'numpy' has no attribute 'bool'")
        self.warm = True

    def close(self) -> None:
        _Stub.closed.append(self.name)


class BrokenAtWarmup(_Stub):
    name, fail_in = "fast", "warmup"


class BrokenAtLoad(_Stub):
    name, fail_in = "faster", "load"


class Works(_Stub):
    name = "slow"


@pytest.fixture
def stub_registry(monkeypatch):
    from edge_app.backends import registry as backends

    _Stub.closed = []
    monkeypatch.setattr(backends, "BACKENDS", {
        "faster": backends.BackendEntry("test_jetpack:BrokenAtLoad"),
        "fast": backends.BackendEntry("test_jetpack:BrokenAtWarmup"),
        "slow": backends.BackendEntry("test_jetpack:Works")})
    return SimpleNamespace(runs_on=None, name="thumbs")


def test_auto_falls_back_when_a_backend_fails_in_load_or_warm_up(stub_registry):
    from edge_app.backends.registry import choose_backend

    backend, why = choose_backend("auto", stub_registry)
    assert isinstance(backend, Works) and backend.warm, "chosen, and already warmed up"
    assert "fast: AttributeError: module 'numpy' has no attribute 'bool'" in why
    assert "faster: RuntimeError: CUDA driver version is insufficient" in why
    assert _Stub.closed == ["faster", "fast"], "the failed backends are closed"
    backend, _ = choose_backend("auto", stub_registry, warmup=False)
    assert not backend.warm, "callers that warm up themselves can say so"


def test_an_asked_for_backend_that_fails_warm_up_is_one_line(stub_registry):
    from edge_app.backends.registry import choose_backend

    with pytest.raises(UserError) as err:
        choose_backend("fast", stub_registry)
    assert "--backend fast cannot run thumbs: AttributeError" in str(err.value)
    assert _Stub.closed == ["fast"]


# --- power modes -----------------------------------------------------------------------------

@pytest.mark.parametrize("fixture,best,best_id,mode0_is_max", [
    ("orin-nano-8gb-jetpack-6.2.conf", "MAXN_SUPER", 2, False),   # 0 is 15 W there
    ("orin-nano-8gb-jetpack-6.0.conf", "15W", 0, True),           # no MAXN before 6.2
    ("orin-nx-16gb.conf", "MAXN", 0, True),
    ("agx-orin-64gb.conf", "MAXN", 0, True),
    ("xavier-nx.conf", "MODE_20W_6CORE", 8, False),               # no MAXN; 20 W is the top
])
def test_the_maximum_power_mode_is_the_highest_budget(fixture, best, best_id, mode0_is_max):
    text = (FIXTURES / fixture).read_text()
    modes = power.parse_nvpmodel(text)
    top = power.maximum(modes)
    assert (top.name, top.id) == (best, best_id)
    assert power.is_maximum(0, modes) is mode0_is_max
    assert power.is_maximum(best_id, modes) is True
    assert power.default_mode_id(text) is not None
    assert all(m.cpus_online for m in modes)


def test_tied_top_budgets_all_count_as_the_maximum():
    modes = power.read_modes(FIXTURES / "xavier-nx.conf")
    assert [m.id for m in modes if power.is_maximum(m.id, modes)] == [6, 7, 8]
    assert power.read_modes(FIXTURES / "missing.conf") == []
    assert power.is_maximum(42, modes) is None


def test_nvpmodel_query_output():
    assert power.parse_query("NV Power Mode: MAXN_SUPER\n2\n") == ("MAXN_SUPER", 2)
    assert power.parse_query("NVPM WARN: fan mode is not set!\nNV Power Mode: 15W\n0\n") == ("15W", 0)
    assert power.parse_query("") == (None, None)


def test_bench_telemetry_reads_the_boards_table():
    from edge_app.bench.telemetry import JtopSource

    class Nvp:
        id, models, name = 0, ["15W", "25W", "MAXN_SUPER", "7W"], "15W"

    class Jtop:
        nvpmodel = Nvp()
        stats = {"jetson_clocks": "ON", "nvp model": "15W"}

        def start(self):
            pass

    conf = FIXTURES / "orin-nano-8gb-jetpack-6.2.conf"
    state = JtopSource(factory=Jtop, nvpmodel_conf=conf).state()
    assert state["nvpmodel_is_max"] is False, "15 W (mode 0) is not this board's maximum"
    assert (state["nvpmodel_max"], state["nvpmodel_max_id"]) == ("MAXN_SUPER", 2)
    without_table = JtopSource(factory=Jtop, nvpmodel_conf=FIXTURES / "missing.conf").state()
    assert without_table["nvpmodel_max_id"] == 2, "jtop's names decide when the table is unreadable"
