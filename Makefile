# The two commands of the README, plus helpers. Each installs what it needs first.
.PHONY: setup lint test test-default test-17 test-18 demo bench clean

setup:
	@scripts/setup.sh

# Everything, on the distribution's server and on PostgreSQL 17 and 18 with plpython3u
# (Debian trixie/sid chroots, built once into .cache/).
test: test-default test-17 test-18

# Static checks, run once before the tests: ruff; mypy over the installed layout (see
# scripts/typecheck); pgspot over every SQL file (PGSPOT: the store's security checks).
PGSPOT ?= .venv/bin/python scripts/pgspot-check
lint: setup
	.venv/bin/ruff check .
	.venv/bin/python scripts/typecheck
	$(PGSPOT)

test-default: setup lint
	.venv/bin/python -m pytest

test-17 test-18: test-%: setup
	PGANALYTICS_TEST_CHROOT=$* .venv/bin/python -m pytest

demo: setup
	.venv/bin/pganalytics demo

bench: setup
	.venv/bin/python bench/upsert_merge_vs_on_conflict.py

clean:
	-scripts/pg-chroot.sh stop trixie; scripts/pg-chroot.sh stop sid
	rm -rf .venv .cache .pytest_cache
