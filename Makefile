# statehook — make demo, make test, make bench
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_SECONDS ?= 0
STAMP := $(VENV)/.installed

.PHONY: install lock redis-server chromium axe test lint typecheck pytest demo bench chaos check clean image-test

# constraints.txt holds the versions the tests last passed with, so that a release published
# since (a new major of a dependency) cannot change what CI installs; `make lock` renews it
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# the newest releases pyproject.toml's ranges allow, into constraints.txt (then run make test)
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet -e '.[test,bench]'
	{ sed -n '1,2p' constraints.txt; .lock-venv/bin/python -m pip freeze --exclude-editable | sort; } > constraints.new
	mv constraints.new constraints.txt && rm -rf .lock-venv

# redis-server from Debian's packages when the machine has none (tests and the demo start
# their own on a free port; nothing here uses the machine's Redis on 6379)
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server from Debian's packages"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null; }

# the console's browser tests (tests/console/) drive Debian's chromium, never a downloaded
# browser, and check every page with axe-core from npm; when either cannot be installed they
# are skipped and say why
chromium:
	@test -x /usr/bin/chromium || { \
	  echo "installing chromium from Debian's packages (the console's browser tests)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  { $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
	    || echo "chromium could not be installed: the console's browser tests will be skipped"; }

AXE := $(VENV)/axe/node_modules/axe-core/axe.min.js
axe:
	@test -f $(AXE) || { \
	  command -v npm >/dev/null 2>&1 || { \
	    echo "installing npm from Debian's packages (axe-core for the console's browser tests)"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null; }; \
	  npm install --silent --no-audit --no-fund --prefix $(VENV)/axe axe-core@4 >/dev/null \
	    || echo "axe-core could not be installed: the console's browser tests will be skipped"; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache   # the layers' import contracts (pyproject.toml, docs/architecture.md)

typecheck: install
	$(BIN)/mypy

pytest: install redis-server chromium axe
	$(BIN)/pytest -q -p no:cacheprovider

test: lint typecheck pytest

demo: install redis-server
	$(BIN)/statehook demo --seconds $(DEMO_SECONDS)

# the benchmarks of issues 6 and 20 (docs/performance.md): its own Redis and nginx on free ports, 8-10
# minutes; every verdict a ratio of the run. The CPU-quota scenario needs a writable cgroup v1 cpu
# controller (/sys/fs/cgroup/cpu, as root) and says so and skips where there is none. It needs the
# package and its bench extra only (not the test tools); `python -m benchmarks.run --only recovery,console` the extras
bench: redis-server
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { \
	  echo "installing nginx-light from Debian's packages"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends nginx-light >/dev/null; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[bench]'
	PATH="$$PATH:/usr/sbin" $(BIN)/python -m benchmarks.run

# the chaos run of issue 14 (docs/reliability.md): workers and Redis killed, stopped, hung, failed over and
# flushed while changes stream; last line: chaos: changes=… missed=… …; about 7 minutes; not part of `make test`
chaos: redis-server
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	$(BIN)/python -m chaos $(CHAOS_ARGS)

# the container image, built and run without a Docker engine or a registry (buildah, a base
# bootstrapped from Debian's packages): minutes, so not part of `make test` (docs/operations.md)
image-test:
	bash scripts/image-test.sh

check: install
	$(BIN)/statehook check

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
