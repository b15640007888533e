#!/usr/bin/env bash
# Build Citus from the vendored source release for the installed PostgreSQL server, once, and
# install it into that server's lib/ and extension/ directories. For the distributed test
# cluster (tests/citus.py); `pganalytics install --distributed` needs Citus on the store.
#
#   scripts/citus-build.sh            # the newest server under /usr/lib/postgresql
#   scripts/citus-build.sh 15         # that major version
#
# The release is the newest tarball in $CITUS_VENDOR (default /work/shared/vendor/citus) whose
# configure accepts the server's major version (13.2.2: 15-17, 14.0.1: 16-18). The build
# (~1 minute on 2 cores) is cached in .cache/citus/<tarball sha256>-pg<major>/ (git-ignored),
# a DESTDIR stage reused while its stamp file is there; the stage is copied into the server's
# directories when a file there is missing, or differs and the server's stamp
# (extension/citus.pganalytics-installed) names another tarball. Build dependencies come from apt, as in
# scripts/setup.sh. Safe to run again; silent when there is nothing to do, one line per step
# on stderr when there is, the build log's tail and one sentence when something fails.
# Needs root (apt, and the server's directories), or sudo. Exit status: 0 done, 3 impossible
# on this platform (no distribution server, no Debian, no release for this major, no root),
# 1 failed.
set -euo pipefail

prog=citus-build.sh
say() { echo "$prog: $*" >&2; }
die() { say "$*"; exit 1; }
# Exit status 3: Citus cannot be built here at all (tests/citus.py skips with this sentence);
# 1: something failed that should not have.
impossible() { say "$*"; exit 3; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
vendor=${CITUS_VENDOR:-/work/shared/vendor/citus}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
updated=""
apt_install() {
    local missing=()
    for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ -z "$updated" ]; then
        as_root apt-get update -qq || die "apt-get update failed (needed to install ${missing[*]})"
        updated=1
    fi
    say "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
}

major=${1:-}
if [[ -z "$major" ]]; then
    major=$(ls /usr/lib/postgresql 2>/dev/null | grep -E '^[0-9]+$' | sort -n | tail -n 1 || true)
    [[ -n "$major" ]] || impossible "no distribution PostgreSQL server under /usr/lib/postgresql (make setup installs one)"
fi
[[ "$major" =~ ^[0-9]+$ ]] || die "bad PostgreSQL major version '$major'"
[[ -x "/usr/lib/postgresql/$major/bin/postgres" ]] \
    || impossible "PostgreSQL $major is not installed (/usr/lib/postgresql/$major/bin/postgres)"
command -v dpkg >/dev/null && command -v apt-get >/dev/null \
    || impossible "not a Debian system (no dpkg/apt-get): install Citus for PostgreSQL $major by other means"
[[ $(id -u) -eq 0 ]] || sudo -n true 2>/dev/null \
    || impossible "needs root or password-less sudo (apt, and PostgreSQL $major's lib/ and extension/ directories)"

# --- which release: the newest whose configure accepts this major ---------------------------
supports() {  # supports TARBALL MAJOR: its configure's "$version_num" != 'NN' list has MAJOR
    tar -xzOf "$1" --wildcards '*/configure' 2>/dev/null \
        | grep -E "test \"\\\$version_num\" != '[0-9]+'" \
        | grep -qE "!= '$2'([^0-9]|$)"
}
tarball=""
while read -r candidate; do
    [[ -n "$candidate" ]] || continue
    if supports "$candidate" "$major"; then tarball=$candidate; fi
done < <(ls "$vendor"/citus-*.tar.gz 2>/dev/null | sort -V)
if [[ -z "$tarball" ]]; then
    [[ -n "$(ls "$vendor"/citus-*.tar.gz 2>/dev/null)" ]] || impossible "no Citus source tarball in $vendor"
    impossible "no Citus release in $vendor builds against PostgreSQL $major ($(cd "$vendor" && ls citus-*.tar.gz | tr '\n' ' '))"
fi
release=$(basename "$tarball" .tar.gz)

sha=$(sha256sum "$tarball" | cut -d' ' -f1)
cache="$root/.cache/citus"
dir="$cache/$sha-pg$major"
stage="$dir/stage"
stamp="$dir/.ready"   # holds "<release> <major>"; written last
mkdir -p "$cache"
exec 9>"$cache/.lock"  # one build at a time
flock 9

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }'; }

# --- build into a DESTDIR stage ---------------------------------------------------------------

