# Kontak: `make run` serves the product on SQLite with a demo admin; `make test` runs everything.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install native run test lint format bench clean browser

$(STAMP): pyproject.toml
	@$(PY) -c 'import sys; assert sys.version_info >= (3, 11), "Kontak needs Python 3.11 or newer"'
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The parsing child's hot modules compiled with mypyc into .venv/kontak-native/<source hash>/
# (kontak/native.py): about 35 s after a change to the source, nothing otherwise. Imports
# run plain Python where it cannot be built.
native: install
	@$(BIN)/python -m kontak.native || echo "Imports will run the parser as plain Python"

run: install native
	$(BIN)/kontak db upgrade
	$(BIN)/kontak demo
	$(BIN)/kontak serve --host $(HOST) --port $(PORT)

test: install lint browser native
	$(BIN)/pytest $(PYTEST_ARGS)

# The browser tests drive Debian's Chromium (never a downloaded browser): install it when
# it is missing and we may (root with apt-get); otherwise those tests skip (CI=true fails).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "No /usr/bin/chromium and no way to install it: the browser tests will skip"; \
	  fi; \
	fi

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

# The creation figure uses wrk (a C load generator, Debian's package): installed when missing
# and we may (root with apt-get); without it that figure says "skipped".
bench: install native
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get install -y -qq wrk >/dev/null; } || echo "No wrk: the creation figure will be skipped"
	@command -v valgrind >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get install -y -qq valgrind >/dev/null; } || echo "No valgrind: the instructions figure will be skipped"
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
