# hailo-vision developer entry points. Quick start: `make run`, `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_VENV := .venv-demo
DEMO_PY := $(DEMO_VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench openapi demo-models demo-eval clean deb deb-deps deb-check

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: setup
	$(VENV)/bin/hailo-vision serve

test: setup
	$(PY) -m pytest -q --ignore=tests/deb
	@if command -v dpkg-buildpackage >/dev/null; then $(MAKE) --no-print-directory deb-check; \
	else echo "deb-check skipped: dpkg-buildpackage not found (not a Debian machine)"; fi

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

# The Debian package, built natively (packaging/debian/ becomes debian/ in a copy of the sources).
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null)
DEB := build/hailo-vision_$(VERSION)_$(DEB_ARCH).deb
DEB_TREE := build/deb
DEB_SOURCES := pyproject.toml README.md supervisor api npu_worker scheduler etc docs models/demo packaging
# What building and checking the package needs (root installs what is missing; idempotent).
DEB_TOOLS := build-essential dpkg-dev debhelper lintian python3-venv ca-certificates adduser systemd man-db
# pip's cache for the package's build, kept between builds (debhelper points HOME elsewhere).
DEB_PIP_CACHE ?= $(HOME)/.cache/hailo-vision-deb/pip

deb: $(DEB)

deb-deps:
	@missing=$$(for p in $(DEB_TOOLS); do dpkg-query -W -f='$${db:Status-Status}\n' $$p 2>/dev/null \
	  | grep -qx installed || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "deb-deps: as root: apt-get install $$missing" >&2; exit 1; fi; \
	  echo "deb-deps: installing $$missing"; apt-get update -q \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; fi

$(DEB): $(shell find $(DEB_SOURCES) -type f -not -path '*/__pycache__/*' 2>/dev/null) | deb-deps
	rm -rf $(DEB_TREE) && mkdir -p $(DEB_TREE)/src
	tar -c --exclude=__pycache__ --exclude=.work $(DEB_SOURCES) | tar -x -C $(DEB_TREE)/src
	cp -r packaging/debian $(DEB_TREE)/src/debian
	cd $(DEB_TREE)/src && PIP_CACHE_DIR=$(DEB_PIP_CACHE) dpkg-buildpackage -b -us -uc
	mv $(DEB_TREE)/$(notdir $(DEB)) $@

# Builds, lints, installs, runs, upgrades, removes and purges the package (tests/deb): root only.
deb-check: setup
	@if [ "$$(id -u)" != 0 ]; then echo "deb-check skipped: it installs the package, so it needs root"; \
	else $(MAKE) --no-print-directory deb && DEB_PACKAGE=$(abspath $(DEB)) $(PY) -m pytest -q tests/deb; fi

clean:
	rm -rf $(VENV) $(DEMO_VENV) build .pytest_cache .ruff_cache .mypy_cache
