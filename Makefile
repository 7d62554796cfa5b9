# Two commands do everything on a fresh clone: `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench clean venv fuzz

$(STAMP): pyproject.toml
	@test -x $(PY) || bash scripts/make-venv.sh $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# with atheris (coverage-guided fuzzing) where it installs; elsewhere without, and its test skips
	$(PY) -m pip install --quiet -e '.[dev,fuzz]' || $(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/kis-adapter demo

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@# Debian's chromium for the report-page tests: installed when root, else those tests skip (fail under CI=true)
	@bash scripts/ensure-browser.sh
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) benchmarks/decode.py --big
	$(PY) benchmarks/backtest.py
	$(PY) benchmarks/live.py

fuzz: $(STAMP)
	rm -rf out/fuzz-corpus && mkdir -p out && cp -r fuzz/corpus out/fuzz-corpus
	$(PY) fuzz/fuzz_decoder.py -max_len=4096 -max_total_time=300 -artifact_prefix=out/ out/fuzz-corpus

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .hypothesis
