"""The command line's log handler: what library log calls look like on the terminal."""
from __future__ import annotations

import contextlib
import io
import logging

import pytest

from edge_app.cli import main
from edge_app.log import PACKAGES, CliHandler, install


@pytest.fixture(autouse=True)
def restore_loggers():
    """Leave edge-app's loggers as the test found them."""
    saved = {name: (list(logging.getLogger(name).handlers), logging.getLogger(name).level)
             for name in PACKAGES + ("other",)}
    yield
    for name, (handlers, level) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)


def ours(name: str):
    return [h for h in logging.getLogger(name).handlers if isinstance(h, CliHandler)]


def test_levels_prefixes_and_streams(capsys):
    install()
    for name in ("edge_app.x", "edge_app.train.pipeline", "edge_app.export.parity"):
        log = logging.getLogger(name)
        log.debug("hidden")
        log.info("plain %s", name)
        log.warning("careful")
        log.error("broken")
    out, err = capsys.readouterr()
    assert out.splitlines() == ["plain edge_app.x", "warning: careful", "plain edge_app.train.pipeline",
                                "warning: careful", "plain edge_app.export.parity", "warning: careful"]
    assert err.splitlines() == ["error: broken"] * 3
    assert "hidden" not in out + err


def test_other_libraries_stay_quiet(capsys):
    install()
    logging.getLogger("other").info("chatter")
    logging.getLogger("other").warning("a library's warning")   # Python's last resort: stderr
    out, err = capsys.readouterr()
    assert "chatter" not in out + err
    assert "warning:" not in out + err


def test_exceptions_keep_their_traceback(capsys):
    install()
    try:
        raise ValueError("bad value")
    except ValueError:
        logging.getLogger("edge_app.x").exception("it failed")
    err = capsys.readouterr().err
    assert err.startswith("error: it failed\nTraceback") and "ValueError: bad value" in err


def test_redirect_stdout_captures_it(capsys):
    """The stream is looked up when a message is logged, not when the handler is made."""
    install()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        logging.getLogger("edge_app.train.fitting").info("epoch 1: loss 0.5")
    assert buf.getvalue() == "epoch 1: loss 0.5\n"
    assert capsys.readouterr().out == ""


def test_main_installs_it_once_and_verbose_shows_debug(capsys, tmp_path):
    missing = str(tmp_path / "missing")
    assert main(["data", "info", missing]) == 2
    assert main(["data", "info", missing]) == 2
    for name in PACKAGES:
        assert len(ours(name)) == 1, "no duplicate handler after two main() calls"
    assert not ours(""), "the root logger is left alone"
    capsys.readouterr()
    logging.getLogger("edge_app.x").info("once")
    logging.getLogger("edge_app.x").debug("detail")
    assert capsys.readouterr().out == "once\n"

    assert main(["-v", "data", "info", missing]) == 2
    capsys.readouterr()
    logging.getLogger("edge_app.train.x").debug("detail")
    assert capsys.readouterr().out == "debug: detail\n"
    assert main(["data", "info", missing]) == 2
    logging.getLogger("edge_app.train.x").debug("detail")
    assert "detail" not in capsys.readouterr().out, "-v lasts one run"


def test_caplog_still_sees_records(caplog):
    install()
    with caplog.at_level(logging.INFO):
        logging.getLogger("edge_app.x").warning("seen by caplog")
    assert "seen by caplog" in caplog.text
