"""Engines and transactions for SQLite (the default) and PostgreSQL.

SQLite runs in WAL mode with synchronous=FULL, so a committed ticket survives
a power cut as it would on PostgreSQL. pysqlite's own transaction handling is
switched off and hdx begins transactions itself: `BEGIN IMMEDIATE` for writes,
so two writers queue on the lock (busy_timeout) instead of failing when one of
them upgrades a read lock, and a plain `BEGIN` for reads, which WAL lets run
beside a writer. Writers of one process also queue on a lock of their own, which
wakes the next one the moment the lock is free, where SQLite's busy handler
would sleep and poll.

SQLite's writers of one process share commits (group commit): a writer that ends
while others queue leaves its transaction open to them, each of them works in a
savepoint of its own, and the last one commits for all. Each write is still atomic
(a failing one undoes only itself) and durable before its `write()` block returns,
but writers arriving together pay one fsync, not one each. PostgreSQL groups
concurrent commits itself.

A transaction takes the connection the last one gave back (it is open, and on
SQLite its page cache is still warm) rather than checking one out of the pool and
in again, which costs more than a short write on SQLite.

A write of soft state, which the node may lose in a power cut and start afresh from
(the delivery worker's leases and backoff), commits without waiting for the disk
(`write(durable=False)`): synchronous=NORMAL for that transaction on SQLite, whose
next durable commit takes it to disk along with its own, and synchronous_commit
off on PostgreSQL. It is never out of order with what commits durably after it.

On PostgreSQL a connection broken by a server restart fails the call it serves
(UNAVAILABLE, safe to retry) and is dropped with every connection opened before it,
so the node recovers without paying a ping before every transaction.
"""

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from node.domain.errors import InvalidArgument, Unavailable
from node.store import schema
from node.store.tx import Tx, unavailable

SQLITE_BUSY_TIMEOUT_MS = 30_000
MAX_BATCH = 32
"""Writes that share one SQLite commit at most, so a batch ends under constant load."""


