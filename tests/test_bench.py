"""edge-app bench: the table, JSON, chart and comparison on this CPU; telemetry from
jetson-stats' own data shapes; statistics; warnings; bad input as one line."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edge_app.bench import report
from edge_app.bench.environment import l4t_release
from edge_app.bench.stats import latency_stats, spread
from edge_app.bench.telemetry import JtopSource, Sampler, summarize
from edge_app.cli import main

from helpers import finishes, sim_bundle, wait_for


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A small thumbs crop CNN, exported; training it is slow, so its tests are marked slow."""
    return sim_bundle(tmp_path_factory.mktemp("bench"), "thumbs", 30, 64, "160x120",
                      ("--views", "0", "--epochs", "5"))


@pytest.mark.slow
def test_bench_table_json_png_and_compare(bundle, tmp_path, capsys):
    a, png = tmp_path / "a.json", tmp_path / "a.png"
    assert main(["bench", "--model", str(bundle), "--source", "sim://thumbs?width=320&height=240",
                 "--backends", "onnx,torch", "--frames", "20", "--warmup", "2", "--repeat", "2",
                 "--threads", "1", "--json", str(a), "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "p50 ms" in out and "onnx (CPU, 1 threads)" in out and "torch (cpu)" in out
    assert "loop on onnx" in out and "infer" in out and "share" in out
    result = json.loads(a.read_text())
    rows = {r["key"]: r for r in result["rows"]}
    assert set(rows) == {"onnx/fp32/b1", "torch/fp32/b1"}
    for row in rows.values():
        lat = row["latency_ms"]
        assert lat["n"] == 40 and 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
        assert row["fps"] > 0 and row["fps_runs"]["runs"] == 2
        assert row["loop"]["frames"] == 20 and "infer" in row["loop"]["stages_ms"]
        assert "subject" in row["loop"]["stages_ms"], "a crop model's loop has the subject stage"
    assert result["model"]["sha256"] and result["versions"]["onnxruntime"]
    assert result["device"]["cpu_count"] and result["settings"]["frames"] == 20
    assert "psutil" in result["telemetry_sources"]
    assert png.stat().st_size > 5000 and png.read_bytes()[:4] == b"\x89PNG"
    # A faster "device": the same run with every figure doubled.
    b = tmp_path / "b.json"
    faster = json.loads(a.read_text())
    for row in faster["rows"]:
        row["fps"] *= 2
        row["latency_ms"]["p50"] /= 2
    faster["device"]["model"] = "NVIDIA Jetson Orin Nano"
    b.write_text(json.dumps(faster))
    capsys.readouterr()
    assert main(["bench", "--compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "B: NVIDIA Jetson Orin Nano" in out and out.count("2.00x") == 2 and out.count("0.50x") == 2


@pytest.mark.slow
def test_bench_inference_only_with_batches(bundle, tmp_path, capsys):
    j = tmp_path / "r.json"
    assert main(["bench", "--model", str(bundle), "--backends", "onnx", "--batch", "1,2",
                 "--precision", "fp32,fp16", "--frames", "8", "--warmup", "1", "--json", str(j)]) == 0
    rows = {r["key"]: r for r in json.loads(j.read_text())["rows"]}
    assert rows["onnx/fp32/b2"]["latency_ms"]["n"] == 4, "8 frames in batches of 2"
    assert rows["onnx/fp16/b1"]["skipped"] == "onnx runs fp32 only"
    assert not rows["onnx/fp32/b1"]["loop"], "no source: inference only"
    assert "skipped onnx fp16 batch 1: onnx runs fp32 only" in capsys.readouterr().out


def test_a_backend_whose_extra_is_missing_is_one_line(monkeypatch):
    import sys

    from edge_app.bench.measure import make_backend
    from edge_app.errors import UserError

    monkeypatch.setitem(sys.modules, "edge_app.train.torch_backend", None)   # as without the train extra
    with pytest.raises(UserError, match=r"^the torch backend needs torch \(.+\): pip install 'edge-app\[train\]'$"):
        make_backend("torch", "fp32", None)
    with pytest.raises(UserError, match="onnx runs fp32 only"):
        make_backend("onnx", "fp16", None)


@pytest.mark.slow
@pytest.mark.parametrize("argv,message", [
    (["--backends", "tensorflow"], "--backends: unknown 'tensorflow'"),
    (["--batch", "one"], "--batch: expected numbers"),
    (["--precision", "fp8"], "--precision: unknown 'fp8'"),
])
def test_bench_bad_options_are_one_line(bundle, argv, message, capsys):
    assert main(["bench", "--model", str(bundle)] + argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_bench_compare_needs_benchmark_files(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    assert main(["bench", "--compare", str(bad), str(bad)]) == 2
    assert "not a benchmark JSON" in capsys.readouterr().err


class FakeNvp:
    """jetson-stats 4.x NVPModel: ``name``, ``id`` and the board's ``models``."""

    def __init__(self, mode_id, models):
        self.id, self.models, self.name = mode_id, models, models[mode_id]


class FakeJtop:
    """The shapes jetson-stats 4.x gives (jtop.stats is a flat dict; power in mW)."""

    def __init__(self, clocks="OFF", mode_id=1, temp=52.5):
        self.nvpmodel = FakeNvp(mode_id, ["MAXN", "15W", "7W"])
        self._clocks, self._temp = clocks, temp
        self.closed = False

    def start(self):
        pass

    @property
    def stats(self):
        return {"time": None, "uptime": None, "CPU1": 40, "CPU2": 60, "CPU3": "OFF", "RAM": 0.4,
                "SWAP": 0.0, "EMC": 10, "GPU": 87.0, "APE": "OFF", "Fan pwmfan0": 30.0,
                "Temp CPU": 48.0, "Temp GPU": self._temp, "Temp PMIC": -256.0,
                "Power VDD_CPU_GPU_CV": 4200, "Power VDD_SOC": 1800, "Power TOT": 7500,
                "jetson_clocks": self._clocks, "nvp model": self.nvpmodel.name}

    def close(self):
        self.closed = True


def test_jtop_telemetry_power_load_and_warnings():
    src = JtopSource(factory=lambda: FakeJtop(clocks="OFF", mode_id=1, temp=91.0))
    sample = src.sample()
    assert sample["power_w"] == 7.5 and sample["gpu_percent"] == 87.0
    assert sample["cpu_percent"] == 50.0, "parked cores ('OFF') are not averaged in"
    assert sample["rails_w"] == {"VDD_CPU_GPU_CV": 4.2, "VDD_SOC": 1.8}
    assert "PMIC" not in sample["temps_c"], "an offline sensor (-256) is ignored"
    state = src.state()
    assert state == {"jetson_clocks": "OFF", "nvpmodel": "15W", "nvpmodel_max": "MAXN",
                     "nvpmodel_max_id": 0, "nvpmodel_is_max": False}
    summary = summarize([sample, sample])
    assert summary["power_w"] == 7.5 and summary["temp_max_c"] == 91.0 and "throttling" in summary
    result = {"state": state, "settings": {"camera_fps_asked": 30.0},
              "rows": [{"key": "trt/fp16/b1", "telemetry": summary, "fps_runs": {"runs": 3, "relative": 0.02},
                        "loop": {"fps": 24.0, "camera_fps": 24.0}}]}
    text = "\n".join(report.warnings_for(result))
    assert "jetson_clocks is off" in text and "'15W' is not the maximum ('MAXN')" in text
    assert "'sudo nvpmodel -m 0'" in text
    assert "thermal throttling" in text and "camera delivers 24 FPS, 30 asked" in text
    src.close()


def test_sampler_stops_promptly_and_summarises():
    class Steady:
        name = "steady"

        def sample(self):
            return {"cpu_percent": 50.0, "power_w": 5.0}

    sampler = Sampler([Steady()], interval=0.01).start()
    wait_for(lambda: len(sampler.samples) >= 3, "three samples")
    summary = sampler.stop()
    assert summary["samples"] >= 3 and summary["cpu_percent"] == 50.0 and summary["power_w"] == 5.0
    # promptly: between two samples an hour apart, stop does not wait for the next one
    idle = Sampler([Steady()], interval=3600.0).start()
    assert finishes(idle.stop), "stop waited for the next sample"
    assert idle._thread is not None and not idle._thread.is_alive()


def test_latency_statistics_are_outlier_robust():
    ms = [10.0] * 99 + [1000.0]
    s = latency_stats(ms)
    assert s["p50"] == 10.0 and s["trimmed_mean"] == 10.0 and s["mean"] > 19 and s["outliers"] == 1
    assert s["p99"] > 10.0 and s["max"] == 1000.0
    sp = spread([100.0, 110.0, 90.0])
    assert sp["median"] == 100.0 and sp["relative"] == pytest.approx(0.2)
    assert np.isclose(latency_stats([1, 2, 3, 4])["p50"], 2.5)


def test_l4t_release_is_read_from_nv_tegra_release():
    text = "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64"
    assert l4t_release(text) == "35.4.1"
    assert l4t_release(None) is None and l4t_release("garbage") is None
