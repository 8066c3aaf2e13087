# Entry points for developers and CI. Everything a target needs (virtualenv, Kafka jars,
# clickhouse-server) is installed by the target itself; services start from the test fixtures.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NATIVE_STAMP := $(VENV)/.native-installed
NATIVE_SRC   := native/Cargo.toml native/Cargo.lock native/pyproject.toml native/ccod_fs_native.pyi \
                $(wildcard native/src/*.rs native/src/*/*.rs)

.PHONY: venv test demo lint bench

venv: $(STAMP) $(NATIVE_STAMP)

# Re-installs only when pyproject.toml changes (or the venv is missing).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# The Rust hot paths (native/, PyO3 + maturin: ingest normalizer, sink decoder and column encoder): needs cargo/rustc; rebuilt when its sources change.
$(NATIVE_STAMP): $(STAMP) $(NATIVE_SRC)
	PATH="$$PATH:$$HOME/.cargo/bin" $(BIN)/python -m pip install -q --disable-pip-version-check ./native
	touch $(NATIVE_STAMP)

# Kafka (KRaft, jars from Maven Central) and ClickHouse 18.16 are installed/started by tests/conftest.py.
test: venv
	$(BIN)/ruff check ccod_fs tests benchmarks
	$(BIN)/mypy ccod_fs benchmarks
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=15

demo: venv
	$(BIN)/ccod-fs demo

lint: venv
	$(BIN)/ruff check ccod_fs tests benchmarks
	$(BIN)/mypy ccod_fs benchmarks

# Every benchmarks/*.py that has a __main__ block, one after another.
bench: venv
	@set -e; for f in $$(grep -l '__main__' benchmarks/*.py); do \
		m=$$(basename $$f .py); echo "== benchmarks.$$m"; $(BIN)/python -m benchmarks.$$m; \
	done
