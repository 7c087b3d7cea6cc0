"""docker-compose.yml: the demo's three nodes on PostgreSQL, paired at their first start
through a volume of invites they share.

There is no Docker engine on these machines, so the deployment is tested as far as hdx
itself goes. The compose file is read and checked against hdx: every variable a node
gets is a setting hdx has (and parses as the node would) or one the entrypoint reads;
endpoints, ports, databases and volumes fit together; the partners are mutual. Then
`scripts/docker-entrypoint` runs for each node as its container would, with the
environment compose gives it, except what only a container has (its data directory
and the shared invites in tmp, a database on the test PostgreSQL, loopback ports): the
three pair by themselves, hand a ticket down the chain, and a restarted node neither
initialises nor pairs again.
"""

import itertools
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from cli.config import DEFAULTS, parse, render
from node.api.client import HelpDeskClient
from node.domain.partner import LinkState, PartnerRole, Side
from node.domain.ticket import TicketDraft
from tests.conftest import BACKENDS
from tests.exchange_nodes import wait_for
from tests.node_processes import environment, ok, run
from tests.postgres import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
ENTRYPOINT = ROOT / "scripts" / "docker-entrypoint"
SETTINGS = {f"HDX_{section}_{key}".upper() for section, keys in DEFAULTS.items() for key in keys}
"""The variables that override a setting of hdx.toml."""
HOST_ONLY = {
    "HDX_DATA_DIR",
    "HDX_DATABASE_URL",
    "HDX_API_LISTEN",
    "HDX_EXCHANGE_LISTEN",
    "HDX_EXCHANGE_ENDPOINT",
    "INVITES",
}
"""What the entrypoint test sets differently from compose: what only a container has."""
_databases = itertools.count()
START_S = 150.0
"""How long a node may take to start on a loaded machine: init, migrate, pairing."""


def node_services() -> dict[str, dict[str, Any]]:
    """The services built from our Dockerfile: the nodes."""
    return {name: service for name, service in SERVICES.items() if "build" in service}


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    return {name: str(value) for name, value in service["environment"].items()}


def partners_of(env: dict[str, str]) -> dict[str, str]:
    """PARTNERS as {partner node name: its role for us}."""
    return dict(entry.split(":", 1) for entry in env.get("PARTNERS", "").split())


def entrypoint_reads() -> set[str]:
    return set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", ENTRYPOINT.read_text("utf-8")))


def port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def test_the_nodes_are_the_demo_chain_with_mutual_partners() -> None:
    declared = {name: partners_of(environment_of(s)) for name, s in node_services().items()}

    assert declared == {
        "retail": {"contractor": "contractor"},
        "contractor": {"retail": "client", "service": "contractor"},
        "service": {"contractor": "client"},
    }
    for name, partners in declared.items():
        for partner, role in partners.items():
            theirs = declared[partner][name]
            assert {PartnerRole(role), PartnerRole(theirs)} == set(PartnerRole), (name, partner)


@pytest.mark.parametrize("name", sorted(node_services()))
def test_a_node_gets_only_settings_hdx_has_and_variables_its_entrypoint_reads(
    name: str,
) -> None:
    env = environment_of(SERVICES[name])

    unknown = sorted(v for v in env if v not in SETTINGS and v not in entrypoint_reads())
    config = parse(
        render(env["HDX_NODE_NAME"], env["HDX_NODE_KEY_PREFIX"], env["HDX_DATABASE_URL"], ""),
        Path("/data"),
        env,
    )

    assert unknown == []
    assert config.node_name == name, "partners name each other by service and node name"
    assert config.key_prefix == env["HDX_NODE_KEY_PREFIX"]
    assert config.exchange.tls, "the nodes talk over TLS"
    assert config.exchange.listen.startswith("0.0.0.0:"), "reachable from the other containers"
    assert config.exchange.endpoint == f"{name}:{port(config.exchange.listen)}"
    assert config.listen.startswith("0.0.0.0:")
    [published] = SERVICES[name]["ports"]
    assert published.startswith("127.0.0.1:") and port(published) == port(config.listen)


