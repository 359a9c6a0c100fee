# Two commands set everything up on a fresh machine with Python 3.11 and make:
#   make demo   generate a demo city, run the whole pipeline, start the service
#   make test   run the test suite
#   make notebooks   JupyterLab on notebooks/ with the project's kernel (the .venv) and jupytext pairing
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO := demo

.PHONY: install demo pipeline-demo test test-fast bench browser java notebooks clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the console's browser tests, and a CJK font so that pages and charts show
# Chinese rather than boxes (skipped, with browser tests skipping, when they cannot be installed).
browser:
	@if { [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/fonts/opentype/noto ]; } \
		&& command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null) \
		|| echo "could not install chromium/fonts-noto-cjk; browser tests will be skipped"; fi

# Debian's OpenJDK 17 for the Spark parity test (tests/test_engine.py skips, saying so, without Java).
java:
	@if ! command -v java >/dev/null && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null) \
		|| echo "could not install openjdk-17-jre-headless; the Spark parity test will be skipped"; fi

pipeline-demo: install
	$(BIN)/waterwatch synth --out $(DEMO)/drop --entities 3000 --seed 7
	WATERWATCH_HOME=$(DEMO)/var $(BIN)/waterwatch pipeline --data $(DEMO)/drop --out $(DEMO)/out
	@echo "results: $(abspath $(DEMO)/out)"

demo: pipeline-demo
	WATERWATCH_HOME=$(DEMO)/var $(BIN)/waterwatch serve --publish $(DEMO)/out

# Two pytest-xdist workers by default (a module stays on one worker: its module fixtures run once); much of
# the suite waits on Chromium, subprocesses, servers and PostgreSQL, so two workers overlap that waiting.
# Modules with slow tests are handed out first (tests/conftest.py), hence no xdist reorder by test count.
# TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2

test: install browser java
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not browser"

# The notebooks are jupytext scripts (notebooks/*.py, paired with .ipynb that are not committed): JupyterLab
# opens them as notebooks and saves both. The venv's python3 kernel is the project's; LAB_ARGS adds options
# (e.g. LAB_ARGS="--no-browser --port 8899").
notebooks: install
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "WaterWatch (.venv)" >/dev/null
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS)

bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(DEMO) var .pytest_cache