# Adapt the source tree to server headers newer than the release (one known case so far).
fix_source() {
    local src=$1 includes compat
    includes=$("/usr/lib/postgresql/$major/bin/pg_config" --includedir-server)
    compat="$src/src/include/pg_version_compat.h"
    # PostgreSQL 15.14+ exports have_createdb_privilege() (commands/dbcommands.h); Citus 13.2
    # defines its own static copy for 15 ("static declaration ... follows non-static
    # declaration"). Rename the copy: its one caller includes dbcommands.h and gets the server's.
    if grep -q '^extern bool have_createdb_privilege(void);' "$includes/commands/dbcommands.h" 2>/dev/null &&
       grep -q '^have_createdb_privilege(void)$' "$compat" 2>/dev/null; then
        sed -i 's/^have_createdb_privilege(void)$/citus_compat_have_createdb_privilege_unused(void)/' "$compat"
        echo "citus-build.sh: renamed pg_version_compat.h's have_createdb_privilege (the server exports it)"
    fi
}

build() {
    local t0 src log
    t0=$(now)
    # No libcurl: Citus uses it only to send anonymous usage statistics (and check for
    # updates) over the network, which a test cluster must never do (--without-libcurl).
    apt_install "postgresql-server-dev-$major" liblz4-dev libzstd-dev libkrb5-dev build-essential
    local pg_config="/usr/lib/postgresql/$major/bin/pg_config"
    [[ -x "$pg_config" ]] || die "no $pg_config after installing postgresql-server-dev-$major"
    rm -rf "$dir"
    mkdir -p "$dir"
    log="$dir/build.log"
    src=$(mktemp -d "$cache/src.XXXXXX")
    say "building $release for PostgreSQL $major (about a minute; log: $log)"
    # with_llvm=no: no LLVM bitcode for JIT inlining (needs clang; tests do not use JIT).
    if ! { tar -xzf "$tarball" -C "$src" --strip-components=1 && fix_source "$src" &&
           (cd "$src" && ./configure PG_CONFIG="$pg_config" --without-libcurl &&
                make -j"$(nproc)" with_llvm=no &&
                make install with_llvm=no DESTDIR="$stage"); } > "$log" 2>&1; then
        tail -n 25 "$log" >&2
        rm -rf "$src"
        die "building $release for PostgreSQL $major failed (full log: $log)"
    fi
    rm -rf "$src"
    [[ -n "$(find "$stage" -name citus.so -print -quit)" ]] || die "the build of $release staged no citus.so (log: $log)"
    echo "$release $major" > "$stamp"
    say "built $release for PostgreSQL $major in $(since "$t0") s"
}

[[ -f "$stamp" && -d "$stage" ]] || build

# --- install: copy what is missing or differs -------------------------------------------------
# The server's extension directory keeps a stamp of what was installed from which tarball: a
# build of the same tarball elsewhere (another checkout) differs byte for byte (build paths)
# and is just as good, so it is not replaced while every file is there. Otherwise (no stamp,
# another release, a file missing) every file that differs from our stage is copied.
libdir=$("/usr/lib/postgresql/$major/bin/pg_config" --pkglibdir 2>/dev/null || echo "/usr/lib/postgresql/$major/lib")
sharedir=$("/usr/lib/postgresql/$major/bin/pg_config" --sharedir 2>/dev/null || echo "/usr/share/postgresql/$major")
installed="$sharedir/extension/citus.pganalytics-installed"
want="$release $sha pg$major"
stale=()
missing=0
while IFS= read -r -d '' f; do
    rel=${f#"$stage"}
    [[ -e "$rel" ]] || missing=1
    cmp -s "$f" "$rel" 2>/dev/null || stale+=("$rel")
done < <(find "$stage" \( -type f -o -type l \) -print0)
if [[ ${#stale[@]} -gt 0 ]] && { [[ $missing -eq 1 ]] || [[ "$(cat "$installed" 2>/dev/null)" != "$want" ]]; }; then
    say "installing $release into PostgreSQL $major (${#stale[@]} files)"
    for rel in "${stale[@]}"; do
        as_root install -D -m "$(stat -c %a "$stage$rel")" "$stage$rel" "$rel" \
            || die "cannot install $rel"
    done
fi
if [[ "$(cat "$installed" 2>/dev/null)" != "$want" ]]; then
    echo "$want" | as_root tee "$installed" >/dev/null || die "cannot write $installed"
fi
[[ -f "$libdir/citus.so" ]] || die "citus.so is not in $libdir after installing (stage: $stage)"
