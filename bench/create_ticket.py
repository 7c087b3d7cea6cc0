"""Tickets filed per second through the gRPC API of a real node, on SQLite and PostgreSQL.

    create_ticket_seq_{sqlite,postgres}     one client
    create_ticket_conc16_{sqlite,postgres}  16 clients at once, each its own thread and channel

The node is a real `hdx serve` process on a loopback port, its data directory in
a temporary directory, set up with the CLI as an operator would: `hdx init`
(with `--database-url` for PostgreSQL), a store, a requester and the requester's
API token. Each client files `pos-down` tickets as that requester with raw
`CreateTicket` calls, each with its own request id so none is answered from the
idempotency record.

The bare limit is `bench.bare_server`: the same gRPC round trip (same request
bytes and metadata, same client harness and concurrency) to a `grpc.aio` server
with the node's executor model, whose handler does one INSERT of a small row and
a COMMIT on the same kind of database: a SQLite file in WAL mode with
synchronous=FULL in the same temporary directory, or a second database of the
same PostgreSQL server (fsync on). Filing a ticket needs at least that: one call
over the network and one durable commit. Everything else the node does
(authentication, validation, catalogue reads, the ticket and history rows,
encoding the answer) is what the ratio prices; the goal is ratio >= 0.5.
"""

import itertools
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from hdx.helpdesk.v1 import helpdesk_pb2 as pb
from hdx.helpdesk.v1 import helpdesk_pb2_grpc

from bench import bare_server
from bench.load import CALL_TIMEOUT_S, Call, ClientPool, compare
from bench.processes import ServerProcess, checked, hdx
from bench.report import Goal, Result, Suite
from cli.config import SQLITE_WORKERS
from node.api.client import HelpDeskClient
from node.domain.ticket import TicketDraft
from tests.postgres import PostgresServer

GOAL = Goal(ratio_min=0.5)
UNIT = "tickets/s"
WARMUP_S = 1.5
WINDOW_S = 3.0
ROUNDS = 2
"""Measuring windows per side; with ABBA order, 2 rounds give each side 2 windows."""
WORKERS = {"sqlite": SQLITE_WORKERS, "postgres": 16}
"""The node's default api.workers per backend; the bare server gets as many threads."""
MODES = {"seq": 1, "conc16": 16}
BACKENDS = ("sqlite", "postgres")
PREFIX = "RET"
STORE = "bench-001"
REQUESTER = "bench-requester"
CATEGORY = "pos-down"
STORES_TOML = f"""\
[[stores]]
code = "{STORE}"
name = "Benchmark store"
region = "Bench"
timezone = "UTC"
tier = "standard"
"""


def name(mode: str, backend: str) -> str:
    return f"create_ticket_{mode}_{backend}"


@dataclass(frozen=True, slots=True)
class Servers:
    """A node, its bare server, and the API token of the node's requester."""

    node: ServerProcess
    bare: ServerProcess
    token: str


def _request(nonce: str, client: int, n: int) -> pb.CreateTicketRequest:
    return pb.CreateTicketRequest(
        request_id=f"{nonce}-{client}-{n}",
        category=CATEGORY,
        title="Till 3 shows a blank screen",
        description="Rebooted twice, still blank. Queue at the other till.",
        store=STORE,
    )


def _node_caller(token: str) -> Callable[[grpc.Channel, int], Call]:
    metadata = (("authorization", f"Bearer {token}"),)
    nonce = uuid.uuid4().hex[:12]

    def caller(channel: grpc.Channel, client: int) -> Call:
        create = helpdesk_pb2_grpc.HelpDeskStub(channel).CreateTicket
        counter = itertools.count()

        def call() -> None:
            request = _request(nonce, client, next(counter))
            create(request, metadata=metadata, timeout=CALL_TIMEOUT_S)

        return call

    return caller


def _bare_caller(token: str) -> Callable[[grpc.Channel, int], Call]:
    metadata = (("authorization", f"Bearer {token}"),)
    nonce = uuid.uuid4().hex[:12]

    def caller(channel: grpc.Channel, client: int) -> Call:
        commit = channel.unary_unary(bare_server.FULL_METHOD, None, None)
        counter = itertools.count()

        def call() -> None:
            request = _request(nonce, client, next(counter)).SerializeToString()
            commit(request, metadata=metadata, timeout=CALL_TIMEOUT_S)

        return call

    return caller


