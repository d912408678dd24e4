# hailo-vision developer entry points. Quick start: `make run`, `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_VENV := .venv-demo
DEMO_PY := $(DEMO_VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench openapi demo-models demo-eval clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: setup
	$(VENV)/bin/hailo-vision serve

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy supervisor api npu_worker scheduler

# The OpenAPI document is built from the request declarations; a test checks the committed copy.
openapi: setup
	$(PY) -m api.openapi > docs/openapi.json

bench: setup
	@set -e; for b in bench/*.py; do echo "== $$b"; $(PY) $$b; done

# Demo models: torch + transformers live only in $(DEMO_VENV), never in $(VENV).
$(DEMO_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_PY) -m pip install -q --upgrade pip
	$(DEMO_PY) -m pip install -q -e '.[demo]'
	touch $@

demo-models: $(DEMO_VENV)/.installed
	$(DEMO_PY) models/make_demo_models.py

demo-eval: setup
	$(PY) models/evaluate_demo_vlm.py
	$(PY) models/evaluate_demo_clip.py
	$(PY) models/demo_card.py

clean:
	rm -rf $(VENV) $(DEMO_VENV) .pytest_cache .ruff_cache .mypy_cache
