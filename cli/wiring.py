"""Builds a node from its configuration and runs it: the one place that sees every layer."""

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import secrets
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from adapters import calendars
from cli.config import Config
from exchange import identity, keys
from exchange.alerts import AlertPolicy, OutageAlerts
from exchange.delivery import Courier
from exchange.identity import Identity
from exchange.server import channel_to, start_exchange_server
from exchange.service import ExchangeService
from node.api.server import start_server
from node.domain.calendar import Holidays
from node.domain.errors import DomainError, FailedPrecondition, InvalidArgument
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
NODE_ID_SETTING = "node_id"
"""The node setting holding the node's id on the exchange."""
NODE_ID_NAME_MAX = 30
"""How much of the node's name its id repeats (`<name>-<8 hex digits>`)."""


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


def new_node_id(name: str) -> str:
    """A new node id: the node's name as a code, then 8 random hex digits."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower())[:NODE_ID_NAME_MAX].strip("-")
    return f"{slug or 'node'}-{secrets.token_hex(4)}"


def ensure_identity(node: Node, config: Config) -> tuple[Identity, bool]:
    """The node's exchange identity, made if it has none yet (a new node, or one made
    before the exchange): its id in the database, its keys and certificate in the data dir.

    Returns:
        The identity, and whether it was made now.
    """
    with node.db.write() as tx:
        node_id = tx.setting(NODE_ID_SETTING)
        if node_id is None:
            node_id = new_node_id(config.node_name)
            tx.put_setting(NODE_ID_SETTING, node_id)
    try:
        return identity.load(config.data_dir, node_id), False
    except FileNotFoundError:
        return identity.create(config.data_dir, node_id, node.tickets.clock.now()), True


def open_exchange(node: Node, config: Config) -> ExchangeService:
    """The node's exchange service, signing with the node's current key and reporting
    the changes of node.tickets to the partners.

    Raises:
        FailedPrecondition: the node has no identity yet (made before the exchange).
    """
    with node.db.read() as tx:
        node_id = tx.setting(NODE_ID_SETTING)
    missing = FailedPrecondition(
        f"the node has no exchange identity in {config.data_dir}: run `hdx migrate`"
    )
    if node_id is None:
        raise missing
    try:
        me = identity.load(config.data_dir, node_id)
    except FileNotFoundError:
        raise missing from None
    return ExchangeService(node.tickets, me, identity.own_keys(config.data_dir))


def alert_policy(config: Config) -> AlertPolicy:
    """When a partner's outage is an alert, and where its ticket goes, by the config."""
    settings = config.exchange
    return AlertPolicy(
        after=timedelta(minutes=settings.alert_after_minutes),
        category=settings.alert_category,
        store=settings.alert_store,
    )


def schema_problem(db: Database) -> str | None:
    """Why the database cannot be served as it is, or None."""
    current, head = migrate.current(db.engine), migrate.head()
    if current is None:
        return "the database has no schema: run `hdx init`"
    if current != head:
        return f"the database schema is at {current}, this hdx needs {head}: run `hdx migrate`"
    return None


@dataclass(frozen=True, slots=True)
class Listening:
    """Where a serving node listens: the HelpDesk API's port and the Exchange's."""

    api_port: int
    exchange_port: int


async def serve(
    node: Node,
    exchange: ExchangeService,
    config: Config,
    *,
    api_listen: str,
    exchange_listen: str,
    on_ready: Callable[[Listening], None],
) -> None:
    """Serves the API and the Exchange, delivers to partners and runs the node's timers
    until SIGINT or SIGTERM.

    Raises:
        InvalidArgument: it cannot listen where told; the alert settings name a category
            or store the catalogue lacks.
    """
    alerts = OutageAlerts(exchange, alert_policy(config))
    await asyncio.to_thread(alerts.validate)
    recomputed = await asyncio.to_thread(node.tickets.adopt_sla_config, node.sla_fingerprint)
    if recomputed is not None:
        log.info("SLA configuration changed: recomputed %d open tickets", recomputed)
    server, port = await start_server(
        node.tickets, node.admin, api_listen, workers=config.workers, hand_off=exchange.hand_off
    )
    try:
        partners, exchange_port = await start_exchange_server(
            exchange, exchange_listen, tls=config.exchange.tls, workers=config.workers
        )
    except InvalidArgument:
        await server.stop(0)
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    on_ready(Listening(port, exchange_port))
    tickets = node.tickets
    bell = Bell(loop)
    tickets.on_alarm = bell.ring
    tasks = [
        asyncio.create_task(
            timer_loop(
                "auto-close", tickets.close_confirmed, tickets.next_auto_close, tickets.clock
            )
        ),
        asyncio.create_task(
            timer_loop("sla", tickets.fire_alarms, tickets.next_alarm, tickets.clock, bell)
        ),
        asyncio.create_task(Courier(exchange, channel_to, alerts).run(), name="delivery"),
        asyncio.create_task(keys.follow_rotations(exchange, config.data_dir), name="keys"),
    ]
    for task in tasks:
        task.add_done_callback(_report_crash)
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.gather(server.stop(grace=5), partners.stop(grace=5))
    node.db.dispose()


def _report_crash(task: "asyncio.Task[None]") -> None:
    """Logs a background task that stopped on an error (the node serves on without it)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped", task.get_name(), exc_info=task.exception())


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
