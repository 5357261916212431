# The two commands: `make run` (whole portal on the embedded default) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
LOCK := portal/deploy/requirements.lock
STAMP := $(VENV)/.installed-$(shell cat $(LOCK) pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=
# Browser tests drive Debian's chromium: Playwright cannot download its own browsers here.
CHROMIUM := /usr/bin/chromium
SHELLCHECK := /usr/bin/shellcheck
APT_GET := DEBIAN_FRONTEND=noninteractive apt-get -y -qq -o Dpkg::Use-Pty=0
# Browser libraries (Chart.js) from the npm registry, served from node_modules as static files
# (settings.STATICFILES_DIRS). The stamp's name carries the checksum of package.json + lock:
# `npm ci` runs again only when they change (it empties node_modules, stamp included).
NPM_DIR := portal/deploy
NPM_STAMP := $(NPM_DIR)/node_modules/.installed-$(shell cat $(NPM_DIR)/package.json $(NPM_DIR)/package-lock.json 2>/dev/null | cksum | cut -d' ' -f1)
# npm from PATH; when there is none, Debian's package is installed (once, as root).
NPM := $(or $(shell command -v npm 2>/dev/null),/usr/bin/npm)

.PHONY: help venv browser-libs run test lint bench lock clean

help:
	@echo "make run    - install, migrate, seed the demo and start web + worker + beat"
	@echo "make test   - install (and Debian's chromium for the browser tests) and run the test suite"
	@echo "make lint   - ruff, mypy, import layers, ansible-lint, installer manifests, ruff format --check"
	@echo "make bench  - speed figures (bench/results.json); QUICK=1: every ratio once (3 min); ARGS=..."
	@echo "make lock   - re-resolve $(LOCK) from pyproject.toml"
	@echo "make browser-libs - npm ci of $(NPM_DIR)/package-lock.json (run and test do it)"

$(STAMP): $(LOCK) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

$(NPM_STAMP): | $(NPM)
	cd $(NPM_DIR) && $(NPM) ci --ignore-scripts --no-audit --no-fund
	rm -f $(NPM_DIR)/node_modules/.installed-*
	touch $@

browser-libs: $(NPM_STAMP)

$(NPM):
	@test "$$(id -u)" = 0 || { echo "npm is missing: install Node.js and npm (Debian: sudo apt-get install npm), or run make as root to have Debian's npm installed" >&2; exit 1; }
	$(APT_GET) update </dev/null
	$(APT_GET) install --no-install-recommends npm </dev/null

# Installed once, only when missing (non-interactive: works under CI=true with no stdin).
$(CHROMIUM):
	$(APT_GET) update </dev/null
	$(APT_GET) install --no-install-recommends chromium </dev/null

# The installers' scripts are linted with Debian's shellcheck (installed once, when missing).
$(SHELLCHECK):
	$(APT_GET) update </dev/null
	$(APT_GET) install --no-install-recommends shellcheck </dev/null

# The embedded default is for development: DEBUG on, secrets generated once into var/.
run: export DEBUG ?= true
run: venv browser-libs
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	PATH="$(BIN):$$PATH" $(BIN)/python -m portal.deploy.procs --procfile portal/deploy/Procfile \
		--app-root . start

# The run's own filesystem broker folder: messages the tests publish never reach the worker
# of a `make run` in this checkout (unless CELERY_BROKER_DIR is given).
test: export DEBUG ?= true
test: venv browser-libs $(CHROMIUM)
	broker=$$(mktemp -d -t portal-test-broker.XXXXXX) && trap 'rm -rf "$$broker"' EXIT && \
		CELERY_BROKER_DIR="$${CELERY_BROKER_DIR:-$$broker}" $(BIN)/python -m pytest $(PYTEST_ARGS)

# mypy's Django plugin imports portal.settings: DEBUG on lets it start without secrets.
lint: export DEBUG ?= true
lint: venv $(SHELLCHECK)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/ansible-lint --offline playbooks roles
	$(BIN)/python manage.py installers validate
	$(SHELLCHECK) installers/*/*.sh
	$(BIN)/ruff format --check .

# make's own flags cannot be passed on (`make bench --quick` is make's): QUICK=1 for the
# quick run, ARGS for any other option of `python -m bench`.
bench: export DEBUG ?= true
bench: venv
	$(BIN)/python -m bench $(if $(QUICK),--quick) $(ARGS)

lock:
	$(BIN)/pip-compile --quiet --extra dev --strip-extras --no-emit-index-url \
		--no-emit-find-links -o $(LOCK) pyproject.toml

clean:
	rm -rf $(VENV) var $(NPM_DIR)/node_modules
