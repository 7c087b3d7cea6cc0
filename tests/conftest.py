"""Fixtures: the same tests on SQLite and on a throwaway PostgreSQL, a fake clock,
a seeded help desk, and a real gRPC server on a loopback port.

`HDX_TEST_DB=sqlite` (or `postgres`) runs the storage-backed tests on one backend only.
"""

import asyncio
import itertools
import os
import shutil
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import grpc
import pytest

from node.api.client import HelpDeskClient
from node.api.server import start_server
from node.api.servicer import HandOff
from node.domain.roles import Actor, Role
from node.services.admin import AdminService
from node.services.tickets import TicketService
from node.store import migrate
from node.store.database import Database
from tests.postgres import PostgresServer

BACKENDS = [b for b in ("sqlite", "postgres") if os.environ.get("HDX_TEST_DB", b) == b]
PREFIX = "RET"
SERVE_ANY_PORT = ["serve", "--listen", "127.0.0.1:0", "--exchange-listen", "127.0.0.1:0"]
"""`hdx serve` on any free loopback ports, the API's and the exchange's."""
START = datetime(2026, 11, 23, 9, 12, tzinfo=UTC)

STORES = {
    "stores": [
        {
            "code": "msk-001",
            "name": "Bakery, Tverskaya 1",
            "region": "Moscow",
            "timezone": "Europe/Moscow",
            "tier": "flagship",
        },
        {
            "code": "vvo-002",
            "name": "Pharmacy, Svetlanskaya 2",
            "region": "Primorye",
            "timezone": "Asia/Vladivostok",
        },
    ]
}
USERS = [
    ("anna", Role.REQUESTER, "msk-001"),
    ("boris", Role.REQUESTER, "vvo-002"),
    ("ivan", Role.AGENT, None),
    ("olga", Role.AGENT, None),
    ("sergey", Role.SUPERVISOR, None),
    ("admin", Role.ADMIN, None),
    ("pos", Role.SYSTEM, None),
]


class FakeClock:
    """A clock that moves only when told."""

    def __init__(self, start: datetime = START) -> None:
        self.instant = start

    def now(self) -> datetime:
        return self.instant

    def advance(self, delta: timedelta) -> None:
        self.instant += delta


def _prepare(url: str) -> None:
    db = Database(url)
    migrate.upgrade(db.engine)
    db.initialise(PREFIX, "retail")
    db.dispose()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    _prepare(server.create_database("hdx_template"))
    yield server
    server.destroy()


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of the module's tests alone, since they stop and kill it."""
    if "postgres" not in BACKENDS:
        pytest.skip("PostgreSQL tests are switched off (HDX_TEST_DB)")
    server = PostgresServer(durable=True).start()  # a crash keeps what was committed
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "hdx.db"
    _prepare(f"sqlite:///{path}")
    return path


_databases = itertools.count()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, initialised, empty database of each backend."""
    if request.param == "sqlite":
        path = tmp_path / "hdx.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"test_{next(_databases)}", template="hdx_template")


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass
class Desk:
    """A seeded help desk: the default catalogue, two stores, one user of each role."""

    db: Database
    clock: FakeClock
    tickets: TicketService
    admin: AdminService

    def actor(self, login: str) -> Actor:
        user = self.admin.user(login)
        return Actor(user.login, user.role, user.store)


def default_catalog() -> dict[str, object]:
    text = resources.files("cli").joinpath("default_catalog.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def seed_desk(db: Database, clock: FakeClock) -> Desk:
    """Fills an initialised database with the default catalogue, STORES and USERS."""
    admin = AdminService(db, clock)
    admin.load_catalog(default_catalog())
    admin.load_catalog(STORES)
    for login, role, store in USERS:
        admin.add_user(login, login.title(), role, store)
    return Desk(db, clock, TicketService(db, clock), admin)


@pytest.fixture
def desk(db: Database, clock: FakeClock) -> Desk:
    return seed_desk(db, clock)


class ServerThread:
    """A real gRPC server of the desk's services on a loopback port, in its own thread;
    hand_off serves HandOffTicket when given."""

    def __init__(self, desk: Desk, hand_off: HandOff | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        started = asyncio.run_coroutine_threadsafe(
            start_server(desk.tickets, desk.admin, "127.0.0.1:0", workers=8, hand_off=hand_off),
            self.loop,
        )
        self.server, self.port = started.result(timeout=30)
        self.target = f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(0), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)


@dataclass
class Api:
    """A served desk and a client per user."""

    desk: Desk
    target: str
    clients: dict[str, HelpDeskClient]

    def __getitem__(self, login: str) -> HelpDeskClient:
        return self.clients[login]

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.target)


@pytest.fixture
def api(desk: Desk) -> Iterator[Api]:
    server = ServerThread(desk)
    clients = {
        login: HelpDeskClient(server.target, desk.admin.create_token(login), attempts=1)
        for login, _, _ in USERS
    }
    yield Api(desk, server.target, clients)
    for client in clients.values():
        client.close()
    server.stop()
