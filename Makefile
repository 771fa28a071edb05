# The two commands of the README: `make run` (set up, then run the main job) and `make test` (set up, then test).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test browser nginx postgres bench bench-scaling clean

# llama.cpp compiles for the CPU it is built on unless told otherwise, and greedy answers then differ between machines.
# It is built for one portable target instead, x86-64-v3 (AVX2, FMA, F16C, BMI2: x86 servers since 2015), so every
# machine runs the same kernels. The wheel is kept in a folder named by the version and flags: pip's own cache is
# keyed by the source archive alone and would hand back a wheel built with other flags.
LLAMA_VERSION := $(shell sed -n 's/^llama-cpp-python==//p' requirements.txt)
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
	-DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF
LLAMA_WHEELS := $(HOME)/.cache/rag-llama-wheels/$(shell echo '$(LLAMA_VERSION) $(LLAMA_CMAKE_ARGS)' | md5sum | cut -c1-12)

$(STAMP): requirements.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip wheel --quiet --no-deps --no-cache-dir -w $(LLAMA_WHEELS) \
	  llama-cpp-python==$(LLAMA_VERSION)
	$(PY) -m pip install --quiet --force-reinstall --no-deps $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m app

# The browser tests drive Debian's Chromium (no browser download works offline); install it when missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-dejavu-core >/dev/null; }

# The reverse-proxy test puts Debian's nginx (TLS) in front of the app; install it when missing.
nginx:
	@command -v nginx >/dev/null 2>&1 || { \
	  echo "Installing Debian's nginx for the reverse-proxy test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; }

# axe-core for the browser tests' accessibility checks: the npm package pinned in tests/browser/package-lock.json.
AXE := tests/browser/node_modules/axe-core/axe.min.js
$(AXE): tests/browser/package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "Installing Debian's npm for the browser tests' axe-core"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	touch $(AXE)

# The question-log tests also run against a real PostgreSQL that they start from Debian's binaries; install when missing.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "Installing Debian's postgresql for the question-log tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

test: $(STAMP) browser nginx $(AXE) postgres
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/ingest.py
	$(PY) benchmarks/answer.py
	$(PY) benchmarks/api_load.py

bench-scaling: $(STAMP)   # about 30 minutes on 2 cores: embeds 100k chunks
	$(PY) benchmarks/scaling.py

clean:
	rm -rf .chroma .cache
