# The two commands of the README: `make demo` and `make test`. Both set everything up from scratch.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# the exact versions the tests passed with; `make lock` upgrades them on purpose
LOCK := constraints.txt
DEMO := demo-out
TCMALLOC := $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 /usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4))
RUN := $(if $(TCMALLOC),LD_PRELOAD=$(TCMALLOC)) $(VENV)/bin/leukoscope

.PHONY: install lock lint demo test test-all test-kernels clean

$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(LOCK) "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install --quiet -c $(LOCK) -e ".[all,test]"
	touch $(STAMP)

# resolve the newest versions pyproject.toml allows in a scratch venv, and record them in $(LOCK)
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
	.lock-venv/bin/python -m pip install --quiet -e ".[all,test]"
	{ echo "# written by 'make lock': the versions the test suite passed with"; .lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^#'; } > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)
	rm -rf .lock-venv
	@echo "$(LOCK) updated: run make test before committing it"

install: $(STAMP)

demo: $(STAMP)
	$(RUN) synth $(DEMO)/synth --per-class 60 --size 128 --seed 0
	$(RUN) audit $(DEMO)/synth --out $(DEMO)/audit.json
	$(RUN) split $(DEMO)/synth --test-per-class 15 --val-fraction 0.15 --seed 0 --out $(DEMO)/splits.json
	$(RUN) train --config configs/smoke.yaml --data $(DEMO)/synth --splits $(DEMO)/splits.json --out $(DEMO)/run data.cache_dir=$(DEMO)/cache
	$(RUN) evaluate $(DEMO)/run/bundle --data $(DEMO)/synth --splits $(DEMO)/splits.json --split test --shortcut-checks --out $(DEMO)/eval
	$(RUN) predict $(DEMO)/run/bundle $(DEMO)/synth/Benign/synth-benign-0000.jpg $(DEMO)/synth/Pro/synth-pro-0001.jpg $(DEMO)/synth/Pre/synth-pre-0002.jpg --out $(DEMO)/predictions.csv
	$(RUN) explain $(DEMO)/run/bundle $(DEMO)/synth/Benign/synth-benign-0000.jpg $(DEMO)/synth/Pro/synth-pro-0001.jpg $(DEMO)/synth/Pre/synth-pre-0002.jpg --out $(DEMO)/explain
	@echo
	@echo "demo outputs in $(DEMO)/:"
	@echo "  synth/ (synthetic smears), audit.json, splits.json"
	@echo "  run/ (config, logs, checkpoints) and run/bundle/ (the trained model)"
	@echo "  eval/report.html, eval/metrics.json, eval/predictions.csv"
	@echo "  predictions.csv, and explanation overlays in $(DEMO)/explain/"

# the layers contract in pyproject.toml: a stage that imports one above it fails here
lint: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache

test: lint
	$(VENV)/bin/python -m pytest -q -m "not slow" --durations=15

test-all: $(STAMP)
	$(VENV)/bin/python -m pytest -q

# the tests that train, on PyTorch's portable kernels: an outcome must not hinge on the CPU's instruction set
test-kernels: $(STAMP)
	ATEN_CPU_CAPABILITY=default $(VENV)/bin/python -m pytest -q -m "trains and not slow"

clean:
	rm -rf $(DEMO) .pytest_cache