@pytest.mark.parametrize("name", sorted(node_services()))
def test_a_node_has_its_own_database_and_data_volume_and_shares_the_invites(
    name: str,
) -> None:
    env = environment_of(SERVICES[name])
    postgres = SERVICES["postgres"]
    pg_env = environment_of(postgres)
    init = ROOT / "scripts" / "postgres-init.sql"
    created = {pg_env["POSTGRES_DB"], *re.findall(r"CREATE DATABASE (\w+)", init.read_text())}
    url = make_url(env["HDX_DATABASE_URL"])

    assert (url.drivername, url.host, url.database) == ("postgresql+psycopg", "postgres", name)
    assert (url.username, url.password) == (pg_env["POSTGRES_USER"], pg_env["POSTGRES_PASSWORD"])
    assert name in created
    assert (
        f"./{init.relative_to(ROOT)}:/docker-entrypoint-initdb.d/hdx-nodes.sql:ro"
        in (postgres["volumes"])
    )
    assert SERVICES[name]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    mounts = dict(volume.split(":")[::-1] for volume in SERVICES[name]["volumes"])
    assert mounts == {"/data": name, env["INVITES"]: "invites"}
    assert set(mounts.values()) <= set(COMPOSE["volumes"])
    owned = re.search(r"chown hdx ([^\n]+)", (ROOT / "Dockerfile").read_text("utf-8"))
    assert owned and set(mounts) <= set(owned.group(1).split()), "the node's user writes there"


def test_postgres_is_healthy_once_it_serves_the_first_database() -> None:
    postgres = SERVICES["postgres"]
    pg_env = environment_of(postgres)
    assert postgres["healthcheck"]["test"] == [
        "CMD",
        "pg_isready",
        "-U",
        pg_env["POSTGRES_USER"],
        "-d",
        pg_env["POSTGRES_DB"],
    ]


# -- the entrypoint, run ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Container:
    """`scripts/docker-entrypoint` of one node, run as its container would run it.

    Args:
        env: the node's environment in the compose file, with HOST_ONLY replaced.
    """

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name, self.env, self.log_path = name, env, log
        self.lines: list[str] = []
        self.start()

    def start(self) -> None:
        """Runs the entrypoint, as a container (re)start does."""
        self.lines.clear()
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [str(ENTRYPOINT)],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=self.env,
            )
        self.printed: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        """Collects what the entrypoint prints; None once it stopped printing."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            self.printed.put(line)
        self.printed.put(None)

    def serving(self) -> str:
        """Waits until the node serves; returns where its API listens."""
        api = ""
        while True:
            try:
                line = self.printed.get(timeout=START_S)
            except queue.Empty:
                line = None
            if line is None:
                printed = "\n".join(self.lines)
                pytest.fail(f"{self.name} did not serve: {printed}\n{self.log_path.read_text()}")
            found = re.fullmatch(rf"hdx node '{self.name}' (exchange )?serving on (\S+)\n", line)
            if found and not found.group(1):
                api = found.group(2)
            elif found:
                return api

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        if self.process.stdout:
            self.process.stdout.close()

    def token(self) -> str:
        """The administrator's token `hdx init` printed at the first start."""
        [token] = [line.split("=", 1)[1] for line in self.lines if "HDX_TOKEN=" in line]
        return token


def entrypoint_env(tmp_path: Path, **env: str) -> dict[str, str]:
    """The environment of an entrypoint run with a data directory in tmp_path and hdx on
    the PATH, as in the image."""
    bin_dir = Path(sys.executable).parent
    return environment(
        {"HDX_DATA_DIR": str(tmp_path / "node"), "PATH": f"{bin_dir}:{os.environ['PATH']}", **env}
    )


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"PARTNERS": "retail"}, "PARTNERS: 'retail' is not NAME:contractor or NAME:client"),
        (
            {"PARTNERS": "retail:boss", "INVITES": "/invites"},
            "PARTNERS: 'retail:boss' is not NAME:contractor or NAME:client",
        ),
        ({"PARTNERS": ":client", "INVITES": "/invites"}, "PARTNERS: ':client' is not NAME:"),
        ({"PARTNERS": "retail:client"}, "INVITES: must name the directory of invites"),
    ],
    ids=["no role", "unknown role", "no name", "no invites"],
)
def test_the_entrypoint_refuses_partners_it_cannot_pair_before_it_initialises(
    tmp_path: Path, env: dict[str, str], says: str
) -> None:
    result = subprocess.run(
        [str(ENTRYPOINT)],
        env=entrypoint_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode != 0
    assert says in result.stderr
    assert not (tmp_path / "node").exists(), "no node was made"


def test_the_entrypoint_gives_up_on_a_partner_whose_invite_never_comes(tmp_path: Path) -> None:
    invites = tmp_path / "invites"
    invites.mkdir()
    env = entrypoint_env(
        tmp_path, HDX_NODE_NAME="retail", INVITES=str(invites), PARTNERS="ghost:contractor"
    )

    result = subprocess.run(
        [str(ENTRYPOINT)],
        env={**env, "PAIR_TIMEOUT_S": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"hdx-entrypoint: no invite of partner ghost in {invites} after 1 s"
    )
    assert "hdx node" not in result.stdout, "it does not serve unpaired"
    assert json.loads((invites / "retail.invite").read_text())["name"] == "retail", (
        "its own invite is there for the partner that comes later"
    )


@pytest.fixture
def containers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Container]]:
    """The three nodes' entrypoints started at once, each with a database on the test
    PostgreSQL; stopped at the end."""
    if "postgres" not in BACKENDS:
        pytest.skip("the compose deployment runs on PostgreSQL")
    server: PostgresServer = request.getfixturevalue("postgres")
    invites = tmp_path / "invites"
    invites.mkdir()
    started: dict[str, Container] = {}
    try:
        for name, service in node_services().items():
            exchange = f"127.0.0.1:{free_port()}"
            host_only = {
                "HDX_DATA_DIR": str(tmp_path / name),
                "HDX_DATABASE_URL": server.create_database(f"compose_{name}_{next(_databases)}"),
                "HDX_API_LISTEN": "127.0.0.1:0",
                "HDX_EXCHANGE_LISTEN": exchange,
                "HDX_EXCHANGE_ENDPOINT": exchange,
                "INVITES": str(invites),
            }
            assert set(host_only) == HOST_ONLY
            env = entrypoint_env(tmp_path, **{**environment_of(service), **host_only})
            started[name] = Container(name, env, tmp_path / f"{name}.log")
        yield started
    finally:
        for container in started.values():
            container.stop()


