# Common loops. `make test` is the README's test command.
.PHONY: install test lint format serve mutate

install:
	python3 -m venv .venv && .venv/bin/python -m pip install -q -e '.[test]'

test:
	python3 -m venv .venv && .venv/bin/python -m pip install -q -e '.[test]' && .venv/bin/python -m pytest

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

format:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .

serve:
	.venv/bin/tracker serve

# Mutation testing of tracker/domain against the unit tests (several minutes; prints the score).
mutate:
	.venv/bin/python -m tests.support.domain_mutants
