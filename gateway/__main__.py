"""``python -m pganalytics.gateway``: serve the gateway with uvicorn.

The DSN defaults to $PGANALYTICS_DSN; put credentials in a libpq service file or .pgpass
rather than on the command line, where other local users can read them in ps.
"""
from __future__ import annotations

import argparse
import os

import uvicorn

from .app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pganalytics.gateway", description=__doc__)
    parser.add_argument("--dsn", default=os.environ.get("PGANALYTICS_DSN", ""),
                        help="store DSN, e.g. 'service=pganalytics' (default: $PGANALYTICS_DSN)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--pool-max", type=int, default=4)
    args = parser.parse_args(argv)
    uvicorn.run(create_app(args.dsn, pool_max=args.pool_max), host=args.host, port=args.port,
                proxy_headers=False)


if __name__ == "__main__":
    main()
