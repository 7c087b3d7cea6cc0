"""Builds a node from its configuration and runs it: the one place that sees every layer."""

import asyncio
import contextlib
import hashlib
import json
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from adapters import calendars
from cli.config import Config
from node.api.server import start_server
from node.domain.calendar import Holidays
from node.domain.errors import DomainError, InvalidArgument
from node.domain.slapolicy import (
    DEFAULT_POLICIES,
    DEFAULT_SLA_CONFIG,
    DEFAULT_STEPS,
    SlaConfig,
)
from node.domain.workflow import DEFAULT_WORKFLOW, Workflow
from node.services.admin import AdminService
from node.services.clock import Clock, SystemClock
from node.services.sla import SlaService
from node.services.tickets import TicketService
from node.store import migrate
from node.store.database import Database

log = logging.getLogger("hdx")
HOUSEKEEPING_MAX_SLEEP_S = 60.0
"""The longest a timer sleeps, so it notices what other processes of the node scheduled."""


@dataclass(frozen=True, slots=True)
class Node:
    """A node's services and the fingerprint of the SLA configuration they run."""

    db: Database
    tickets: TicketService
    admin: AdminService
    sla_fingerprint: str


def open_node(config: Config, clock: Clock | None = None) -> Node:
    """Opens the node's database and builds its services.

    Raises:
        InvalidArgument: the config's workflow or SLA is malformed.
    """
    clock = clock or SystemClock()
    db = Database(config.database_url, pool_size=config.workers)
    workflow = Workflow.from_config(config.workflow) if config.workflow else DEFAULT_WORKFLOW
    sla_table = config.sla if config.sla is not None else DEFAULT_SLA_CONFIG
    regions = holidays(sla_table.get("holidays", {}), config.data_dir)
    sla = SlaService(SlaConfig.from_config(sla_table, workflow.kinds), workflow, regions)
    tickets = TicketService(
        db,
        clock,
        workflow=workflow,
        confirm_window=timedelta(hours=config.confirm_window_hours),
        sla=sla,
    )
    fingerprint = hashlib.sha256(
        json.dumps(
            [
                sla_table,
                DEFAULT_POLICIES,
                DEFAULT_STEPS,
                workflow.kinds,
                sorted((region, _days(days)) for region, days in regions.items()),
            ],
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()
    return Node(db, tickets, AdminService(db, clock), fingerprint)


def _days(holidays: Holidays) -> list[Any]:
    return [sorted(holidays.days_off), sorted(holidays.workdays.items())]


def holidays(table: object, data_dir: Path) -> dict[str, Holidays]:
    """The holidays of each store region the `[sla.holidays]` table names.

    Each region takes `country` (and `subdiv`, `years`) for the `holidays` package's
    calendar, or `ical`, an iCalendar file (relative to the data directory).
    """
    if not isinstance(table, dict):
        raise InvalidArgument("sla.holidays", "must be a table of regions")
    found: dict[str, Holidays] = {}
    for region, source in table.items():
        where = f"sla.holidays.{region}"
        if not isinstance(source, dict) or ("country" in source) == ("ical" in source):
            raise InvalidArgument(where, "give either country (with years) or ical")
        found[region] = _holidays(where, source, data_dir)
    return found


def _holidays(where: str, source: dict[str, Any], data_dir: Path) -> Holidays:
    if "ical" in source:
        path = data_dir / str(source["ical"])
        try:
            return calendars.from_ical(path.read_text(encoding="utf-8"))
        except OSError as error:
            reason = f"cannot read {path}: {error.strerror}"
            raise InvalidArgument(f"{where}.ical", reason) from None
    years = source.get("years", [])
    if not isinstance(years, list) or not all(isinstance(y, int) for y in years) or not years:
        raise InvalidArgument(f"{where}.years", "must list the years to load, e.g. [2026, 2027]")
    subdiv = source.get("subdiv")
    return calendars.from_package(str(source["country"]), years, subdiv)


def schema_problem(db: Database) -> str | None:
    """Why the database cannot be served as it is, or None."""
    current, head = migrate.current(db.engine), migrate.head()
    if current is None:
        return "the database has no schema: run `hdx init`"
    if current != head:
        return f"the database schema is at {current}, this hdx needs {head}: run `hdx migrate`"
    return None


async def serve(node: Node, listen: str, workers: int, on_ready: Callable[[int], None]) -> None:
    """Serves the API and runs the node's timers until SIGINT or SIGTERM."""
    recomputed = await asyncio.to_thread(node.tickets.adopt_sla_config, node.sla_fingerprint)
    if recomputed is not None:
        log.info("SLA configuration changed: recomputed %d open tickets", recomputed)
    server, port = await start_server(node.tickets, node.admin, listen, workers=workers)
    on_ready(port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tickets = node.tickets
    bell = Bell(loop)
    tickets.on_alarm = bell.ring
    timers = [
        asyncio.create_task(
            timer_loop(
                "auto-close", tickets.close_confirmed, tickets.next_auto_close, tickets.clock
            )
        ),
        asyncio.create_task(
            timer_loop("sla", tickets.fire_alarms, tickets.next_alarm, tickets.clock, bell)
        ),
    ]
    await stop.wait()
    for timer in timers:
        timer.cancel()
    await server.stop(grace=5)
    node.db.dispose()


class Bell:
    """Wakes a sleeping timer when a change committed in this process sets an alarm
    earlier than the instant the timer sleeps until (and only then: most changes don't)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.event = asyncio.Event()
        self.until: datetime | None = None

    def ring(self, at: datetime) -> None:
        """Called from any thread with an alarm instant just committed. It reads `until`
        without a lock: a stale read only wakes the timer for a round it didn't need."""
        until = self.until
        if until is None or at < until:
            self.loop.call_soon_threadsafe(self.event.set)


async def timer_loop(
    name: str,
    run: Callable[[], int],
    next_due: Callable[[], datetime | None],
    clock: Clock,
    bell: Bell | None = None,
) -> None:
    """Runs what is due (closing unconfirmed tickets, firing SLA alarms) at the instant it is.

    It sleeps until the next due instant, at most `HOUSEKEEPING_MAX_SLEEP_S` so it
    notices what other processes of the node scheduled, and wakes at once when bell
    rings (a change committed in this process brought an instant nearer).
    """
    while True:
        if bell is not None:
            bell.event.clear()
            bell.until = None
        try:
            done = await asyncio.to_thread(run)
            if done:
                log.info("%s: handled %d tickets", name, done)
            due = await asyncio.to_thread(next_due)
        except DomainError as error:
            log.warning("%s: %s", name, error)
            due = None
        delay = HOUSEKEEPING_MAX_SLEEP_S
        if due is not None:
            delay = min(delay, max((due - clock.now()).total_seconds(), 0.0))
        if bell is None:
            await asyncio.sleep(delay)
            continue
        bell.until = clock.now() + timedelta(seconds=delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(bell.event.wait(), delay)
