# `make train` and `make test` create (or reuse) .venv and install drlab into it.
PYTHON ?= python3
VENV   ?= .venv
# CPU build by default; GPU users: make TORCH="torch" (or install a CUDA torch into .venv first).
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.drlab-installed

.PHONY: install train test test-fast bench bench-pixels bench-dqn-pixels clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev,atari,vizdoom,ray,minigrid,highway,mujoco,tune]"
	touch $(STAMP)

train: $(STAMP)
	$(BIN)/drlab train dqn CartPole-v1

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations=12

# The edit loop: everything but the slow tiers (Ray clusters, Chromium, learning runs, PostgreSQL,
# end-to-end runs of several seconds).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup -m "not (ray or browser or learning or postgres or slow)"

bench: $(STAMP)
	$(BIN)/python benchmarks/presets.py

bench-pixels: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/pixels.py

bench-dqn-pixels: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/dqn_pixels.py

clean:
	rm -rf $(VENV) runs
