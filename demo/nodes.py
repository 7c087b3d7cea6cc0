"""The demo's nodes: each set up with `hdx` as its operator would, and served by `hdx serve`
in a process of its own, on SQLite in a data directory of its own.

Administration commands (`hdx init`, `catalog load`, `user add`, `token create`,
`partner invite`, `partner add`, `sla verify`) run `cli.main.main`, the function the
`hdx` program runs, in the demo's process: the same code and output without an
interpreter start per command (there are some twenty, each seconds long on a loaded
machine). Like the program on the node's host, they work on the node's database
directly. Each node then serves the API and the exchange in its own `hdx serve`
process on loopback ports the system picks; the demo reads which from the two lines
`hdx serve` prints first.
"""

import io
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

from cli import config as configuration
from cli.main import main as hdx_main
from node.store.database import Database

SERVE = ["serve", "--listen", "127.0.0.1:0", "--exchange-listen", "127.0.0.1:0"]
"""`hdx serve` on loopback ports the system picks."""
START_TIMEOUT_S = 45.0
STOP_TIMEOUT_S = 15.0
WAIT_S = 20.0
"""How long the demo waits for something the nodes do by themselves."""
POLL_S = 0.02
"""How often it looks again meanwhile."""
PORT = re.compile(r"hdx node '[^']*' (exchange )?serving on (\S+)")
IDENTITY = re.compile(r"node id (\S+), fingerprint ([0-9a-f ]+)")
ADMIN_TOKEN = re.compile(r"export HDX_TOKEN=(\S+)")


class DemoFailed(Exception):
    """A node could not be set up or served, or did what the rules forbid, or not in time."""


@dataclass(frozen=True, slots=True)
class Person:
    """Someone of a node: login, role (`hdx user add --role`), name, and a requester's store."""

    login: str
    role: str
    name: str
    store: str = ""


@dataclass
class Node:
    """One organisation's node.

    Attributes:
        prefix: its ticket key prefix, which also names it in the timeline (RET, CON, SVC).
        node_id, fingerprint: as `hdx init` printed them; the fingerprint is what its
            admin reads to a partner's admin.
        tokens: an API token per login, the administrator's ("admin") included.
        api, exchange: where it serves (host:port), once it does.
    """

    prefix: str
    name: str
    data_dir: Path
    node_id: str
    fingerprint: str
    tokens: dict[str, str]
    api: str = ""
    exchange: str = ""
    process: "subprocess.Popen[str] | None" = field(default=None, repr=False)

    def hdx(self, *args: str) -> str:
        """Runs an administration command on this node; returns what it printed."""
        return hdx(self.data_dir, *args)

    def database(self) -> Database:
        """The node's database, opened for reading its signed logs."""
        return Database(configuration.load(self.data_dir).database_url)


def run_hdx(data_dir: Path, *args: str) -> tuple[int, str, str]:
    """Runs `hdx --data-dir data_dir args` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = hdx_main(["--data-dir", str(data_dir), *args])
    return status, out.getvalue(), err.getvalue()


def hdx(data_dir: Path, *args: str) -> str:
    """Runs an `hdx` command that must succeed; returns its standard output.

    Raises:
        DemoFailed: it failed, with the command and its error line.
    """
    status, out, err = run_hdx(data_dir, *args)
    if status != 0:
        raise DemoFailed(f"hdx {' '.join(args)}: {err.strip()}")
    return out


def create(
    base: Path,
    prefix: str,
    name: str,
    people: Sequence[Person],
    *,
    catalog: str = "",
    settings: str = "",
) -> Node:
    """A new node in base/prefix: `hdx init`, its operator's settings added to its hdx.toml
    (TOML tables), `hdx catalog load` of catalog (TOML), and a user with an API token for
    each person."""
    data_dir = base / prefix.lower()
    printed = hdx(data_dir, "init", "--name", name, "--prefix", prefix)
    identity, admin = IDENTITY.search(printed), ADMIN_TOKEN.search(printed)
    if identity is None or admin is None:
        raise DemoFailed(f"hdx init printed no node id or token: {printed!r}")
    if settings:
        with (data_dir / configuration.CONFIG_FILE).open("a", encoding="utf-8") as config:
            config.write(settings)
    if catalog:
        (data_dir / "catalog.toml").write_text(catalog, encoding="utf-8")
        hdx(data_dir, "catalog", "load", str(data_dir / "catalog.toml"))
    tokens = {"admin": admin.group(1)}
    for person in people:
        store = ("--store", person.store) if person.store else ()
        hdx(
            data_dir,
            "user",
            "add",
            person.login,
            "--role",
            person.role,
            "--name",
            person.name,
            *store,
        )
        tokens[person.login] = hdx(data_dir, "token", "create", person.login).strip()
    return Node(prefix, name, data_dir, identity.group(1), identity.group(2), tokens)


@contextmanager
def serving(nodes: Sequence[Node]) -> Iterator[None]:
    """Serves every node while in the context: `hdx serve` for all at once, each said
    where it serves; stopped as SIGTERM does on the way out (killed if it does not stop).

    Raises:
        DemoFailed: a node did not start in time (its log is quoted).
    """
    try:
        _start(nodes)
        yield
    finally:
        _stop(nodes)


def _start(nodes: Sequence[Node]) -> None:
    lines: dict[str, queue.Queue[str]] = {}
    for node in nodes:
        log = (node.data_dir / "serve.log").open("w")
        node.process = subprocess.Popen(
            [sys.executable, "-m", "cli", "--data-dir", str(node.data_dir), *SERVE],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        log.close()
        lines[node.prefix] = queue.Queue()
        threading.Thread(
            target=_read_two, args=(node.process, lines[node.prefix]), daemon=True
        ).start()
    for node in nodes:
        node.api, node.exchange = (_where(node, lines[node.prefix]) for _ in range(2))


def _read_two(process: "subprocess.Popen[str]", into: "queue.Queue[str]") -> None:
    assert process.stdout is not None
    for _ in range(2):
        into.put(process.stdout.readline())


def _where(node: Node, lines: "queue.Queue[str]") -> str:
    """The host:port of the next line `hdx serve` printed for node."""
    try:
        line = lines.get(timeout=START_TIMEOUT_S)
    except queue.Empty:
        line = ""
    match = PORT.fullmatch(line.strip())
    if match is None:
        log = (node.data_dir / "serve.log").read_text(encoding="utf-8")
        raise DemoFailed(f"{node.prefix} did not start ({line.strip()!r}): {log[-2000:]}")
    return match.group(2)


def pair(client: Node, contractor: Node, *terms: str) -> None:
    """Makes contractor the client's contractor and client its client, as their admins do:
    each sends its invite, and each adds the other's with the fingerprint the other's admin
    read out (here: what the other's `hdx init` printed), the client with terms
    (`hdx partner add` options)."""
    for node, partner, role, options in (
        (client, contractor, "contractor", terms),
        (contractor, client, "client", ()),
    ):
        invite = node.data_dir / f"{partner.prefix.lower()}.invite"
        invite.write_text(
            partner.hdx("partner", "invite", "--endpoint", partner.exchange), encoding="utf-8"
        )
        node.hdx(
            "partner",
            "add",
            str(invite),
            "--role",
            role,
            "--fingerprint",
            partner.fingerprint,
            *options,
        )


def _stop(nodes: Sequence[Node]) -> None:
    serving = [node.process for node in nodes if node.process is not None]
    for process in serving:
        process.terminate()
    for process in serving:
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)
        if process.stdout is not None:
            process.stdout.close()
