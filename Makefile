# The two commands of the README: `make demo` and `make test`. Both set everything up from scratch.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO := demo-out
TCMALLOC := $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 /usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4))
RUN := $(if $(TCMALLOC),LD_PRELOAD=$(TCMALLOC)) $(VENV)/bin/leukoscope

.PHONY: install demo test test-all clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install --quiet -e ".[all,test]"
	touch $(STAMP)

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

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m "not slow"

test-all: $(STAMP)
	$(VENV)/bin/python -m pytest -q

clean:
	rm -rf $(DEMO) .pytest_cache