class Database:
    """One node's database.

    Args:
        url: a SQLAlchemy URL: `sqlite:///path/hdx.db` or
            `postgresql+psycopg://user@/dbname?host=/run/postgresql`.
        pool_size: connections kept open; match it to the server's worker threads.
    """

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        try:
            self.url = make_url(url)
            self.engine: Engine = create_engine(
                self.url, pool_size=pool_size, max_overflow=pool_size
            )
        except (ArgumentError, NoSuchModuleError) as error:
            raise InvalidArgument(
                "database.url", f"not a database URL hdx can use: {error}"
            ) from None
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self._writers = threading.Lock()
        """Taken by SQLite's writers in turn (see `_batched_write`)."""
        self._admission = threading.Lock()
        self._queued = 0
        """SQLite writers waiting for the writer lock."""
        self._batch: _Batch | None = None
        """The SQLite batch of writes left open to the writers waiting."""
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_connect)
            event.listen(self.engine, "begin", _sqlite_begin)
        self._key_prefix: str | None = None
        self._local = threading.local()
        self._pool_size = pool_size
        self._idle: list[tuple[Connection, int]] = []
        """Open connections between transactions, the last given back on top, each with
        the generation it was opened in."""
        self._generation = 0
        """How many times a connection was lost to the server going away."""

    @property
    def key_prefix(self) -> str:
        """The node's ticket key prefix, set once by `hdx init`."""
        if self._key_prefix is None:
            with self.engine.connect() as conn:
                value = conn.scalar(
                    select(schema.settings.c.value).where(schema.settings.c.name == "key_prefix")
                )
            if value is None:
                raise RuntimeError("the database is not initialised: run `hdx init`")
            self._key_prefix = value
        return self._key_prefix

    def initialise(self, key_prefix: str, node_name: str) -> None:
        """Records the node's identity once, after the schema is created.

        Raises:
            RuntimeError: the database was initialised already, with another prefix.
        """
        with self.engine.begin() as conn:
            tx = Tx(conn, key_prefix)
            existing = tx.setting("key_prefix")
            if existing not in (None, key_prefix):
                raise RuntimeError(f"the database belongs to node prefix {existing}")
            tx.put_setting("key_prefix", key_prefix)
            tx.put_setting("node_name", node_name)

    def write(self, *, durable: bool = True) -> AbstractContextManager[Tx]:
        """A read-write transaction: committed when the block ends, rolled back on error.

        Inside a transaction this thread has open already, it joins that one, so a
        caller can make several use cases (authentication and the call) one transaction.

        Args:
            durable: its commit waits for the disk; False only for soft state (see the
                module's notes). A transaction joined keeps its own.
        """
        return self._transaction(write=True, durable=durable)

    def read(self) -> AbstractContextManager[Tx]:
        """A read-only transaction over one consistent snapshot."""
        return self._transaction(write=False)

    def _transaction(self, *, write: bool, durable: bool = True) -> AbstractContextManager[Tx]:
        """The transaction this thread has open, joined, or else a new one."""
        current: Tx | None = getattr(self._local, "tx", None)
        if current is None:
            return self._new_transaction(write=write, durable=durable)
        if write and not current.writable:
            raise RuntimeError("a writing use case inside a read-only transaction")
        return nullcontext(current)

    @contextmanager
    def _new_transaction(self, *, write: bool, durable: bool) -> Iterator[Tx]:
        try:
            prefix = self.key_prefix
        except OperationalError as error:
            raise unavailable(error) from error
        if write and self.is_sqlite:
            with self._batched_write(prefix, durable) as tx:
                yield tx
            return
        try:
            conn, generation = self._connection()
            try:
                conn.info["hdx_write"] = write
                conn.info["hdx_durable"] = durable
                with conn.begin():
                    tx = Tx(conn, prefix, writable=write)
                    if not durable and not self.is_sqlite:
                        tx.raw("SET LOCAL synchronous_commit TO OFF", {})
                    self._local.tx = tx
                    try:
                        yield tx
                        tx.finish()
                    finally:
                        self._local.tx = None
            finally:
                self._give_back(conn, generation)
        except OperationalError as error:
            if error.connection_invalidated:
                self._generation += 1
            raise unavailable(error) from error
        for callback in tx.committed:
            callback()

    @contextmanager
    def _batched_write(self, prefix: str, durable: bool) -> Iterator[Tx]:
        """A write transaction on SQLite, in the batch of writes that commits next.

        Writers take turns on the writer lock. One that finds a durable batch open joins
        it, in a savepoint of its own; one that finds none opens one. A writer that ends
        while others wait for the lock leaves the batch open to them, and waits for the
        batch's commit; the last one commits it. So writers arriving together share one
        commit and its fsync (group commit), each still atomic and durable before it
        returns, in the order they took the lock.
        """
        with self._admission:
            self._queued += 1
        with self._writers:
            with self._admission:
                self._queued -= 1
            batch = self._batch or self._open_batch(durable)
            tx = Tx(batch.conn, prefix)
            self._local.tx = tx
            try:
                with batch.member():
                    yield tx
                    tx.finish()
            except OperationalError as error:
                raise unavailable(error) from error
            finally:
                self._local.tx = None
                if batch.open and batch.durable and self._queued and batch.members < MAX_BATCH:
                    self._batch = batch
                else:
                    self._batch = None
                    batch.end()
                    self._give_back(batch.conn, batch.generation)
        batch.committed.wait()
        if batch.failure is not None:
            raise Unavailable(str(batch.failure))
        for callback in tx.committed:
            callback()

    def _open_batch(self, durable: bool) -> "_Batch":
        conn, generation = self._connection()
        conn.info["hdx_write"] = True
        conn.info["hdx_durable"] = durable
        try:
            return _Batch(conn, generation, durable)
        except OperationalError as error:
            self._give_back(conn, generation)
            raise unavailable(error) from error

    def _connection(self) -> tuple[Connection, int]:
        """An open connection of the current generation, with its generation."""
        while True:
            try:
                conn, generation = self._idle.pop()
            except IndexError:
                return self.engine.connect(), self._generation
            if generation == self._generation:
                return conn, generation
            conn.close()

    def _give_back(self, conn: Connection, generation: int) -> None:
        """Keeps conn for the next transaction, unless it is broken, older than the last
        lost connection, or one too many."""
        if conn.invalidated or generation != self._generation or len(self._idle) >= self._pool_size:
            conn.close()
        else:
            self._idle.append((conn, generation))

    def dispose(self) -> None:
        while self._idle:
            self._idle.pop()[0].close()
        self.engine.dispose()