def _start_node(stack: ExitStack, work: Path, database_url: str) -> tuple[ServerProcess, str]:
    """Sets up a node with the CLI and serves it; returns it and the requester's token."""
    data_dir = work / "node"
    init = ["init", "--name", "bench", "--prefix", PREFIX]
    if database_url:
        init += ["--database-url", database_url]
    hdx(data_dir, *init)
    stores = work / "stores.toml"
    stores.write_text(STORES_TOML, encoding="utf-8")
    hdx(data_dir, "catalog", "load", str(stores))
    hdx(data_dir, "user", "add", REQUESTER, "--role", "requester", "--store", STORE)
    token = hdx(data_dir, "token", "create", REQUESTER).strip().splitlines()[-1]
    serve = ["--data-dir", str(data_dir), "serve", "--listen", "127.0.0.1:0"]
    serve += ["--exchange-listen", "127.0.0.1:0"]
    node = stack.enter_context(ServerProcess("node", [sys.executable, "-m", "cli", *serve], work))
    with HelpDeskClient(node.target, token, attempts=1) as client:
        view = client.create(TicketDraft(category=CATEGORY, title="Smoke test", store=STORE))
    if not view.ticket.key.startswith(f"{PREFIX}-"):
        raise RuntimeError(f"the node filed an odd ticket: {view.ticket.key!r}")
    return node, token


def _start_bare(stack: ExitStack, work: Path, database: list[str], workers: int) -> ServerProcess:
    argv = [sys.executable, "-m", "bench.bare_server", *database, "--workers", str(workers)]
    return stack.enter_context(ServerProcess("bare", argv, work))


@contextmanager
def _sqlite() -> Iterator[Servers]:
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hdx-bench-")))
        node, token = _start_node(stack, work, "")
        (work / "bare").mkdir()
        bare_db = str(work / "bare" / "bare.db")
        bare = _start_bare(stack, work, ["--sqlite", bare_db], WORKERS["sqlite"])
        yield Servers(node, bare, token)


@contextmanager
def _postgres() -> Iterator[Servers]:
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hdx-bench-")))
        postgres = PostgresServer(durable=True)
        stack.callback(_destroy, postgres)
        postgres.start()
        url = postgres.create_database("hdx_bench")
        postgres.create_database("bare_bench")
        node, token = _start_node(stack, work, url)
        conninfo = f"host={postgres.socket_dir} user=postgres dbname=bare_bench"
        bare = _start_bare(stack, work, ["--postgres", conninfo], WORKERS["postgres"])
        yield Servers(node, bare, token)


def _destroy(postgres: PostgresServer) -> None:
    """Stops the server and removes its directory; only removes it when it never started."""
    if (postgres.data / "postmaster.pid").exists():
        postgres.destroy()
    else:
        shutil.rmtree(postgres.base, ignore_errors=True)


SETUPS = {"sqlite": _sqlite, "postgres": _postgres}


def _measure(servers: Servers, benchmark: str, clients: int) -> Result:
    with ExitStack() as stack:
        node = ClientPool(servers.node.target, clients, _node_caller(servers.token))
        stack.callback(node.close)
        bare = ClientPool(servers.bare.target, clients, _bare_caller(servers.token))
        stack.callback(bare.close)
        try:
            seen = compare(node, bare, warmup_s=WARMUP_S, window_s=WINDOW_S, rounds=ROUNDS)
        except Exception:
            checked({"node": servers.node, "bare server": servers.bare})
            raise
    windows = ", ".join(f"{r:.0f}" for r in seen.subject_windows)
    bare_windows = ", ".join(f"{r:.0f}" for r in seen.bare_windows)
    print(
        f"  {benchmark}: node {seen.subject.rate:.1f}/s ({windows}), "
        f"bare {seen.bare.rate:.1f}/s ({bare_windows})",
        flush=True,
    )
    return Result(benchmark, seen.subject.rate, UNIT, seen.bare.rate, GOAL)


def run(selected: Sequence[str]) -> Iterator[Result]:
    """Runs the selected create_ticket benchmarks, one node and bare server per backend."""
    for backend in BACKENDS:
        wanted = [(mode, n) for mode, n in MODES.items() if name(mode, backend) in selected]
        if not wanted:
            continue
        print(f"create_ticket on {backend}: starting a node and a bare server", flush=True)
        with SETUPS[backend]() as servers:
            for mode, clients in wanted:
                yield _measure(servers, name(mode, backend), clients)


SUITE = Suite(names=tuple(name(mode, backend) for backend in BACKENDS for mode in MODES), run=run)
