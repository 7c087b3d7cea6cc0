"""The SLA engine on a node's SQLite database, in process.

    sla_recompute_100k_s   seconds to put 100,000 open tickets under a changed SLA
                           configuration (`TicketService.recompute_sla`): every ticket's
                           policy re-chosen, its clocks re-targeted, its deadline and next
                           alarm recomputed on the new calendars and written back.
    sla_long_history_ms    milliseconds of one use case that moves the clocks (a status
                           change) of a ticket whose history holds 10,000 entries.

The tickets are real: a few are filed through `TicketService` in stores of several
time zones and categories (stop-trade ones among them), then copied row by row to
100,000. The configuration change moves the business hours from 09:00-18:00 to
08:00-20:00, so every ticket not on a 24/7 clock gets a new deadline.

Bare limits, measured in the same run on the same database file:
- recompute: reading the same columns of the same 100,000 rows and writing their
  deadline and alarm back, a batch per transaction as the node does, with the
  sqlite3 driver and no SLA arithmetic: the I/O a recompute cannot avoid.
- long history: one bare UPDATE and COMMIT of a ticket row, the least a change costs.
The goals are absolute (< 2 s, < 10 ms); the ratios say how far above the floor they are.
"""

import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from bench.report import Goal, Result, Suite
from node.domain.slapolicy import SlaConfig
from node.domain.ticket import TicketDraft, Visibility
from node.domain.workflow import DEFAULT_WORKFLOW
from node.services.sla import SlaService
from node.services.tickets import RECOMPUTE_BATCH, TicketService
from node.store import migrate
from node.store.database import Database
from tests.conftest import Desk, FakeClock, seed_desk

RECOMPUTE = "sla_recompute_100k_s"
LONG_HISTORY = "sla_long_history_ms"
TICKETS = 100_000
HISTORY = 10_000
SAMPLES = 41
FILED = [
    ("anna", "scales"),
    ("boris", "scales"),
    ("anna", "pos-down"),
    ("boris", "network-down"),
    ("anna", "other"),
    ("boris", "access"),
    ("anna", "refrigeration"),
    ("boris", "other"),
]
"""Who files what: Moscow (a flagship) and Vladivostok, stop-trade and business-hours ones."""
LONGER_HOURS = {"hours": {"business": {"mon-fri": "08:00-20:00"}}}


@contextmanager
def _desk() -> Iterator[tuple[Desk, Path]]:
    base = Path(tempfile.mkdtemp(prefix="hdx-bench-sla-"))
    db = Database(f"sqlite:///{base / 'hdx.db'}")
    try:
        migrate.upgrade(db.engine)
        db.initialise("RET", "bench")
        yield seed_desk(db, FakeClock()), base / "hdx.db"
    finally:
        db.dispose()
        shutil.rmtree(base, ignore_errors=True)


def _copy_tickets(path: Path, count: int) -> None:
    """Copies the filed tickets' rows until there are count."""
    with sqlite3.connect(path) as raw:
        columns = [
            row[1]
            for row in raw.execute("PRAGMA table_info(tickets)")
            if row[1] not in ("id", "request_id", "request_sha256")
        ]
        listed = ", ".join(columns)
        while (have := raw.execute("SELECT count(*) FROM tickets").fetchone()[0]) < count:
            raw.execute(
                f"INSERT INTO tickets ({listed}) SELECT {listed} FROM tickets LIMIT ?",
                (min(have, count - have),),
            )
            raw.commit()


def _bare_recompute(path: Path) -> float:
    """Seconds to read every ticket's SLA columns and write deadline and alarm back."""
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA synchronous=FULL")
    started = time.perf_counter()
    after = 0
    while True:
        raw.execute("BEGIN IMMEDIATE")
        rows = raw.execute(
            "SELECT id, status, priority, category_code, ticket_type, store_code, stop_trade,"
            " sla_policy, sla_state, due_at, alarm_at FROM tickets WHERE id > ?"
            " ORDER BY id LIMIT ?",
            (after, RECOMPUTE_BATCH),
        ).fetchall()
        if not rows:
            raw.execute("COMMIT")
            break
        raw.executemany(
            "UPDATE tickets SET due_at = ?, alarm_at = ? WHERE id = ?",
            [(row[9], row[10], row[0]) for row in rows],
        )
        raw.execute("COMMIT")
        after = rows[-1][0]
    seconds = time.perf_counter() - started
    raw.close()
    return seconds


def _recompute() -> Result:
    with _desk() as (desk, path):
        for login, category in FILED:
            desk.tickets.create(desk.actor(login), TicketDraft(category=category, title=category))
        _copy_tickets(path, TICKETS)
        config = SlaConfig.from_config(LONGER_HOURS, DEFAULT_WORKFLOW.kinds)
        tickets = TicketService(desk.db, desk.clock, sla=SlaService(config, DEFAULT_WORKFLOW))
        bare = _bare_recompute(path)
        started = time.perf_counter()
        changed = tickets.recompute_sla()
        value = time.perf_counter() - started
    print(
        f"  {RECOMPUTE}: {changed} of {TICKETS} tickets changed in {value:.2f} s, bare {bare:.2f} s"
    )
    return Result(RECOMPUTE, value, "s", bare, Goal(value_max=2.0))


def _long_history() -> Result:
    with _desk() as (desk, path):
        ivan, boris = desk.actor("ivan"), desk.actor("boris")
        key = desk.tickets.create(boris, TicketDraft(category="scales", title="scales")).key
        desk.tickets.assign(desk.actor("sergey"), key, "ivan", None, frozenset())
        desk.tickets.transition(ivan, key, "start", "")
        while len(desk.tickets.history(ivan, key)) < HISTORY:
            desk.clock.advance(timedelta(minutes=5))
            desk.tickets.comment(ivan, key, "checking the scales", Visibility.PUBLIC)
            desk.tickets.transition(ivan, key, "wait_requester", "")
            desk.tickets.comment(boris, key, "tried it, still off", Visibility.PUBLIC)
            desk.tickets.transition(ivan, key, "resume", "")
        entries = len(desk.tickets.history(ivan, key))
        samples, bare = [], []
        raw = sqlite3.connect(path, isolation_level=None)
        raw.execute("PRAGMA synchronous=FULL")
        for turn in range(SAMPLES):
            desk.clock.advance(timedelta(minutes=1))
            started = time.perf_counter()
            desk.tickets.transition(ivan, key, "resume" if turn % 2 else "wait_requester", "")
            samples.append(time.perf_counter() - started)
            started = time.perf_counter()
            raw.execute("BEGIN IMMEDIATE")
            raw.execute("UPDATE tickets SET updated_at = updated_at WHERE id = 1")
            raw.execute("COMMIT")
            bare.append(time.perf_counter() - started)
        raw.close()
    value, floor = statistics.median(samples) * 1000, statistics.median(bare) * 1000
    print(f"  {LONG_HISTORY}: {entries} history entries, status change {value:.2f} ms")
    return Result(LONG_HISTORY, value, "ms", floor, Goal(value_max=10.0))


def run(selected: Sequence[str]) -> Iterator[Result]:
    if RECOMPUTE in selected:
        print("sla: 100,000 open tickets on SQLite", flush=True)
        yield _recompute()
    if LONG_HISTORY in selected:
        print(f"sla: a ticket with {HISTORY} history entries on SQLite", flush=True)
        yield _long_history()


SUITE = Suite(names=(RECOMPUTE, LONG_HISTORY), run=run)
