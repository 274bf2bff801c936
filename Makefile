# The course's commands. Everything runs inside .venv, created on first use
# from the pinned requirements.lock, so a fresh clone needs only python3 and git.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp
PYTEST_ARGS ?=

.PHONY: help install book notebooks test test-fast slides exercises grade bench clean

help:
	@echo "make book       build the HTML book into _build/html (executes every lecture)"
	@echo "make test       run the whole test suite (slow tests included)"
	@echo "make test-fast  run the tests not marked slow"
	@echo "make slides     a reveal.js deck per lecture in _build/slides/"
	@echo "make exercises  regenerate exercises/ from solutions/ with nbgrader"
	@echo "make grade      autograde submitted/<student>/<assignment>/, write feedback/ and grades.csv"
	@echo "make bench      benchmarks: bench/results/bench.json and bench.md"

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

install: $(STAMP)

# Paired .ipynb copies of the MyST lectures: Colab and Binder open these.
notebooks: $(STAMP)
	$(BIN)/python tools/pair_lectures.py lectures/*.md

book: $(STAMP) notebooks
	$(BIN)/jupyter-book build . -W --keep-going
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

test: $(BENCH_STAMP)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

test-fast: $(BENCH_STAMP)
	$(BIN)/python -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

slides: $(STAMP)
	$(BIN)/python tools/make_slides.py --out _build/slides lectures/*.md

exercises: $(STAMP)
	$(BIN)/python tools/make_exercises.py

grade: $(STAMP)
	$(BIN)/python tools/grade.py

$(BENCH_STAMP): $(STAMP) bench/requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -r bench/requirements.txt
	@touch $@

bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py --out bench/results

clean:
	rm -rf _build submitted autograded feedback gradebook.db grades.csv