def node_id(invites: Path, name: str) -> str:
    """The node id in the invite name's entrypoint wrote."""
    return str(json.loads((invites / f"{name}.invite").read_text("utf-8"))["node_id"])


def accepted(client: HelpDeskClient, key: str) -> str:
    """The partner's key of the ticket key was handed on as, once the partner accepted."""
    links = [link for link in client.get(key).ticket.links if link.side is Side.ORIGIN]
    if links and links[-1].state is LinkState.ACCEPTED:
        return links[-1].remote_ticket
    return ""


def idle(container: Container) -> bool:
    """Whether nothing of the node's waits for a partner's receipt (`hdx partner list`),
    so that stopping it now leaves no delivery half done."""
    listed = ok(run("--data-dir", container.env["HDX_DATA_DIR"], "partner", "list"))
    return all(int(line.split()[5]) == 0 for line in listed.splitlines()[1:])


@pytest.mark.timeout(400)
def test_the_entrypoint_pairs_the_nodes_which_hand_a_ticket_down_the_chain(
    containers: dict[str, Container], tmp_path: Path
) -> None:
    targets = {name: container.serving() for name, container in containers.items()}
    invites = Path(containers["retail"].env["INVITES"])
    ids = {name: node_id(invites, name) for name in containers}
    admin = {
        name: HelpDeskClient(targets[name], container.token())
        for name, container in containers.items()
    }
    for name, partners in (("retail", ["contractor"]), ("contractor", ["retail", "service"])):
        listed = ok(run("--data-dir", containers[name].env["HDX_DATA_DIR"], "partner", "list"))
        assert sorted(line.split()[0] for line in listed.splitlines()[1:]) == sorted(
            ids[p] for p in partners
        )
    stores = tmp_path / "stores.toml"
    stores.write_text('[[stores]]\ncode = "msk-001"\nname = "Bakery"\ntimezone = "Europe/Moscow"\n')
    ok(run("--data-dir", containers["retail"].env["HDX_DATA_DIR"], "catalog", "load", str(stores)))

    filed = admin["retail"].create(TicketDraft("pos-down", "POS does not work", store="msk-001"))
    retail_key = filed.ticket.key
    admin["retail"].transition(retail_key, "start")
    admin["retail"].hand_off(retail_key, ids["contractor"])
    con_key = wait_for(
        "the contractor's accept", lambda: accepted(admin["retail"], retail_key), timeout=60
    )
    admin["contractor"].transition(con_key, "start")
    admin["contractor"].hand_off(con_key, ids["service"])
    svc_key = wait_for(
        "the service centre's accept", lambda: accepted(admin["contractor"], con_key), timeout=60
    )

    contractor = containers["contractor"]
    wait_for("the contractor to have sent everything", lambda: idle(contractor), timeout=60)
    contractor.stop()
    contractor.start()
    contractor.serving()
    assert re.fullmatch(r"schema (\S+) -> \1", contractor.lines[0]), "migrated, not made anew"
    assert not any(line.startswith("added ") for line in contractor.lines), "nobody added twice"
    admin["service"].comment(svc_key, "PSU on its way")

    wait_for(
        "the comment at the retail network, through the restarted contractor",
        lambda: any(c.body == "PSU on its way" for c in admin["retail"].comments(retail_key)),
        timeout=60,
    )
    for client in admin.values():
        client.close()
