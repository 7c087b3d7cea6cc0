"""Nodes as real `hdx` processes on loopback ports.

A node is set up with the `hdx` CLI in a data directory of its own, paired with
another through `hdx partner invite|add`, and served by `hdx serve` in a subprocess
that a test may kill with SIGKILL and start again on the same data directory and the
same ports (its partners keep calling the endpoint they were given). Administration
commands run in this process (`run`: the program's code without paying for an
interpreter start each time); the servers are real processes, since what a test checks
is what a process leaves behind when it dies.
"""

import io
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Mapping
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli.main import main
from node.api.client import HelpDeskClient

HDX = str(Path(sys.executable).with_name("hdx"))
BANNER = re.compile(r"hdx node '[^']*' serving on 127\.0\.0\.1:(\d+)")
EXCHANGE_BANNER = re.compile(r"hdx node '[^']*' exchange serving on 127\.0\.0\.1:(\d+)")
NODE_ID = re.compile(r"node id ([a-z0-9-]+), fingerprint ((?:[0-9a-f]{4} ){7}[0-9a-f]{4})")
STORES_TOML = """\
[[stores]]
code = "msk-001"
name = "Bakery, Tverskaya 1"
region = "Moscow"
timezone = "Europe/Moscow"
tier = "flagship"

[[stores]]
code = "vvo-002"
name = "Pharmacy, Svetlanskaya 2"
region = "Primorye"
timezone = "Asia/Vladivostok"
"""
START_S = 30.0
"""How long `hdx serve` may take to print where it listens."""
Result = subprocess.CompletedProcess[str]


def environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The test's environment without any HDX_ setting of the person running it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HDX_")}
    return {**env, **extra}


def hdx(*args: str, data_dir: Path | None = None, env: Mapping[str, str] | None = None) -> Result:
    """Runs the `hdx` program."""
    prefix = ["--data-dir", str(data_dir)] if data_dir else []
    return subprocess.run(
        [HDX, *prefix, *args],
        capture_output=True,
        text=True,
        env=environment(env or {}),
        timeout=60,
        check=False,
    )


def run(*args: str) -> Result:
    """Runs `hdx` in this process, as the program would."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def ok(result: Result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


class Server:
    """`hdx serve` in a subprocess, with the two lines it prints first: where the API
    listens, and where the exchange does. Its stderr goes to log, appended to.

    Args:
        banner: what the first line must match (its group 1 is the API port).
        env: HDX_* settings of the server.
        api_port, exchange_port: where to listen; 0: any free port.
    """

    def __init__(
        self,
        data_dir: Path,
        log: Path,
        banner: re.Pattern[str] = BANNER,
        env: Mapping[str, str] | None = None,
        *,
        api_port: int = 0,
        exchange_port: int = 0,
    ) -> None:
        self.log_path = log
        self.log = log.open("a")
        self.process = subprocess.Popen(
            [
                HDX,
                "--data-dir",
                str(data_dir),
                "serve",
                "--listen",
                f"127.0.0.1:{api_port}",
                "--exchange-listen",
                f"127.0.0.1:{exchange_port}",
            ],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=environment(env or {}),
        )
        lines: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None
        stdout = self.process.stdout

        def read_two() -> None:
            for _ in range(2):
                lines.put(stdout.readline())

        threading.Thread(target=read_two, daemon=True).start()
        api = self._line(lines, banner, "first")
        self.banner, self.api_port = api.group(0), int(api.group(1))
        exchange = self._line(lines, EXCHANGE_BANNER, "second")
        self.exchange_banner, self.exchange_port = exchange.group(0), int(exchange.group(1))
        self.target = f"127.0.0.1:{self.api_port}"
        self.exchange_target = f"127.0.0.1:{self.exchange_port}"

    def _line(
        self, lines: "queue.Queue[str]", pattern: re.Pattern[str], which: str
    ) -> re.Match[str]:
        """The next line the server printed, which must match pattern."""
        try:
            line = lines.get(timeout=START_S).rstrip("\n")
        except queue.Empty:
            self.stop()
            pytest.fail(f"hdx serve printed no {which} line in {START_S} s: {self._log()}")
        match = pattern.fullmatch(line)
        if match is None:
            self.stop()
            pytest.fail(f"unexpected {which} line {line!r}: {self._log()}")
        return match

    def _log(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def stop(self) -> int:
        """Sends SIGTERM and returns the exit code (killing the server if it does not stop)."""
        try:
            if self.process.poll() is None:
                self.process.terminate()
            try:
                return self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
                raise
        finally:
            self._close()

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a pulled plug would."""
        try:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(timeout=15)
        finally:
            self._close()

    def _close(self) -> None:
        if self.process.stdout:
            self.process.stdout.close()
        self.log.close()


