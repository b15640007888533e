# pganalytics in one image: PostgreSQL 18 with plpython3u + numpy (and pgTAP, HypoPG) to hold
# the store, plus the pganalytics app (installer, collector, gateway) in /opt/pganalytics.
#
#   docker build -t pganalytics .
#   docker network create pga
#
#   # The store server: the official postgres entry point (initdb on first start, POSTGRES_* env).
#   docker run -d --name pga-store --network pga -e POSTGRES_PASSWORD=change-me \
#       -v pga-data:/var/lib/postgresql -p 5432:5432 \
#       pganalytics postgres -c shared_preload_libraries=pg_stat_statements
#
#   # Everything else is the `pganalytics` CLI. DSNs carry no password: pass PGPASSWORD (or mount
#   # a .pgpass / pg_service.conf); --dsn may also come from PGANALYTICS_DSN.
#   docker run --rm --network pga -e PGPASSWORD=change-me pganalytics \
#       install --dsn "host=pga-store user=postgres dbname=postgres"
#   docker run -d --network pga -e PGPASSWORD=... -p 8080:8080 pganalytics \
#       serve --dsn "host=pga-store user=<gateway login role> dbname=postgres" --host 0.0.0.0 --port 8080
#   docker run -d --network pga -e PGPASSWORD=... pganalytics \
#       collect --dsn "host=pga-store user=<collector login role> dbname=postgres"
#
# First argument: `postgres` runs the server, `bash`/`sh` a shell, anything else is passed to
# `pganalytics` (run as the unprivileged user `pganalytics`). No argument: `pganalytics --help`.
FROM postgres:18-trixie

# PL/Python and the extensions from the image's PostgreSQL apt repository; numpy from Debian,
# for the server's python3 (plpython3u imports it, not the app's venv).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        "postgresql-plpython3-$PG_MAJOR" "postgresql-$PG_MAJOR-pgtap" "postgresql-$PG_MAJOR-hypopg" \
        python3-numpy python3-venv \
 && rm -rf /var/lib/apt/lists/*

# The app in its own venv, with the exact versions of requirements.lock (a regular, not
# editable, install: setup.py finds every package; tests/packaging_tests checks the wheel).
COPY . /src
RUN python3 -m venv /opt/pganalytics \
 && /opt/pganalytics/bin/pip install --no-cache-dir -c /src/requirements.lock /src \
 && /opt/pganalytics/bin/pganalytics --help >/dev/null \
 && /opt/pganalytics/bin/python -c 'import pganalytics.collector.daemon, pganalytics.collector.sources, pganalytics.gateway.app' \
 && useradd --system --create-home --home-dir /var/lib/pganalytics --shell /usr/sbin/nologin pganalytics

RUN printf '%s\n' \
        '#!/bin/sh' \
        'set -e' \
        'case "$1" in' \
        '    postgres) exec docker-entrypoint.sh "$@" ;;' \
        '    bash|sh) exec "$@" ;;' \
        'esac' \
        'if [ "$(id -u)" = 0 ]; then exec gosu pganalytics pganalytics "$@"; fi' \
        'exec pganalytics "$@"' \
        > /usr/local/bin/pganalytics-entrypoint \
 && chmod 755 /usr/local/bin/pganalytics-entrypoint

ENV PATH="/opt/pganalytics/bin:$PATH" PYTHONUNBUFFERED=1
WORKDIR /var/lib/pganalytics
# 5432: the store server; 8080: the gateway (REST, WebSocket, dashboard, /metrics).
EXPOSE 5432 8080
ENTRYPOINT ["pganalytics-entrypoint"]
CMD ["--help"]
