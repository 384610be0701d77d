# Developer / CI entry points. See .ci/run for what CI does.
SHELL := /bin/bash

PYTHON3 ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
REQS    := requirements.txt requirements-dev.txt requirements-spark.txt
PORT    ?= 8501
PYTEST_ARGS ?=

.PHONY: install run test system-deps bench clean-data

install: $(STAMP)

# Create the virtualenv if missing. On Debian, `python3 -m venv` needs the
# python3-venv package; a failed attempt leaves a half-made .venv, so remove it.
$(PY):
	@$(PYTHON3) -m venv $(VENV) || { \
	  rm -rf $(VENV); \
	  echo "ERROR: '$(PYTHON3) -m venv $(VENV)' failed. On Debian/Ubuntu install python3-venv:" >&2; \
	  echo "  sudo apt-get update && sudo apt-get install -y python3-venv" >&2; \
	  exit 1; }

# Re-install only when a requirements file is newer than the stamp.
$(STAMP): $(REQS) | $(PY)
	$(PY) -m pip install --disable-pip-version-check -r requirements-dev.txt
	@touch $@

run: install
	@if [ -z "$${DATABASE_URL:-}" ] && [ ! -e data/control.db ]; then \
	  echo "data/control.db not found: building the demo community"; \
	  $(PY) -m analytics demo; \
	fi
	@# The demo sign-in is an explicit choice (it lists only the demo community's users);
	@# for single sign-on: ANALYTICS_SIGN_IN=oidc make run, with [auth] in .streamlit/secrets.toml.
	ANALYTICS_SIGN_IN=$${ANALYTICS_SIGN_IN:-demo} $(VENV)/bin/streamlit run app.py --server.port $(PORT)

test: install
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
