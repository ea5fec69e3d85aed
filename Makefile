# Two commands on a fresh machine with Python 3.11 and make:
#   make demo   set up, seed realistic demo data, run the jobs, serve on http://127.0.0.1:8000
#   make test   run the whole suite on the embedded default (SQLite, eager Celery)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: demo test venv imports migrate seed jobs serve lint check ci-postgres clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

migrate: venv
	DEBUG=1 $(PY) manage.py migrate --noinput

seed: migrate
	DEBUG=1 $(PY) manage.py seed_demo

jobs: venv
	DEBUG=1 $(PY) manage.py run_jobs

demo: seed jobs
	@echo ""
	@echo "Retail CRM demo is starting on http://$(HOST):$(PORT)/"
	@echo "  HQ dashboard     http://$(HOST):$(PORT)/hq/"
	@echo "  Guide workbench  http://$(HOST):$(PORT)/workbench/   (open on a phone-sized window)"
	@echo "  Django admin     http://$(HOST):$(PORT)/admin/"
	@echo "  API docs         http://$(HOST):$(PORT)/api/docs/    (schema: /api/schema/)"
	@echo "Demo logins (password demo-pass-2026): hq, brand_wom, region_wom_east, WOM-E001-G01 (store manager), WOM-E001-G02 (guide)"
	@echo ""
	DEBUG=1 $(PY) manage.py runserver $(HOST):$(PORT)

test: venv imports
	$(VENV)/bin/pytest -q

# The layers of ARCHITECTURE.md (contracts in pyproject.toml): an app imports only the apps below it.
imports: venv
	$(VENV)/bin/lint-imports

lint: venv imports
	$(VENV)/bin/ruff check .

check: venv
	DEBUG=1 $(PY) manage.py makemigrations --check --dry-run
	DEBUG=1 $(PY) manage.py check

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache .ruff_cache
