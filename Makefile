# The two commands of the README, plus helpers. Each installs what it needs first.
.PHONY: setup test demo bench clean

setup:
	@scripts/setup.sh

test: setup
	.venv/bin/python -m pytest

demo: setup
	.venv/bin/pganalytics demo

bench: setup
	.venv/bin/python bench/upsert_merge_vs_on_conflict.py

clean:
	rm -rf .venv .cache .pytest_cache
