# The two commands: `make demo` and `make test`. Every setup step lives here so a
# fresh clone on Debian/Ubuntu with Python 3.11+ needs nothing else.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEBS := kcat golang-go golang-github-shopify-sarama-dev fuse3 fiu-utils postgresql influxdb gcc mosquitto chromium fonts-nanum

.PHONY: demo test lint typecheck unit deps system-deps bench bench-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $(STAMP)

deps: $(STAMP)

# Debian packages the tests talk to (kcat is librdkafka 2.0's CLI; fuse3 backs the
# power-loss file system; fiu-utils injects disk faults; mosquitto is the MQTT broker and
# chromium with fonts-nanum the browser of the dashboard tests). Installed only as
# root and only when missing, so a developer machine without root still runs the rest.
system-deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "not root: skipping Debian packages$$missing (tests that need them are skipped)"; fi; \
	fi

demo: $(STAMP)
	$(VENV)/bin/haeryu up --demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(PY) -m pytest -q -p no:cacheprovider tests/unit/test_dependency_rules.py

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: $(STAMP) system-deps lint typecheck
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/broker.py

# Apache Flink for `haeryu bench nexmark`: apache-flink pins its own pyarrow, so it gets a
# venv of its own (needs a Java 17 runtime). Not part of `make test`.
FLINK_VERSION := 2.3.0
.venv-flink/.installed:
	$(PYTHON) -m venv .venv-flink
	.venv-flink/bin/python -m pip install -q apache-flink==$(FLINK_VERSION)
	touch $@

bench-deps: $(STAMP) .venv-flink/.installed

clean:
	rm -rf $(VENV) .venv-flink .pytest_cache .mypy_cache .ruff_cache
