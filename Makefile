# mp3converter: the commands a developer and CI use. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
MONGO_VENV := .venv-mongo
SERVICES := auth gateway converter notification
SERVICE_REQUIREMENTS := $(wildcard $(addsuffix /requirements.txt,$(SERVICES)))
# Folders whose unit tests run with that folder as the import root.
UNIT_TEST_DIRS := common $(SERVICES)

.PHONY: help run stop status test unit-test system-test lint format bench mail logs clean

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# --- environments ----------------------------------------------------------------------

$(VENV)/.installed: requirements-dev.txt $(SERVICE_REQUIREMENTS) common/pyproject.toml
	dev/stack.sh deps
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt \
		$(addprefix -r ,$(SERVICE_REQUIREMENTS)) -e common
	touch $@

$(MONGO_VENV)/.installed: dev/requirements-mongo.txt | $(VENV)/.installed
	test -x $(MONGO_VENV)/bin/python || "$$(dev/find-python313.sh)" -m venv $(MONGO_VENV)
	$(MONGO_VENV)/bin/pip install -q --disable-pip-version-check -r dev/requirements-mongo.txt
	touch $@

# The MongoDB stand-in is only needed when MONGODB_URI names no real MongoDB.
ENVS := $(VENV)/.installed $(if $(MONGODB_URI),,$(MONGO_VENV)/.installed)

# --- running ---------------------------------------------------------------------------

run: $(ENVS) ## install what is missing, start the whole system, print how to try it
	dev/stack.sh up

stop: ## stop exactly what `make run` started
	dev/stack.sh down

status: ## what runs
	dev/stack.sh status

logs: ## follow every service's log (var/log/)
	tail -n 20 -F var/log/*.log

mail: ## list the mails the local SMTP sink received (var/mail/)
	$(VENV)/bin/python dev/mail.py

# --- checking --------------------------------------------------------------------------

test: run ## the test suite: each service's unit tests, then the system tests, on the real stack
	dev/test.sh

lint: $(VENV)/.installed ## ruff: lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed ## ruff: fix what it can and format
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: run ## the benchmarks (speed and memory targets), printed as tables
	dev/bench.sh

clean: stop ## stop everything and remove the environments and run-time state
	rm -rf $(VENV) $(MONGO_VENV) var
