"""Checks PostgreSQL and Redis before `make run` and `make test` start anything.

    python scripts/preflight.py           (`make run`) also checks that PORT is free and creates the database named
                                          by DATABASE_URL if it is missing
    python scripts/preflight.py --check   (`make test`) only checks: the tests create databases of their own

Prints one line naming the unreachable service (or the port in use), its address and the variable to set, and
exits 1."""

import os
import socket
import sys
from urllib.parse import urlparse

import psycopg
import redis
from psycopg import sql


def main(*, create: bool) -> int:
    if create:
        port = int(os.environ.get("PORT") or 8000)
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                print(f"Port {port} is in use: stop what listens there or set PORT", file=sys.stderr)
                return 1
    db_url = os.environ.get("DATABASE_URL", "postgresql://postgres@localhost:5432/erasure")
    redis_url = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
    parsed = urlparse(db_url)
    db_name = (parsed.path or "/erasure").lstrip("/") or "erasure"
    address = f"{parsed.hostname or 'localhost'}:{parsed.port or 5432}"
    admin_url = parsed._replace(path="/postgres").geturl()
    try:
        with psycopg.connect(admin_url, connect_timeout=5, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone()
            if create and not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))
                print(f"created database {db_name}")
    except psycopg.OperationalError:
        print(f"PostgreSQL is not reachable at {address}: start it or set DATABASE_URL", file=sys.stderr)
        return 1
    r = urlparse(redis_url)
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except redis.RedisError:
        print(
            f"Redis is not reachable at {r.hostname or 'localhost'}:{r.port or 6379}: start it or set REDIS_URL",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(create="--check" not in sys.argv[1:]))
