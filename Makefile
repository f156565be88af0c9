# The two commands the README documents: `make serve` and `make test`. Both install first (idempotent).
.PHONY: install serve test lint format openapi docs

VENV ?= .venv
BIN := $(VENV)/bin

install:
	bash scripts/install.sh

serve: install
	$(BIN)/docextract serve --host 127.0.0.1 --port 8000

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install lint
	$(BIN)/python -m pytest

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

openapi: install
	$(BIN)/docextract openapi --out openapi.yaml

docs: install
	$(BIN)/python -m service.cli.docs README.md
