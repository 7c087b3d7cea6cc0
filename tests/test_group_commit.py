"""SQLite's writers that arrive together share one commit (group commit), and each of
them is still atomic, and durable before its write block returns."""

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, select

from node.domain.errors import Unavailable
from node.store import schema
from node.store.database import Database
from node.store.tx import Tx


class Boom(Exception):
    """Stands for any failure of a writer's use case."""


@pytest.fixture
def sqlite_db(sqlite_template: Path, tmp_path: Path) -> Iterator[Database]:
    path = tmp_path / "hdx.db"
    shutil.copy(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()


def commits(db: Database) -> list[Connection]:
    """A list that grows by one with every commit of db's write transactions."""
    seen: list[Connection] = []

    def commit(conn: Connection) -> None:
        if conn.info.get("hdx_write"):
            seen.append(conn)

    event.listen(db.engine, "commit", commit)
    return seen


def stored(db: Database) -> set[str]:
    """The names of the settings the writers of these tests stored."""
    with db.read() as tx:
        names = tx.conn.scalars(select(schema.settings.c.name)).all()
    return {name for name in names if name.startswith("w-")}


class Writer:
    """A thread that stores setting `w-NAME` in a write transaction of its own.

    Args:
        hold: the writer keeps its transaction open until this is set.
        fail: the writer raises Boom after its write.
        durable: as `Database.write`.
    """

    def __init__(
        self,
        db: Database,
        name: str,
        *,
        hold: threading.Event | None = None,
        fail: bool = False,
        durable: bool = True,
        before_commit: Callable[[Tx], None] | None = None,
    ) -> None:
        self.db = db
        self.name = f"w-{name}"
        self.hold = hold
        self.fail = fail
        self.durable = durable
        self.before_commit = before_commit
        self.writing = threading.Event()
        self.error: BaseException | None = None
        self.seen_after: set[str] = set()
        """The settings a fresh read saw once the write block had returned."""
        self.seen_by_callback: set[str] = set()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with self.db.write(durable=self.durable) as tx:
                tx.put_setting(self.name, "written")
                if self.before_commit is not None:
                    self.before_commit(tx)
                tx.after_commit(lambda: self.seen_by_callback.update(stored(self.db)))
                self.writing.set()
                if self.hold is not None:
                    assert self.hold.wait(10)
                if self.fail:
                    raise Boom(self.name)
            self.seen_after = stored(self.db)
        except BaseException as error:
            self.error = error
        finally:
            self.writing.set()

    def join(self) -> "Writer":
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), f"{self.name} hangs"
        return self


def together(
    db: Database,
    first: dict[str, Any],
    while_held: Callable[[], None] = lambda: None,
    **behind: dict[str, Any],
) -> list[Writer]:
    """Runs writer `first` (with these options), holding its transaction open until a
    writer per keyword of behind (its name → its options) waits for the writer lock;
    calls while_held then, lets the first go on, and returns them all once they ended."""
    release = threading.Event()
    holder = Writer(db, "first", hold=release, **first)
    assert holder.writing.wait(10)
    assert holder.error is None, holder.error
    writers = [Writer(db, name, **options) for name, options in behind.items()]
    deadline = time.monotonic() + 10
    while db._queued < len(writers):
        assert time.monotonic() < deadline, "the writers did not queue"
        time.sleep(0.001)
    while_held()
    release.set()
    return [w.join() for w in [holder, *writers]]


def test_writers_that_queue_together_share_one_commit_and_each_sees_it_durable(
    sqlite_db: Database,
) -> None:
    counted = commits(sqlite_db)

    def nothing_visible() -> None:
        assert stored(sqlite_db) == set(), "nothing is visible before the commit"

    writers = together(sqlite_db, {}, nothing_visible, second={}, third={})
    everyone = {w.name for w in writers}
    assert [w.error for w in writers] == [None, None, None]
    assert len(counted) == 1
    assert stored(sqlite_db) == everyone
    for writer in writers:
        assert writer.seen_after == everyone, "a write returned before it was committed"
        assert writer.seen_by_callback == everyone, "a callback ran before the commit"


def test_a_writer_that_fails_in_a_shared_batch_undoes_only_its_own_writes(
    sqlite_db: Database,
) -> None:
    counted = commits(sqlite_db)
    first, failing, last = together(sqlite_db, {}, failing={"fail": True}, last={})
    assert isinstance(failing.error, Boom)
    assert first.error is None and last.error is None
    assert stored(sqlite_db) == {first.name, last.name}
    assert len(counted) == 1
    assert failing.seen_by_callback == set(), "a failed write's callback ran"


def test_a_failing_first_writer_leaves_nothing_and_the_writers_behind_it_go_on(
    sqlite_db: Database,
) -> None:
    first, second = together(sqlite_db, {"fail": True}, second={})
    assert isinstance(first.error, Boom)
    assert second.error is None
    assert stored(sqlite_db) == {second.name}


def _break_at_commit(tx: Tx) -> None:
    """Writes a row whose foreign key is checked only at the commit, and fails it."""
    tx.raw("PRAGMA defer_foreign_keys=ON", {})
    tx.raw("INSERT INTO ticket_co_assignees (ticket_id, login) VALUES (424242, 'nobody')", {})


def test_a_failed_commit_fails_every_writer_of_the_batch_and_keeps_none(
    sqlite_db: Database,
) -> None:
    for writer in together(sqlite_db, {"before_commit": _break_at_commit}, second={}):
        assert isinstance(writer.error, Unavailable), writer.error
        assert "FOREIGN KEY" in str(writer.error)
        assert writer.seen_by_callback == set()
    assert stored(sqlite_db) == set()
    assert Writer(sqlite_db, "after").join().error is None, "the database works on"
    assert stored(sqlite_db) == {"w-after"}


def test_a_write_of_soft_state_commits_alone(sqlite_db: Database) -> None:
    """Soft state commits without waiting for the disk, so no durable write may share
    its commit: the writer behind it gets one of its own."""
    counted = commits(sqlite_db)
    soft, durable = together(sqlite_db, {"durable": False}, durable={})
    assert soft.error is None and durable.error is None
    assert len(counted) == 2
    assert stored(sqlite_db) == {soft.name, durable.name}
