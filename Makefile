# Quick start:  make demo   (runs the main job on the simulated camera)
#               make test   (installs what the tests need, then runs them)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PIP     = $(BIN)/python -m pip
# Python 3.8 is what JetPack 5 ships: the on-device code is also tested under it when present.
PY38   ?= $(shell for p in python3.8 $(HOME)/.pyenv/versions/3.8*/bin/python; do \
            $$p -c 'import sys; assert sys.version_info[:2] == (3, 8)' 2>/dev/null && { echo $$p; break; }; \
          done)
# Python 3.10 is what JetPack 6 ships: the on-device tests run under it with JetPack 6's pins.
PY310  ?= $(shell for p in python3.10 $(HOME)/.pyenv/versions/3.10*/bin/python; do \
            $$p -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null && { echo $$p; break; }; \
          done)
JP6_VENV = $(VENV)/jp6
# JetPack's own OpenCV releases (4.5.4 on JetPack 5, NVIDIA's 4.8.0 on 6), as pip's headless
# builds for the x86 runs; numpy, onnxruntime and the rest come from the release's constraints.
JP5_PINS = -c deploy/constraints-jetpack-5.1.txt "opencv-python-headless==4.5.4.60"
JP6_PINS = -c deploy/constraints-jetpack-6.1-6.2.txt "opencv-python-headless==4.8.0.76"
DEMO   ?= runs/demo
TASK   ?= thumbs

.PHONY: help venv install-run install-demo install-dev browser demo test test-fast lint test-py38 clean \
	test-jp6 resolve-jetpack

help:
	@echo "make demo       the whole pipeline on the simulated camera (TASK=all for the four tasks)"
	@echo "make test       install the dev extras and run checks and tests"
	@echo "make test-py38  run the tests under Python 3.8 (JetPack 5) if it is installed"
	@echo "make test-jp6   run the tests under Python 3.10 with JetPack 6's pins if it is installed"
	@echo "make resolve-jetpack  resolve each JetPack release's install set from PyPI (numpy pins)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

venv: $(BIN)/python

$(VENV)/.run-installed: setup.py pyproject.toml | $(BIN)/python
	$(PIP) install -q -e ".[headless]"
	touch $@

$(VENV)/.dev-installed: setup.py pyproject.toml edge_app/subject/install.py | $(BIN)/python
	$(PIP) install -q -e ".[dev]"
	$(BIN)/python -m edge_app.subject.install   # MediaPipe without its pip OpenCV
	touch $@ $(VENV)/.run-installed $(VENV)/.demo-installed

$(VENV)/.demo-installed: setup.py pyproject.toml | $(BIN)/python
	$(PIP) install -q -e ".[headless,train,export,bench]"
	touch $@ $(VENV)/.run-installed

install-run: $(VENV)/.run-installed
install-demo: $(VENV)/.demo-installed
install-dev: $(VENV)/.dev-installed

demo: install-demo
	$(BIN)/edge-app demo --task $(TASK) --out $(DEMO)

# tensorrt-stubs (TensorRT 10 API) installed without its TensorRT dependency, copied onto a
# mypy path (its package has no py.typed marker) with two generated-stub syntax slips fixed, then
# uninstalled: its bare "tensorrt" folder would otherwise import as an empty package.
TRT_STUBS = $(VENV)/trt-stubs
# The plug-in points are typed to mypy's --strict: the registries and what they hand out.
STRICT = edge_app/registry.py edge_app/backends edge_app/model/bundle.py edge_app/model/inputs.py \
         edge_app/tasks/kinds.py edge_app/subject/search.py
$(TRT_STUBS)/tensorrt/__init__.pyi: | $(BIN)/python
	$(PIP) install -q --no-deps "tensorrt-stubs>=10,<11"
	site=$$($(BIN)/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"); \
	rm -rf $(TRT_STUBS) && mkdir -p $(TRT_STUBS) && \
	cp -r $$site/tensorrt $$site/tensorrt_bindings $(TRT_STUBS)/
	sed -i -E 's/([(,] ?)in: /\1in_: /g; s/channel_axis: int\) -> IScaleLayer/channel_axis: int = 0) -> IScaleLayer/' \
		$(TRT_STUBS)/tensorrt_bindings/tensorrt.pyi
	$(PIP) uninstall -q -y tensorrt-stubs

lint: install-dev $(TRT_STUBS)/tensorrt/__init__.pyi
	$(BIN)/ruff check edge_app train export tests benchmarks deploy
	$(BIN)/vermin -q --no-tips -t=3.8- --violations edge_app train export
	$(BIN)/lint-imports --no-cache   # the import contracts in pyproject.toml
	$(BIN)/mypy
	$(BIN)/mypy --strict --follow-imports=silent $(STRICT)
	MYPYPATH=$(TRT_STUBS) $(BIN)/mypy edge_app/export/tensorrt_build.py edge_app/export/engine_cache.py edge_app/backends/trt.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir $(VENV)/site

# Debian's chromium for the studio's browser test (Playwright drives it; nothing is downloaded
# by Playwright itself). Needs root or sudo; without them the browser test skips with a note.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then s=""; elif command -v sudo >/dev/null 2>&1; then s="sudo -n"; else \
	    echo "note: chromium is not installed and this user cannot apt-get it: the browser test will skip"; exit 0; fi; \
	  $$s apt-get update -q && DEBIAN_FRONTEND=noninteractive $$s apt-get install -y -q chromium; }

test: lint browser
	$(BIN)/python -m pytest -q

test-fast: install-dev
	$(BIN)/python -m pytest -q -x -m "not slow"

# The JetPack 5 run: Python 3.8 with JetPack 5.1's pins (numpy 1.23, OpenCV 4.5.4, onnxruntime).
test-py38:
	@if [ -z "$(PY38)" ]; then echo "Python 3.8 not found: skipping the 3.8 run"; exit 0; fi; \
	set -e; [ -x .venv38/bin/python ] || $(PY38) -m venv .venv38; \
	.venv38/bin/python -m pip install -q $(JP5_PINS) -e ".[headless]" onnxruntime pytest pytest-timeout; \
	.venv38/bin/python -m pytest -q -p no:cacheprovider -m "not network"

# The JetPack 6 run: Python 3.10 with JetPack 6's pins (numpy 1.26, OpenCV 4.8, onnxruntime); no
# torch, so the tests that need it skip, as on a board without --train.
test-jp6:
	@if [ -z "$(PY310)" ]; then echo "Python 3.10 not found: skipping the JetPack 6 run"; exit 0; fi; \
	set -e; [ -x $(JP6_VENV)/bin/python ] || $(PY310) -m venv $(JP6_VENV); \
	$(JP6_VENV)/bin/python -m pip install -q $(JP6_PINS) -e ".[headless]" onnxruntime pytest pytest-timeout; \
	$(JP6_VENV)/bin/python -m pytest -q -p no:cacheprovider -m "not network"

# Each JetPack release's install set resolved by pip for its Python on aarch64 (needs PyPI): fails
# when numpy would leave its pin. deploy/resolve_check.py --unpinned shows the installer without pins.
resolve-jetpack: install-dev
	$(BIN)/python deploy/resolve_check.py

clean:
	rm -rf $(VENV) .venv38 build *.egg-info runs .pytest_cache .mypy_cache
