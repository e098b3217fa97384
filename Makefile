# The two set-up commands: `make demo` runs the product, `make test` runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test lint format worker serve

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	touch $@

demo: $(VENV)/.installed
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo --address $(HOST):$(PORT)
	$(PY) manage.py runserver $(HOST):$(PORT)

test: $(VENV)/.installed
	@echo "Database: $${DATABASE_URL:-SQLite (set DATABASE_URL=postgres://... for PostgreSQL)}"
	@if [ -n "$$REDIS_URL" ]; then echo "Tasks:    Celery workers on $$REDIS_URL"; \
	else echo "Tasks:    in-process (set REDIS_URL=redis://... for real workers)"; fi
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	PRIMER_ENV=test $(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

worker: $(VENV)/.installed
	$(VENV)/bin/celery -A config worker --loglevel=info

serve: $(VENV)/.installed
	$(PY) manage.py runserver $(HOST):$(PORT)
