"""Package discovery for the one `pganalytics` distribution (metadata: pyproject.toml).

The tree shows the data flow (collector/, sql/, plpython/, migrations/, gateway/) while the
installed distribution is one namespaced package: pganalytics.collector, pganalytics.sql, ...
LAYOUT names the top-level folders; every package below them (a folder with __init__.py, e.g.
collector/sources/) is found by find_packages, so a new subpackage ships without editing this
file. Package data: the SQL files, Alembic's files, the dashboard's static files.
"""
from __future__ import annotations

from setuptools import find_packages, setup

# installed package -> folder of the checkout
LAYOUT = {
    "pganalytics": "pganalytics",
    "pganalytics.collector": "collector",
    "pganalytics.gateway": "gateway",
    "pganalytics.migrations": "migrations",
    "pganalytics.plpython": "plpython",
    "pganalytics.sql": "sql",
}


def packages() -> list[str]:
    found = []
    for name, folder in LAYOUT.items():
        found.append(name)
        found += [f"{name}.{sub}" for sub in find_packages(folder, exclude=["tests", "tests.*"])]
    return found


PACKAGE_DATA = {
    "pganalytics.sql": ["**/*.sql"],
    "pganalytics.migrations": ["script.py.mako", "FROZEN"],
    "pganalytics.gateway": ["static/**/*"],
}

# Guarded so that tests/packaging_tests can read LAYOUT (setuptools runs this as __main__).
if __name__ == "__main__":
    setup(package_dir=LAYOUT, packages=packages(), package_data=PACKAGE_DATA)
