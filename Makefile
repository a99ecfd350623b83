# Two commands set everything up: `make run` and `make test`. Both install first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test unit integration lint clean

install: $(STAMP)

# Reinstall only when the dependencies change.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[embedded,dev]'
	touch $(STAMP)

run: install
	$(BIN)/nudgeflow up

# pytest exits 5 when it collects nothing: here that means the suite vanished, a failure.
test: install lint
	@$(BIN)/python -m pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

unit: install
	$(BIN)/python -m pytest tests/unit app agents tables config

integration: install
	$(BIN)/python -m pytest tests/integration

.PHONY: bench eval
bench: install
	$(BIN)/python -m benchmarks

eval: install
	$(BIN)/nudgeflow eval --write

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict app config

clean:
	rm -rf $(VENV) .nudgeflow *.egg-info
