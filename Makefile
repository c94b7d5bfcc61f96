# Quick start: `make serve` (install + run on embedded defaults) and `make test` (install + whole suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
APT_PACKAGES := sip-tester baresip-core espeak-ng sox libsox-fmt-all postgresql
SERVE_APT_PACKAGES := espeak-ng sox

.PHONY: serve test install apt-test apt-serve lint bench clean pipecat-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[offline,test,fast]'
	# silero-vad declares torch but we only need its bundled ONNX model (run on onnxruntime).
	$(PIP) install --quiet --no-deps 'silero-vad>=5'
	# Smart Turn v3's ONNX file ships in the pipecat-ai wheel (BSD-2); we never import Pipecat, only
	# read the file (its sha256 is checked in speech/turn_model.py), so none of its deps are installed.
	$(PIP) install --quiet --no-deps 'pipecat-ai==1.14.0'
	touch $(STAMP)

install: $(STAMP)

# pipecat-ai for tests/stream/test_pipecat_bot.py (a bot built from Pipecat's own Twilio serializer), in
# its own venv: it pins protobuf<7 and pulls numba/llvmlite (~500 MB), so it stays out of the test extra.
pipecat-venv: .venv-pipecat/bin/python
.venv-pipecat/bin/python:
	$(PYTHON) -m venv .venv-pipecat
	.venv-pipecat/bin/pip install --quiet 'pipecat-ai[websocket]==1.14.0'

# Debian packages: installed only when a binary is missing, so repeated runs stay fast.
define apt_install
	@missing=""; \
	for bin in $(1); do command -v $$bin >/dev/null 2>&1 || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $(2); \
	fi
endef

apt-test:
	$(call apt_install,sipp baresip espeak-ng sox /usr/lib/postgresql/15/bin/initdb,$(APT_PACKAGES))

apt-serve:
	$(call apt_install,espeak-ng sox,$(SERVE_APT_PACKAGES))

serve: apt-serve install
	$(VENV)/bin/voipbin serve

# pytest in two passes (tests/conftest.py): the suite spread over TEST_WORKERS xdist workers (most of
# it waits on real calls, not the CPU), then the tests marked `serial` (real-time bounds) alone.
TEST_WORKERS ?= 3
test: apt-test install pipecat-venv
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadgroup -m "not serial"
	$(VENV)/bin/pytest -q -m serial

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

bench: install
	for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .venv-pipecat var .pytest_cache