def node_id(init: Result) -> str:
    """The node id `hdx init` printed (asserting it succeeded)."""
    match = NODE_ID.search(ok(init))
    assert match, init.stdout
    return match.group(1)


def invite(data_dir: Path, endpoint: str, into: Path) -> str:
    """Writes the invite of data_dir's node to into; returns the fingerprint it printed."""
    result = run("--data-dir", str(data_dir), "partner", "invite", "--endpoint", endpoint)
    into.write_text(ok(result), encoding="utf-8")
    match = re.fullmatch(r"fingerprint: (.+)", result.stderr.splitlines()[-1])
    assert match, result.stderr
    return match.group(1)


def add(data_dir: Path, invite_file: Path, role: str, fingerprint: str, *options: str) -> Result:
    """`hdx partner add` on data_dir's node, run in this process."""
    return run(
        "--data-dir",
        str(data_dir),
        "partner",
        "add",
        str(invite_file),
        "--role",
        role,
        "--fingerprint",
        fingerprint,
        *options,
    )


@dataclass
class NodeProcess:
    """A node made by `hdx init`, with a requester anna (store msk-001) and engineers ivan
    and olga, served by `hdx serve` while `server` is set. The first start picks free
    ports; every later one listens on the same.

    Attributes:
        tokens: API token of each user, by login.
    """

    name: str
    data_dir: Path
    node_id: str
    tokens: dict[str, str]
    server: Server | None = None
    api_port: int = 0
    exchange_port: int = 0

    @property
    def log_path(self) -> Path:
        return self.data_dir / "serve.log"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.api_port}"

    @property
    def exchange_target(self) -> str:
        return f"127.0.0.1:{self.exchange_port}"

    def start(self) -> None:
        """Serves the node; returns once it listens."""
        assert self.server is None, f"{self.name} serves already"
        self.server = Server(
            self.data_dir,
            self.log_path,
            api_port=self.api_port,
            exchange_port=self.exchange_port,
        )
        self.api_port, self.exchange_port = self.server.api_port, self.server.exchange_port

    def kill(self) -> None:
        """Kills the serving process with SIGKILL."""
        assert self.server is not None, f"{self.name} does not serve"
        server, self.server = self.server, None
        server.kill()

    def stop(self) -> int:
        """Stops the serving process with SIGTERM; returns its exit code."""
        assert self.server is not None, f"{self.name} does not serve"
        server, self.server = self.server, None
        return server.stop()

    def client(self, login: str) -> HelpDeskClient:
        """A client of the node's API as login, trying each call once."""
        return HelpDeskClient(self.target, self.tokens[login], attempts=1)

    def admin(self, *args: str) -> Result:
        """An administration command on the node's data dir, run in this process."""
        return run("--data-dir", str(self.data_dir), *args)


def init_node(base: Path, name: str, prefix: str, database_url: str = "") -> NodeProcess:
    """A new node in base / name (on database_url; default: SQLite in its data dir),
    its catalogue, users and tokens made with the CLI; not serving yet."""
    data_dir = base / name
    database = ("--database-url", database_url) if database_url else ()
    init = run("--data-dir", str(data_dir), "init", "--name", name, "--prefix", prefix, *database)
    stores = base / f"{name}-stores.toml"
    stores.write_text(STORES_TOML, encoding="utf-8")
    made = NodeProcess(name, data_dir, node_id(init), {})
    ok(made.admin("catalog", "load", str(stores)))
    ok(made.admin("user", "add", "anna", "--role", "requester", "--store", "msk-001"))
    for engineer in ("ivan", "olga"):
        ok(made.admin("user", "add", engineer, "--role", "agent"))
    for login in ("anna", "ivan", "olga"):
        made.tokens[login] = ok(made.admin("token", "create", login)).strip()
    return made


def pair(client: NodeProcess, contractor: NodeProcess) -> None:
    """Registers each serving node with the other through `hdx partner invite|add`, at the
    exchange port it serves on, as their admins would after comparing fingerprints."""
    base = client.data_dir.parent
    theirs, ours = base / f"{contractor.name}.invite", base / f"{client.name}.invite"
    fingerprint = invite(contractor.data_dir, contractor.exchange_target, theirs)
    ok(add(client.data_dir, theirs, "contractor", fingerprint))
    fingerprint = invite(client.data_dir, client.exchange_target, ours)
    ok(add(contractor.data_dir, ours, "client", fingerprint))
