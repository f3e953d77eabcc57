"""The command line: every command explains itself, mistakes are one line, modules run it."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edge_app.cli import main


@pytest.mark.parametrize("argv", [[], ["capture"], ["data"], ["data", "info"], ["data", "import"],
                                  ["train"], ["eval"], ["export"]])
def test_help_explains(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv + ["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "usage: edge-app" in text and len(text) > 200


def test_capture_help_lists_sources_and_keys(capsys):
    with pytest.raises(SystemExit):
        main(["capture", "--help"])
    text = capsys.readouterr().out
    for word in ("usb:N", "csi://N", "sim://TASK", "rtsp://", "Space", "--interval", "--headless"):
        assert word in text


@pytest.mark.parametrize("argv,needle", [
    (["data", "info", "/no/such/dir"], "no such folder"),
    (["capture", "--task", "thumbz", "--source", "sim://thumbs", "--out", "x", "--headless"],
     "did you mean 'thumbs'"),
    (["capture", "--task", "thumbs", "--source", "usb:57", "--out", "x", "--headless",
      "--label", "thumbs_up"], "not found"),
    (["capture", "--task", "thumbs", "--source", "sim://thumbs", "--out", "x", "--headless",
      "--label", "thumbs_sideways"], "not a class of task 'thumbs'"),
])
def test_user_mistakes_are_one_line(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err
    assert "Traceback" not in err


def test_data_info_json(tmp_path, capsys):
    out = tmp_path / "d"
    main(["capture", "--task", "thumbs", "--source", "sim://thumbs", "--headless", "--count", "4",
          "--out", str(out), "--no-progress"])
    capsys.readouterr()
    assert main(["data", "info", str(out), "--json", str(tmp_path / "info.json")]) == 0
    import json

    info = json.loads((tmp_path / "info.json").read_text())
    assert info["images"] == 4 and info["sizes"] == {"640x480": 4}


@pytest.mark.parametrize("module", ["edge_app", "train", "export"])
def test_python_dash_m_runs_the_cli(module):
    proc = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "usage: edge-app" in proc.stdout
    if module != "edge_app":
        assert f"usage: edge-app {module}" in proc.stdout, "runs the same subcommand"


@pytest.mark.slow
def test_demo_runs_the_whole_pipeline(tmp_path, capsys):
    """The README's main command, at a small size: every stage leaves its file behind."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    out = tmp_path / "demo"
    assert main(["demo", "--task", "thumbs", "--out", str(out), "--captures", "60",
                 "--frames", "40"]) == 0
    text = capsys.readouterr().out
    assert "accuracy" in text and "report:" in text
    task = out / "thumbs"
    for name in ("dataset/dataset.yaml", "bundle/model.onnx", "bundle/plots/curves.png",
                 "live.mp4", "live.jsonl", "eval.json", "bench.json", "bench.png"):
        assert (task / name).is_file(), name
    report = json.loads((out / "report.json").read_text())["tasks"][0]
    assert report["fresh_frames"] == 100 and 0.5 <= report["accuracy"] <= 1.0
    assert report["loop_fps"] > 0 and "infer" in report["stages_ms"] and report["backend"].startswith("onnx")
    assert "| thumbs | {} | 100 |".format(report["input"]) in (out / "report.md").read_text()


def test_help_lists_every_command_without_importing_them():
    """Start-up imports no command module: train and export (and torch) only when chosen."""
    code = ("import sys; from edge_app.cli import build_parser\n"
            "try:\n    build_parser(['--help']).parse_args(['--help'])\n"
            "except SystemExit as e:\n    assert e.code == 0\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('train', 'export', 'torch')"
            " or m.startswith('edge_app.commands.')), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "[]", proc.stderr
    for name in ("capture", "data", "train", "eval", "export", "run", "bench", "demo", "doctor",
                 "studio"):
        assert f"\n    {name} " in proc.stdout, name


def test_the_command_table_matches_the_modules():
    """The one-line help the table shows is the one each module registers."""
    import argparse

    from edge_app.cli import COMMANDS, build_parser

    for name, _, help_text in COMMANDS:
        parser = build_parser([name])
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        shown = {a.dest: a.help for a in sub._choices_actions}
        assert shown[name] == help_text, name
        assert [a.dest for a in sub._choices_actions] == [n for n, _, _ in COMMANDS], "order kept"


def test_an_unknown_command_lists_the_choices(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["trian"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'trian'" in err and "'train'" in err and "'export'" in err