LOST = "database: the transaction was lost"
"""What the writers of a batch learn when SQLite rolled it back on an error of its own."""


class _Batch:
    """SQLite write transactions that one commit makes durable together.

    The writer that opens it begins the transaction (`BEGIN IMMEDIATE`); each writer
    that joins it works in a savepoint, so what it wrote is undone alone if it fails.
    Writers take turns (the database's writer lock); the last one ends the batch.
    """

    def __init__(self, conn: Connection, generation: int, durable: bool) -> None:
        self.conn = conn
        self.generation = generation
        self.durable = durable
        self.root = conn.begin()
        self._driver: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        self.members = 0
        self.open = True
        """False once the transaction has ended, committed or rolled back."""
        self.committed = threading.Event()
        """Set when the batch has ended; then `failure` says whether it committed."""
        self.failure: Unavailable | None = None

    @contextmanager
    def member(self) -> Iterator[None]:
        """One writer's part of the batch: undone, and only it, if the block raises."""
        self.members += 1
        if self.members == 1:
            try:
                yield
            except BaseException:
                self._roll_back(None)
                raise
            return
        self._execute("SAVEPOINT hdx_member")
        try:
            yield
        except BaseException:
            self._execute("ROLLBACK TO hdx_member")
            self._execute("RELEASE hdx_member")
            raise
        self._execute("RELEASE hdx_member")

    def end(self) -> None:
        """Commits what the batch holds, unless it has ended already; wakes its writers."""
        try:
            if self.open and not self._driver.in_transaction:
                self._roll_back(Unavailable(LOST))
            if self.open:
                self.open = False
                try:
                    self.root.commit()
                except DBAPIError as error:
                    self._roll_back(unavailable(error))
        finally:
            self.committed.set()

    def _execute(self, statement: str) -> None:
        """Runs statement in the batch's transaction; if it fails, the batch does."""
        self._alive()
        try:
            self._driver.execute(statement)
        except sqlite3.Error as error:
            self._roll_back(Unavailable(f"database: {error}"))
        self._alive()

    def _alive(self) -> None:
        """Raises, and fails the batch, when its transaction has ended: rolled back by a
        failed writer, or by SQLite itself on an error such as a full disk (a writer's
        next statement would then begin a transaction of its own)."""
        if self.open and not self._driver.in_transaction:
            self._roll_back(Unavailable(LOST))
        if not self.open:
            raise self.failure or Unavailable("database: the batch has ended")

    def _roll_back(self, failure: Unavailable | None) -> None:
        """Ends the transaction without committing it; failure is what its earlier writers
        learn (None when no one else is in it)."""
        self.open = False
        self.failure = failure
        with suppress(DBAPIError):
            self.root.rollback()
        if self._driver.in_transaction:  # a failed COMMIT leaves SQLAlchemy done with it
            self.conn.invalidate()


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    """Begins on the driver's connection itself: SQLAlchemy's statement execution would
    cost more than the BEGIN. Its errors are raised as SQLAlchemy's, as they would be.
    Sets the connection's synchronous level first, where the transaction needs another
    than its last one's."""
    statement = "BEGIN IMMEDIATE" if conn.info.get("hdx_write") else "BEGIN"
    synchronous = "FULL" if conn.info.get("hdx_durable", True) else "NORMAL"
    driver = conn.connection.driver_connection
    try:
        if conn.info.get("hdx_synchronous", "FULL") != synchronous:
            driver.execute(f"PRAGMA synchronous={synchronous}")  # type: ignore[union-attr]
            conn.info["hdx_synchronous"] = synchronous
        driver.execute(statement)  # type: ignore[union-attr]
    except sqlite3.Error as error:
        raise DBAPIError.instance(statement, None, error, sqlite3.Error) from error
