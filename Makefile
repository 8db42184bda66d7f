# Two entry points for a fresh Debian 12 machine, as root:
#   make demo   installs everything and runs the main job
#   make test   installs everything and runs every test, linter and type check
# Every step is idempotent: stamps in .make/ skip what is already done.

SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := .make
APT_PACKAGES := iproute2 nftables iptables dnsmasq-base bind9-dnsutils tcpdump procps \
                libnetfilter-queue-dev libnss3-tools ca-certificates \
                clickhouse-server chromium fonts-dejavu-core python3-venv gcc

.PHONY: install demo test lint typecheck unit lab-tests bench clean lab-down

# The per-measurement hot paths listed in compiled.txt are compiled to C with mypyc, in place,
# and rebuilt whenever one of them changes (an extension older than its source is never used).
COMPILED_SRC := $(foreach e,$(shell sed 's/\#.*//' src/reachwatch/compiled.txt),\
                  $(if $(filter %/,$(e)),$(wildcard src/reachwatch/$(e)*.py),src/reachwatch/$(e)))

install: $(STAMP)/apt $(STAMP)/venv $(STAMP)/compiled

$(STAMP)/apt:
	@mkdir -p $(STAMP)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing apt packages:" $$missing; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@touch $@

$(STAMP)/venv: pyproject.toml
	@mkdir -p $(STAMP)
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip 'setuptools>=77'
	@REACHWATCH_MYPYC=0 $(PY) -m pip install -q -e '.[dev]'
	@touch $@

$(STAMP)/compiled: $(STAMP)/venv setup.py src/reachwatch/compiled.txt $(COMPILED_SRC)
	@echo "compiling $(words $(COMPILED_SRC)) modules to C extensions: mypyc, and hand-written C (about 75 s)"
	@$(PY) setup.py -q build_ext --inplace --force 2>&1 | grep -v -e '^gcc ' -e '^building ' -e '^copying ' \
	  -e 'Treating generator comprehension as list' || true
	@$(PY) -c 'import sys, reachwatch.compiled as c; s = c.state(); print("compiled modules:", s); sys.exit(s != "compiled")'
	@touch $@

demo: install
	$(VENV)/bin/reachwatch demo --out demo-out

lint: install
	$(VENV)/bin/ruff check src tests benchmarks scripts setup.py
	$(VENV)/bin/ruff format --check src tests benchmarks scripts setup.py

typecheck: install
	$(VENV)/bin/mypy

unit: install
	$(PY) -m pytest -q

test: install lint typecheck unit

# Benchmarks print figures and ratios against a baseline run in the same process; never asserted.
bench: install
	$(PY) benchmarks/probe_throughput.py
	$(PY) benchmarks/collector_ingest.py
	$(PY) benchmarks/measurement_load.py
	$(PY) benchmarks/verdict_speed.py
	$(PY) benchmarks/fingerprint_match.py
	$(PY) benchmarks/analysis_pipeline.py --n 200000

lab-down: install
	$(VENV)/bin/reachwatch lab down --all

clean:
	rm -rf $(VENV) $(STAMP) build *.egg-info
	find src -name '*.so' -delete
