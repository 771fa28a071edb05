# The two commands of the README: `make run` (set up, then run the main job) and `make test` (set up, then test).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test browser bench bench-scaling clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m app

# The browser tests drive Debian's Chromium (no browser download works offline); install it when missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-dejavu-core >/dev/null; }

test: $(STAMP) browser
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/ingest.py
	$(PY) benchmarks/answer.py
	$(PY) benchmarks/api_load.py

bench-scaling: $(STAMP)   # about 30 minutes on 2 cores: embeds 100k chunks
	$(PY) benchmarks/scaling.py

clean:
	rm -rf .chroma .cache
