# Two commands for a new user (see README): `make reproduce` and `make test`.
PROFILE ?= default
VENV    ?= .venv
HZ      := $(VENV)/bin/hz
PY      := $(VENV)/bin/python

.PHONY: setup reproduce smoke corpus book lint test test-fast bench clean

setup:                 ## system packages, virtual environment, kernel, data assets (idempotent)
	bash scripts/setup.sh

reproduce: setup       ## the whole study for PROFILE: corpus, every chapter (papermill), HTML book
	$(HZ) reproduce --profile $(PROFILE)

smoke:                 ## the same on the tiny smoke profile (minutes)
	$(MAKE) reproduce PROFILE=smoke

corpus: setup
	$(HZ) corpus build --profile $(PROFILE)

book: setup
	$(HZ) book

lint: setup            ## ruff: pycodestyle, pyflakes, import order, complexity (config: [tool.ruff] in pyproject.toml)
	$(VENV)/bin/ruff check .

test: setup            ## ruff, then the whole test suite, including a smoke papermill run and book build
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

test-fast: setup       ## unit tests only
	$(PY) -m pytest -m "not slow"

bench: setup           ## benchmark tables (installs the "bench" extra: open_clip for the training comparison)
	$(PY) -m pip install -q -c constraints.txt -e ".[bench]"
	$(PY) benchmarks/bench_render.py
	$(PY) benchmarks/bench_sfm.py
	$(PY) benchmarks/bench_text.py
	$(PY) benchmarks/bench_describe.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_train.py --geometry cnn_tiny --batch 64 --only hzlib plain
	$(PY) benchmarks/bench_recipe.py
	$(PY) benchmarks/bench_evaluate.py
	$(PY) benchmarks/bench_eval_costs.py
	$(PY) benchmarks/bench_pretraining.py
	$(PY) benchmarks/bench_step_costs.py
	$(PY) benchmarks/bench_book.py

clean:
	rm -rf _build book/chapters book/generated
