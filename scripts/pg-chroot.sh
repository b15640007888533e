#!/usr/bin/env bash
# A PostgreSQL server of a newer Debian suite, with plpython3u + numpy, pgTAP and hypopg, run
# from a debootstrap chroot inside the checkout. The distribution of the development machines
# (Debian 12) ships 15 only, and no other route gives 17 or 18 *with* plpython3u, so:
#   trixie -> its default major (17),  sid -> its default major (18).
#
#   scripts/pg-chroot.sh start SUITE PORT   # prints a superuser DSN (its only stdout line)
#   scripts/pg-chroot.sh stop SUITE         # stops the server, unmounts, removes the cluster
#   scripts/pg-chroot.sh version SUITE      # prints the server major version of the chroot
#
#   PGANALYTICS_TEST_DSN="$(scripts/pg-chroot.sh start trixie 55417)" .venv/bin/python -m pytest
#   scripts/pg-chroot.sh stop trixie
#
# The chroot (.cache/chroot-SUITE/, git-ignored) is built once (debootstrap --variant=minbase,
# then apt-get inside it; ~1-2 min) and reused while its stamp file is there. Each `start`
# initdb's a fresh cluster in it (trust auth, 127.0.0.1 only, pg_stat_statements preloaded),
# run as the chroot's `postgres` user. While a server runs, proc and a tmpfs /dev/shm are
# mounted in the chroot (fresh mounts, never bind mounts of host directories); `stop`
# unmounts them, so stop before deleting .cache (make clean).
#
# Needs root (debootstrap, chroot, mount). Environment: PGANALYTICS_DEBIAN_MIRROR (default
# http://deb.debian.org/debian). Progress goes to stderr.
set -euo pipefail

prog=pg-chroot.sh
say() { echo "$prog: $*" >&2; }
die() { say "$*"; exit 1; }
usage() {
    grep '^#   scripts/pg-chroot.sh [a-z]* SUITE' "${BASH_SOURCE[0]}" | sed 's/^#   /usage: /' >&2
    exit 2
}

cmd=${1:-}
suite=${2:-}
[[ -n "$cmd" && -n "$suite" ]] || usage
case "$suite" in
    trixie | sid) ;;
    *) die "unknown suite '$suite' (trixie: PostgreSQL 17, sid: PostgreSQL 18)" ;;
esac
[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap, chroot and mount need it)"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
mirror=${PGANALYTICS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
dir="$root/.cache/chroot-$suite"
stamp="$dir/.pganalytics-chroot-ready"   # holds the PostgreSQL major version; written last
data=/var/lib/postgresql/pganalytics     # cluster data directory, as seen inside the chroot
sockdir=/tmp
chroot_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

mkdir -p "$root/.cache"
# One invocation per suite at a time (a build takes a while). fd 9 must not leak into the
# server process, or the lock would be held as long as the server runs: see run_pg.
exec 9>"$root/.cache/chroot-$suite.lock"
flock 9

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- mounts -------------------------------------------------------------------------------

# Every mount point under the chroot, deepest first.
mounts_under() {
    awk -v d="$dir" '{ gsub(/\\040/, " ", $2); if ($2 == d || index($2, d "/") == 1) print $2 }' \
        /proc/self/mounts | sort -r
}

umount_all() {
    local m
    while read -r m; do
        [[ -n "$m" ]] || continue
        say "unmounting $m"
        umount "$m" 2>/dev/null || umount -l "$m"
    done < <(mounts_under)
}

mount_all() {
    mkdir -p "$dir/proc" "$dir/dev/shm"
    mountpoint -q "$dir/proc" || mount -t proc proc "$dir/proc"
    mountpoint -q "$dir/dev/shm" || mount -t tmpfs -o mode=1777,nosuid,nodev shm "$dir/dev/shm"
}

# --- running commands inside the chroot ---------------------------------------------------

host_tz() {
    if [[ -n "${TZ:-}" ]]; then echo "$TZ"; return; fi
    local link
    link=$(readlink /etc/localtime 2>/dev/null || true)
    link=${link#*zoneinfo/}
    if [[ -n "$link" && -e "$dir/usr/share/zoneinfo/$link" ]]; then echo "$link"; else echo UTC; fi
}

# As root inside the chroot, with a clean environment (nothing of the host's venv, PG*, ...).
in_chroot() {
    chroot "$dir" /usr/bin/env -i PATH="$chroot_path" LANG=C.UTF-8 HOME=/root \
        DEBIAN_FRONTEND=noninteractive "$@"
}

# As the chroot's postgres user. Every fd but 0-2 is closed first: a started server must not
# inherit the lock (fd 9) nor any pipe of our caller (it would never see EOF).
run_pg() {
    local env=(/usr/bin/env -i PATH="$chroot_path" LANG=C.UTF-8 LC_ALL=C.UTF-8
               HOME=/var/lib/postgresql USER=postgres LOGNAME=postgres TZ="$(host_tz)")
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            ((fd > 2)) && eval "exec $fd>&-"
        done
        if [[ -x "$dir/usr/sbin/runuser" || -x "$dir/sbin/runuser" ]]; then
            exec chroot "$dir" runuser -u postgres -- "${env[@]}" "$@"
        else
            exec chroot --userspec=postgres:postgres "$dir" "${env[@]}" "$@"
        fi
    )
}

# --- building the chroot ------------------------------------------------------------------

ensure_debootstrap() {
    command -v debootstrap >/dev/null && return 0
    say "installing debootstrap on the host (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2 || {
        apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2
    }
}

