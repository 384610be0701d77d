# Developer / CI entry points. See .ci/run for what CI does.
SHELL := /bin/bash

PYTHON3 ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.run-stamp
DEV_STAMP := $(VENV)/.installed-stamp
REQS    := requirements.txt requirements-dev.txt requirements-spark.txt
PORT    ?= 8501
PYTEST_ARGS ?=

.PHONY: install install-dev run test system-deps bench clean-data

# What running the app needs (requirements.txt); the test tools, the browser driver and the
# Spark engine (requirements-dev.txt, requirements-spark.txt) only come with `make test`.
install: $(RUN_STAMP)

install-dev: $(DEV_STAMP)

# Create the virtualenv if missing. On Debian, `python3 -m venv` needs the
# python3-venv package; a failed attempt leaves a half-made .venv, so remove it.
$(PY):
	@$(PYTHON3) -m venv $(VENV) || { \
	  rm -rf $(VENV); \
	  echo "ERROR: '$(PYTHON3) -m venv $(VENV)' failed. On Debian/Ubuntu install python3-venv:" >&2; \
	  echo "  sudo apt-get update && sudo apt-get install -y python3-venv" >&2; \
	  exit 1; }

# Re-install only when a requirements file is newer than its stamp.
$(RUN_STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --disable-pip-version-check -r requirements.txt
	@touch $@

$(DEV_STAMP): $(REQS) | $(PY)
	$(PY) -m pip install --disable-pip-version-check -r requirements-dev.txt
	@touch $@ $(RUN_STAMP)

run: install
	@if [ -z "$${DATABASE_URL:-}" ] && [ ! -e data/control.db ]; then \
	  echo "data/control.db not found: building the demo community"; \
	  $(PY) -m analytics demo; \
	fi
	@# The demo sign-in is an explicit choice (it lists only the demo community's users);
	@# for single sign-on: ANALYTICS_SIGN_IN=oidc make run, with [auth] in .streamlit/secrets.toml.
	ANALYTICS_SIGN_IN=$${ANALYTICS_SIGN_IN:-demo} $(VENV)/bin/streamlit run app.py --server.port $(PORT)

test: install-dev
	@$(MAKE) --no-print-directory system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

system-deps:
	@bash scripts/system-deps.sh

bench: install
	$(PY) -m analytics bench

# Remove generated data, keep data/reference/ (checked-in reference files).
clean-data:
	@if [ -d data ]; then \
	  find data -mindepth 1 -maxdepth 1 ! -name reference -exec rm -rf {} +; \
	fi
