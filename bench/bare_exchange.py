"""The bare limits of the exchange benchmarks, served by a process of their own as the
partner node is, on that node's TLS certificate and signing key.

    python -m bench.bare_exchange DATA_DIR NODE_ID SENDER_KEY_HEX DATABASE

Two bytes-in, bytes-out methods of `hdx.bench.BareExchange`, each message a signature
of the sender's (64 bytes) and the bytes it signs:

- Offer: verifies the message, commits it and then its first 32 bytes (what the
  receiver applies, and its answer), each in a transaction of its own on the SQLite
  database (WAL, synchronous=FULL, as a node's), and answers with its own signature
  of the body and the body;
- Stream: verifies each message of a client stream and answers with their count.

It prints `bare exchange serving on 127.0.0.1:PORT` when ready and stops on SIGTERM or
SIGINT.
"""

import asyncio
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc

from bench.processes import stop_signalled
from exchange import identity
from exchange.identity import verify

SERVICE = "hdx.bench.BareExchange"
OFFER = f"/{SERVICE}/Offer"
STREAM = f"/{SERVICE}/Stream"


def sqlite(path: Path) -> sqlite3.Connection:
    """A connection set up as a node's: WAL, synchronous=FULL; with the bare table."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS bare (id INTEGER PRIMARY KEY, body BLOB)")
    return conn


def commit(conn: sqlite3.Connection, body: bytes) -> None:
    """One row, one durable commit."""
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO bare (body) VALUES (?)", (body,))
    conn.execute("COMMIT")


async def serve(me: identity.Identity, sender_key: bytes, database: Path) -> None:
    conn = sqlite(database)

    def offer(request: bytes, _context: object) -> bytes:
        assert verify(sender_key, request[:64], request[64:])
        commit(conn, request)
        commit(conn, request[:32])
        return me.sign(request[64:]) + request[64:]

    def stream(requests: Iterator[bytes], _context: object) -> bytes:
        count = 0
        for request in requests:
            assert verify(sender_key, request[:64], request[64:])
            count += 1
        return str(count).encode()

    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 1 << 24)])
    methods = {
        "Offer": grpc.unary_unary_rpc_method_handler(offer),
        "Stream": grpc.stream_unary_rpc_method_handler(stream),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, methods),))
    credentials = grpc.ssl_server_credentials([(me.tls_key_pem, me.cert_pem)])
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    print(f"bare exchange serving on 127.0.0.1:{port}", flush=True)
    await stop_signalled()
    await server.stop(0)
    conn.close()


def main(argv: list[str]) -> None:
    data_dir, node_id, sender_key, database = argv
    me = identity.load(Path(data_dir), node_id)
    asyncio.run(serve(me, bytes.fromhex(sender_key), Path(database)))


if __name__ == "__main__":
    main(sys.argv[1:])