apt_in_chroot() {
    in_chroot apt-get -q -y -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confold \
        -o Dpkg::Options::=--force-confdef "$@" >&2
}

build() {
    local t0 major
    t0=$(now)
    ensure_debootstrap
    if [[ -e "$dir" ]]; then
        say "removing the incomplete chroot $dir"
        umount_all
        rm -rf --one-file-system "$dir"
    fi
    say "debootstrap --variant=minbase $suite $dir $mirror"
    debootstrap --variant=minbase "$suite" "$dir" "$mirror" >&2 || {
        umount_all
        die "debootstrap $suite failed (log: $dir/debootstrap/debootstrap.log)"
    }
    umount_all   # debootstrap should have cleaned up after itself; make sure

    # apt: sid's Release files may be past Valid-Until on mirrors/caches; no languages,
    # no recommends (keeps the chroot small).
    cat > "$dir/etc/apt/apt.conf.d/99pganalytics" <<'EOF'
Acquire::Check-Valid-Until "false";
Acquire::Languages "none";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF
    # No service may start from a package's maintainer scripts inside the chroot.
    printf '#!/bin/sh\nexit 101\n' > "$dir/usr/sbin/policy-rc.d"
    chmod 755 "$dir/usr/sbin/policy-rc.d"
    # No "main" cluster from postgresql-NN's postinst: `start` makes its own, fresh.
    mkdir -p "$dir/etc/postgresql-common"
    echo "create_main_cluster = false" > "$dir/etc/postgresql-common/createcluster.conf"
    cp -L /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true

    mount_all
    trap 'umount_all' EXIT
    apt_in_chroot update
    # The suite's default major version: what its `postgresql` metapackage depends on.
    major=$(in_chroot apt-cache depends postgresql \
        | sed -n 's/^ *Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | head -n1)
    [[ -n "$major" ]] || die "cannot tell the default PostgreSQL major version of $suite"
    say "$suite: PostgreSQL $major; installing it with plpython3u, numpy, pgTAP, hypopg"
    apt_in_chroot install postgresql "postgresql-$major" "postgresql-plpython3-$major" \
        python3-numpy "postgresql-$major-pgtap" "postgresql-$major-hypopg"
    apt_in_chroot clean
    grep -q "^create_main_cluster = false" "$dir/etc/postgresql-common/createcluster.conf" \
        || say "warning: createcluster.conf was replaced by the package"
    if [[ -n "$(ls -A "$dir/etc/postgresql" 2>/dev/null)" ]]; then
        say "warning: a packaged cluster was created in the chroot: $(ls "$dir/etc/postgresql")"
    fi
    [[ -x "$dir/usr/lib/postgresql/$major/bin/postgres" ]] || die "no postgres binary after install"
    in_chroot id postgres >/dev/null || die "no postgres user in the chroot after install"
    umount_all
    trap - EXIT
    echo "$major" > "$stamp"
    say "built the $suite chroot in $(since "$t0") s"
}

major_of_chroot() {
    local major
    major=$(cat "$stamp" 2>/dev/null || true)
    [[ -n "$major" && -x "$dir/usr/lib/postgresql/$major/bin/postgres" ]] || return 1
    echo "$major"
}

ensure_chroot() {
    major_of_chroot >/dev/null || build
    major_of_chroot
}

# --- the server ---------------------------------------------------------------------------

# PID of the chroot's server when it runs, else nothing.
server_pid() {
    local pidfile="$dir$data/postmaster.pid" pid
    [[ -f "$pidfile" ]] || return 0
    pid=$(head -n1 "$pidfile" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    # The PID may have been reused by something else: it must be rooted in this chroot.
    [[ "$(readlink "/proc/$pid/root" 2>/dev/null)" == "$dir" ]] || return 0
    echo "$pid"
}

server_port() { sed -n 4p "$dir$data/postmaster.pid" 2>/dev/null || true; }

stop_server() {
    local major pid i
    pid=$(server_pid)
    if [[ -n "$pid" ]]; then
        major=$(major_of_chroot || true)
        say "stopping the $suite server (pid $pid)"
        if [[ -z "$major" ]] || ! run_pg "/usr/lib/postgresql/$major/bin/pg_ctl" -D "$data" \
                -m fast -w -t 60 stop >&2; then
            say "pg_ctl stop failed; sending SIGINT to $pid"
            kill -INT "$pid" 2>/dev/null || true
            for i in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -0 "$pid" 2>/dev/null && { kill -QUIT "$pid" 2>/dev/null || true; sleep 1; }
        fi
    fi
    if [[ -d "$dir$data" ]]; then
        [[ -f "$dir$data/server.log" ]] && cp "$dir$data/server.log" "$dir/var/log/pganalytics-server.log"
        rm -rf --one-file-system "$dir$data"
    fi
}

dsn() { echo "host=127.0.0.1 port=$1 user=postgres dbname=postgres"; }

start() {
    local port=$1 major t0 pid
    [[ "$port" =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) || die "bad port '$port'"
    major=$(ensure_chroot)
    pid=$(server_pid)
    if [[ -n "$pid" ]]; then
        if [[ "$(server_port)" == "$port" ]]; then
            mount_all
            say "the $suite server (PostgreSQL $major) already runs on port $port (pid $pid)"
            dsn "$port"
            return 0
        fi
        say "the $suite server runs on port $(server_port), not $port: restarting it fresh"
    fi
    stop_server   # also removes a leftover data directory: every start gets a fresh cluster
    t0=$(now)
    mount_all
    local bin="/usr/lib/postgresql/$major/bin"
    say "initdb in $dir$data"
    run_pg "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
        > "$dir/var/log/pganalytics-initdb.log" 2>&1 || {
        cat "$dir/var/log/pganalytics-initdb.log" >&2
        umount_all
        die "initdb failed"
    }
    cat >> "$dir$data/postgresql.conf" <<EOF

# pg-chroot.sh
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sockdir'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
compute_query_id = on
max_connections = 200
EOF
    say "starting PostgreSQL $major ($suite) on 127.0.0.1:$port"
    if ! run_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >&2; then
        tail -n 20 "$dir$data/server.log" >&2 2>/dev/null || true
        stop_server
        umount_all
        die "the $suite server did not start on port $port"
    fi
    say "started in $(since "$t0") s"
    dsn "$port"
}

case "$cmd" in
    start)
        [[ -n "${3:-}" ]] || usage
        start "$3"
        ;;
    stop)
        stop_server
        umount_all
        ;;
    version)
        major=$(major_of_chroot) || die "no $suite chroot yet: run '$prog start $suite PORT' first"
        run_pg "/usr/lib/postgresql/$major/bin/postgres" --version >&2 || true
        echo "$major"
        ;;
    *) usage ;;
esac
