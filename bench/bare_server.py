"""The bare server: a gRPC unary round trip plus one durable commit, and nothing else.

    python -m bench.bare_server --sqlite PATH [--listen HOST:PORT] [--workers N]
    python -m bench.bare_server --postgres CONNINFO [--listen HOST:PORT] [--workers N]

It is the limit a node's write calls stand on. It is built the way a node is
(`node.api.server`): a `grpc.aio` server whose handler hands the blocking database
work to a thread pool of the same size and awaits it. Each call inserts one small
row and commits, on a connection of the worker thread's own:

- SQLite: WAL, synchronous=FULL, the node's busy timeout, `BEGIN IMMEDIATE`, as
  `node.store.database` sets up every connection, so the commit costs the same
  fsync of the WAL;
- PostgreSQL: psycopg on the same server as the node, so the commit waits for the
  same WAL flush (and groups with concurrent commits the same way).

The method is generic, bytes in and bytes out (`/hdx.bench.Bare/Commit`): the
server stores the request's bytes and echoes them, so no protocol of its own is
needed and the client sends the very request a node would get. What a node does
beyond this, authenticating, validating, reading the catalogue, building and
encoding the ticket, writing its history, is exactly what its ratio to this
server prices.

It prints `bare server serving on HOST:PORT` when ready and stops on SIGTERM or SIGINT.
"""

import argparse
import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Any

import grpc
import psycopg

from bench.processes import stop_signalled

SERVICE = "hdx.bench.Bare"
METHOD = "Commit"
FULL_METHOD = f"/{SERVICE}/{METHOD}"
SQLITE_BUSY_TIMEOUT_MS = 30_000
"""As node.store.database's, so writers queue on SQLite's lock the same way."""

Commit = Callable[[bytes], None]


def sqlite_committer(path: str) -> Commit:
    """One INSERT and COMMIT per call on the calling thread's own connection."""
    local = threading.local()

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        return conn

    with closing(connect()) as setup:
        setup.execute("CREATE TABLE IF NOT EXISTS bare (id INTEGER PRIMARY KEY, body BLOB)")

    def commit(body: bytes) -> None:
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("INSERT INTO bare (body) VALUES (?)", (body,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    return commit


def postgres_committer(conninfo: str) -> Commit:
    """One INSERT and COMMIT per call on the calling thread's own connection."""
    local = threading.local()
    with psycopg.connect(conninfo, autocommit=True) as setup:
        setup.execute("CREATE TABLE IF NOT EXISTS bare (id bigserial PRIMARY KEY, body bytea)")

    def commit(body: bytes) -> None:
        conn: psycopg.Connection[Any] | None = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = psycopg.connect(conninfo)
        with conn.transaction():
            conn.execute("INSERT INTO bare (body) VALUES (%s)", (body,))

    return commit


async def serve(commit: Commit, listen: str, workers: int) -> None:
    """Serves the bare method until SIGTERM or SIGINT."""
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bare-api")

    async def handle(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        await asyncio.get_running_loop().run_in_executor(executor, commit, request)
        return request

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE, {METHOD: grpc.unary_unary_rpc_method_handler(handle)}
            ),
        )
    )
    port = server.add_insecure_port(listen)
    await server.start()
    print(f"bare server serving on {listen.rsplit(':', 1)[0]}:{port}", flush=True)
    await stop_signalled()
    await server.stop(grace=1)
    executor.shutdown(wait=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_server", description=__doc__)
    database = parser.add_mutually_exclusive_group(required=True)
    database.add_argument("--sqlite", metavar="PATH", help="SQLite database file")
    database.add_argument("--postgres", metavar="CONNINFO", help="libpq connection string")
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--workers", type=int, default=16, help="as the node's api.workers")
    args = parser.parse_args(argv)
    commit = sqlite_committer(args.sqlite) if args.sqlite else postgres_committer(args.postgres)
    asyncio.run(serve(commit, args.listen, args.workers))


if __name__ == "__main__":
    main()
