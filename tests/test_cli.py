"""The `hdx` command as an operator and a user run it, on a tmp data dir.

Real `hdx` subprocesses set a node up and serve it for the module (every server started
here is terminated in a `finally`); they also show that init, serve, migrate, the
HDX_* variables and the exit codes work in the program itself. The rest runs
`cli.main.main` in this process against that served node: the same code, without paying
for an interpreter start on every command.
"""

import json
import re
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hdx.exchange.v1 import exchange_pb2 as pb
from sqlalchemy import text

from cli.config import load
from cli.wiring import open_node
from tests.conftest import SERVE_ANY_PORT
from tests.exchange_nodes import wait_for
from tests.node_processes import (
    EXCHANGE_BANNER,
    NODE_ID,
    STORES_TOML,
    Result,
    Server,
    add,
    hdx,
    invite,
    node_id,
    ok,
    run,
)

NAME = "corner-shops"
BANNER = re.compile(rf"hdx node '{NAME}' serving on 127\.0\.0\.1:(\d+)")
TOKEN = re.compile(r"hdx_[A-Za-z0-9_-]{40,}")


def one_error_line(result: Result) -> str:
    """The single error line a refused command prints; asserts it exits 1 and says no more."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hdx: error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


@dataclass
class Node:
    data_dir: Path
    init: Result
    setup: dict[str, str]
    """stdout of each setup command."""
    tokens: dict[str, str]
    server: Server

    def as_user(self, login: str, *args: str) -> Result:
        """A ticket command of login against the served node, by the `hdx` program."""
        env = {"HDX_TOKEN": self.tokens[login], "HDX_SERVER": self.server.target}
        return hdx("ticket", *args, env=env)

    def quick(self, login: str, *args: str) -> Result:
        """The same, run in this process."""
        target = ["--server", self.server.target, "--token", self.tokens[login]]
        return run("--data-dir", str(self.data_dir), "ticket", *args, *target)

    def admin(self, *args: str) -> Result:
        """An administration command on the node's data dir, run in this process."""
        return run("--data-dir", str(self.data_dir), *args)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    base = tmp_path_factory.mktemp("cli")
    data_dir = base / "node"
    init = hdx("init", "--name", NAME, "--prefix", "SHP", env={"HDX_DATA_DIR": str(data_dir)})
    admin = TOKEN.search(ok(init))
    assert admin is not None, init.stdout
    stores = base / "stores.toml"
    stores.write_text(STORES_TOML, encoding="utf-8")
    anna = ("anna", "--role", "requester", "--store", "msk-001", "--name", "Anna Petrova")
    setup = {
        "catalog load": ok(hdx("catalog", "load", str(stores), data_dir=data_dir)),
        "user add anna": ok(hdx("user", "add", *anna, data_dir=data_dir)),
        "token create anna": ok(hdx("token", "create", "anna", data_dir=data_dir)),
        "user add ivan": ok(
            run("--data-dir", str(data_dir), "user", "add", "ivan", "--role=agent")
        ),
    }
    tokens = {
        "admin": admin.group(0),
        "anna": setup["token create anna"].strip(),
        "ivan": ok(run("--data-dir", str(data_dir), "token", "create", "ivan")).strip(),
    }
    server = Server(data_dir, base / "serve.log", BANNER)
    try:
        yield Node(data_dir, init, setup, tokens, server)
    finally:
        server.stop()


# -- setting a node up ---------------------------------------------------------------------


def test_init_creates_the_config_and_prints_an_admin_token(node: Node) -> None:
    lines = node.init.stdout.splitlines()
    assert lines[0].startswith(f"initialised node '{NAME}' in {node.data_dir}")
    assert lines[-1] == f"export HDX_TOKEN={node.tokens['admin']}"
    assert node.init.stderr == ""
    config = (node.data_dir / "hdx.toml").read_text(encoding="utf-8")
    assert f'name = "{NAME}"' in config
    assert 'key_prefix = "SHP"' in config


def test_init_twice_is_refused_and_changes_nothing(node: Node) -> None:
    config = (node.data_dir / "hdx.toml").read_bytes()

    line = one_error_line(hdx("init", "--name", "other", "--prefix", "OTH", data_dir=node.data_dir))

    assert "holds a node already" in line
    assert (node.data_dir / "hdx.toml").read_bytes() == config
    ok(node.quick("admin", "list", "--all"))  # the first admin token still works


def test_serve_on_an_uninitialised_dir_fails_with_one_clear_line(tmp_path: Path) -> None:
    empty = tmp_path / "nothing-here"

    line = one_error_line(hdx("serve", "--listen", "127.0.0.1:0", data_dir=empty))

    assert str(empty) in line
    assert "hdx init" in line
    assert not empty.exists()


def test_serve_on_a_port_in_use_fails_with_a_clear_line(node: Node) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"

        result = hdx("serve", "--listen", listen, data_dir=node.data_dir)

    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    # gRPC's own log line may come first; hdx's says what is wrong, last
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"hdx: error: listen: cannot listen on {listen}")


@pytest.mark.parametrize(
    "command",
    [("serve", "--listen", "127.0.0.1:0"), ("migrate",), ("user", "list")],
    ids=["serve", "migrate", "user list"],
)
def test_a_database_that_cannot_be_reached_is_one_clear_line(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    monkeypatch.setenv("HDX_DATABASE_URL", f"postgresql+psycopg://hdx@/hdx?host={tmp_path}")

    line = one_error_line(node.admin(*command))

    assert line.startswith("hdx: error: database: ")
    assert str(tmp_path) in line  # where it looked


def test_init_against_a_database_that_cannot_be_reached_can_be_retried(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    url = f"postgresql+psycopg://hdx@/hdx?host={tmp_path}"

    line = one_error_line(run("--data-dir", str(data_dir), "init", "--database-url", url))

    assert line.startswith("hdx: error: database: ")
    assert not (data_dir / "hdx.toml").exists()  # so `hdx init` may run again


def test_serve_prints_where_it_listens(node: Node) -> None:
    assert BANNER.fullmatch(node.server.banner)
    assert not node.server.target.endswith(":0")


def test_administration_commands_say_what_they_did(node: Node) -> None:
    assert node.setup["catalog load"] == "loaded 0 groups, 0 categories, 2 stores\n"
    assert node.setup["user add anna"] == "added requester anna of store msk-001\n"
    assert node.setup["user add ivan"] == "added agent ivan\n"
    assert TOKEN.fullmatch(node.tokens["anna"])
    assert len(set(node.tokens.values())) == 3

    users = ok(node.admin("user", "list"))
    assert re.search(r"^anna\s+requester\s+msk-001\s+Anna Petrova$", users, re.M)
    catalog = ok(node.admin("catalog", "show"))
    assert re.search(r"^store\s+msk-001\s+Bakery, Tverskaya 1 \[Moscow", catalog, re.M)
    assert re.search(r"^category\s+pos-down\s+.*STOP-TRADE$", catalog, re.M)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("user", "add", "anna", "--role", "agent"), "login: 'anna' is taken"),
        (("user", "add", "kim", "--role", "requester"), "store: a requester belongs to a store"),
        (("user", "add", "kim", "--role", "requester", "--store", "zz-9"), "no such store"),
        (("token", "create", "nobody"), "user 'nobody' not found"),
        (("catalog", "load", "/nonexistent/stores.toml"), "/nonexistent/stores.toml"),
    ],
    ids=["taken login", "requester without store", "unknown store", "unknown user", "no file"],
)
def test_a_refused_administration_command_prints_one_line(
    node: Node, args: tuple[str, ...], says: str
) -> None:
    assert says in one_error_line(node.admin(*args))


def test_a_bad_catalogue_is_refused_with_the_entry_named(node: Node, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[stores]]\ncode = "x-1"\nname = "X"\ntimezone = "Mars/Olympus"\n')

    line = one_error_line(node.admin("catalog", "load", str(bad)))

    assert "stores[0].timezone" in line
    assert "x-1" not in ok(node.admin("catalog", "show"))


# -- using it ------------------------------------------------------------------------------


def test_a_ticket_goes_from_filing_to_work_through_the_cli(node: Node) -> None:
    created = ok(node.as_user("anna", "create", "--category", "pos-down", "--title", "Till 1 dead"))
    first = created.splitlines()[0]
    match = re.match(
        r"(SHP-\d+)\s+P1 STOP new\s+L1\s+\d\d-\d\d \d\d:\d\dZ\s+-\s+msk-001\s+Till 1 dead$", first
    )
    assert match, created
    assert re.search(r"first_response\s+cycle 1 due .*remaining\s+0h15m .* in time", created)
    assert re.search(r"resolution\s+cycle 1 due .*remaining\s+4h00m .* in time", created)
    key = match.group(1)
    assert "category pos-down, type incident, impact critical, urgency critical, group pos" in (
        created
    )
    assert "requester anna;" in created
    assert "you may: cancel" in created

    listed = ok(node.quick("ivan", "list")).splitlines()
    assert any(line.startswith(key) and line.endswith("Till 1 dead") for line in listed)

    started = ok(node.quick("ivan", "transition", key, "start"))
    assert re.match(
        rf"{key}\s+P1 STOP in_progress\s+L1\s+\S+ \S+\s+ivan\s+msk-001\s+Till 1 dead", started
    )
    assert re.search(r"first_response\s+cycle 1 due", started)
    assert "you may: wait_requester, wait_partner, resolve" in started

    public = ok(node.quick("ivan", "comment", key, "A new till is on its way"))
    assert re.fullmatch(rf"comment \d+ added to {key} \(public\)\n", public)
    internal = ok(node.quick("ivan", "comment", key, "RMA 5531 at the vendor", "--internal"))
    assert internal.endswith(f"added to {key} (internal)\n")

    shown = ok(node.quick("anna", "show", key))
    assert re.search(r"ivan:\n  A new till is on its way", shown)
    assert "RMA 5531" not in shown
    assert re.search(r"anna\s+created\s+status: - -> new", shown)
    assert re.search(r"ivan\s+transition\s+status: new -> in_progress", shown)
    engineer_view = ok(node.quick("ivan", "show", key))
    assert re.search(r"ivan \(internal\):\n  RMA 5531 at the vendor", engineer_view)

    # the store may not resolve: one line that says what it may do instead
    line = one_error_line(node.as_user("anna", "transition", key, "resolve"))
    assert line.startswith("hdx: error: FAILED_PRECONDITION: transition refused")
    assert "allowed for anna from 'in_progress': cancel" in line
    assert "in_progress" in ok(node.quick("anna", "show", key)).splitlines()[0]


def test_a_requester_lists_only_their_store(node: Node) -> None:
    ok(node.quick("ivan", "create", "--category=scales", "--title=Scales", "--store=vvo-002"))
    ok(node.quick("anna", "create", "--category=other", "--title=Door sticks"))
    mine = ok(node.quick("anna", "list")).splitlines()
    everyone = ok(node.quick("ivan", "list")).splitlines()
    assert mine and all(" msk-001 " in line for line in mine)
    assert any(" vvo-002 " in line for line in everyone)


def test_a_retried_create_with_a_request_id_files_once(node: Node) -> None:
    args = ("create", "--category", "other", "--title", "Fridge hums", "--request-id", "fr-1")
    first = ok(node.quick("anna", *args)).split()[0]
    again = ok(node.quick("anna", *args)).split()[0]
    assert first == again
    listed = ok(node.quick("anna", "list")).splitlines()
    assert sum(line.startswith(f"{first} ") for line in listed) == 1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("show", "SHP-99999"), "NOT_FOUND: ticket 'SHP-99999' not found"),
        (("show", "XYZ-1"), "INVALID_ARGUMENT: key: belongs to another node"),
        (("create", "--category", "nope", "--title", "x"), "INVALID_ARGUMENT: category"),
        (("create", "--category", "other", "--title", " "), "INVALID_ARGUMENT: title"),
        (("comment", "{key}", "psst", "--internal"), "PERMISSION_DENIED: visibility"),
        (("transition", "{key}", "cancel"), "INVALID_ARGUMENT: reason: must not be empty"),
        (("transition", "{key}", "fly"), "INVALID_ARGUMENT: transition: unknown transition"),
    ],
    ids=[
        "unknown ticket",
        "foreign key",
        "unknown category",
        "empty title",
        "internal comment",
        "cancel without reason",
        "unknown transition",
    ],
)
def test_a_refused_ticket_command_prints_one_line(
    node: Node, args: tuple[str, ...], says: str
) -> None:
    key = own_ticket(node)
    assert says in one_error_line(node.quick("anna", *(a.format(key=key) for a in args)))


def own_ticket(node: Node) -> str:
    """The key of an open ticket of anna's."""
    created = ok(node.quick("anna", "create", "--category=other", "--title=Shelf wobbles"))
    return created.split()[0]


def test_a_ticket_command_without_a_token_says_so(node: Node) -> None:
    result = run("ticket", "list", "--server", node.server.target, "--token", "")
    assert "no API token" in one_error_line(result)


def test_a_ticket_command_with_a_revoked_token_is_refused(node: Node) -> None:
    ok(node.admin("user", "add", "temp", "--role", "agent"))
    node.tokens["temp"] = ok(node.admin("token", "create", "temp")).strip()
    ok(node.quick("temp", "list"))

    assert ok(node.admin("token", "revoke", "temp")) == "revoked 1 token(s) of temp\n"

    line = one_error_line(node.quick("temp", "list"))
    assert line.startswith("hdx: error: UNAUTHENTICATED: authorization")


def test_a_ticket_command_to_a_node_that_is_down_fails_with_one_line() -> None:
    result = run("ticket", "list", "--server", "127.0.0.1:1", "--token", "hdx_" + "x" * 43)
    assert one_error_line(result).startswith("hdx: error: UNAVAILABLE")


def test_migrate_on_a_current_node_is_a_no_op(node: Node) -> None:
    before = ok(node.quick("ivan", "list", "--all"))

    out = ok(hdx("migrate", data_dir=node.data_dir))

    match = re.fullmatch(r"schema (\S+) -> (\S+)\n", out)
    assert match, out
    assert match.group(1) == match.group(2) != "empty"
    assert ok(node.quick("ivan", "list", "--all")) == before  # the node serves on, unchanged


# -- partner nodes -------------------------------------------------------------------------

UNREACHABLE = "127.0.0.1:1"
"""An endpoint nothing listens on."""


@dataclass
class Stranger:
    """An initialised node that does not serve, and its invite (advertising UNREACHABLE)."""

    data_dir: Path
    node_id: str
    invite: Path
    fingerprint: str


def stranger(base: Path, name: str) -> Stranger:
    data_dir = base / name
    init = ok(run("--data-dir", str(data_dir), "init", "--name", name, "--prefix", "STR"))
    invite_file = base / f"{name}.json"
    fingerprint = invite(data_dir, UNREACHABLE, invite_file)
    return Stranger(data_dir, node_id(Result([], 0, init, "")), invite_file, fingerprint)


@dataclass
class Partner:
    """The module node's contractor: a node of its own, served by its own `hdx serve`."""

    data_dir: Path
    node_id: str
    token: str
    server: Server

    def quick(self, *args: str) -> Result:
        """A ticket command of its engineer olga, run in this process."""
        target = ["--server", self.server.target, "--token", self.token]
        return run("--data-dir", str(self.data_dir), "ticket", *args, *target)


@pytest.fixture(scope="module")
def partner(node: Node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Partner]:
    """A contractor node, paired with the module's node through `hdx partner invite|add`."""
    base = tmp_path_factory.mktemp("partner")
    data_dir = base / "node"
    init = run("--data-dir", str(data_dir), "init", "--name", "Fix-It", "--prefix", "FIX")
    ok(run("--data-dir", str(data_dir), "user", "add", "olga", "--role", "agent"))
    token = ok(run("--data-dir", str(data_dir), "token", "create", "olga")).strip()
    banner = re.compile(r"hdx node 'Fix-It' serving on 127\.0\.0\.1:(\d+)")
    server = Server(data_dir, base / "serve.log", banner)
    try:
        ours, theirs = base / "ours.json", base / "theirs.json"
        fingerprint = invite(data_dir, server.exchange_target, theirs)
        ok(add(node.data_dir, theirs, "contractor", fingerprint))
        fingerprint = invite(node.data_dir, node.server.exchange_target, ours)
        ok(add(data_dir, ours, "client", fingerprint))
        yield Partner(data_dir, node_id(init), token, server)
    finally:
        server.stop()


def hand_to(node: Node, partner: Partner, title: str) -> tuple[str, str]:
    """A ticket ivan filed, started and handed to the partner with `hdx ticket handoff` (the
    program), once the partner accepted it: (our key, the partner's)."""
    key = ok(
        node.quick("ivan", "create", "--category=pos-down", f"--title={title}", "--store=msk-001")
    )
    key = key.split()[0]
    ok(node.quick("ivan", "transition", key, "start"))
    handed = ok(node.as_user("ivan", "handoff", key, partner.node_id, "--note", "register 3"))
    assert handed.startswith(key) and " waiting_partner " in handed.splitlines()[0]
    assert re.search(rf"handed to {partner.node_id} \(Fix-It\) \S+ \S+Z: offered$", handed, re.M)
    accepted = wait_for(
        f"the accept of {key}",
        lambda: re.search(r" as (FIX-\d+): accepted$", ok(node.quick("ivan", "show", key)), re.M),
    )
    return key, accepted.group(1)


def test_init_gives_the_node_an_id_and_a_fingerprint_that_its_invite_repeats(node: Node) -> None:
    match = NODE_ID.fullmatch(node.init.stdout.splitlines()[1])
    assert match, node.init.stdout
    assert re.fullmatch(r"corner-shops-[0-9a-f]{8}", match.group(1))

    result = hdx("partner", "invite", data_dir=node.data_dir)

    invitation = json.loads(ok(result))
    assert (invitation["node_id"], invitation["name"], invitation["fingerprint"]) == (
        match.group(1),
        NAME,
        match.group(2),
    )
    assert invitation["endpoint"] == "127.0.0.1:50061", "the config's endpoint"
    assert result.stderr.splitlines()[-1] == f"fingerprint: {match.group(2)}"


def test_serve_prints_where_the_exchange_listens(node: Node) -> None:
    assert EXCHANGE_BANNER.fullmatch(node.server.exchange_banner)
    assert node.server.exchange_target not in (node.server.target, "127.0.0.1:0")


def test_a_partner_is_added_only_with_the_fingerprint_its_admin_reads_out(
    node: Node, tmp_path: Path
) -> None:
    other = stranger(tmp_path, "other")
    before = ok(node.admin("partner", "list"))

    missing = node.admin("partner", "add", str(other.invite), "--role", "contractor")
    wrong = add(node.data_dir, other.invite, "contractor", "0000 " + other.fingerprint[5:])

    assert f'fingerprint "{other.fingerprint}"' in one_error_line(missing)
    assert "compare it with its administrator's" in missing.stderr
    assert "fingerprint: the invite's is" in one_error_line(wrong)
    assert ok(node.admin("partner", "list")) == before
    typed = other.fingerprint.replace(" ", "").upper()  # however the admin typed it in
    added = ok(add(node.data_dir, other.invite, "contractor", typed, "--categories", "pos-down"))
    assert added == f"added contractor {other.node_id} (other) at {UNREACHABLE} over TLS\n"
    again = add(node.data_dir, other.invite, "contractor", other.fingerprint)
    assert f"{other.node_id} is a partner already" in one_error_line(again)
    ok(node.admin("partner", "remove", other.node_id))


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (("--categories", "pos-down,nope"), "terms.categories: no such category 'nope'"),
        (("--accept-minutes", "-1"), "terms.accept_minutes: must be a positive number"),
        (("--terms", "{terms}"), "terms.status_in.RESOLVED: 'fixed' is not a status of our"),
        (("--terms", "/nonexistent/terms.toml"), "/nonexistent/terms.toml"),
        (("--role", "client", "--terms", "{category}"), "terms.category: no such category"),
    ],
    ids=["unknown category", "negative time", "unknown status", "no terms file", "client"],
)
def test_a_partner_with_terms_we_cannot_keep_is_refused(
    node: Node, tmp_path: Path, options: tuple[str, ...], says: str
) -> None:
    other = stranger(tmp_path, "other")
    files = {"terms": tmp_path / "terms.toml", "category": tmp_path / "category.toml"}
    files["terms"].write_text('[status_in]\nRESOLVED = "fixed"\n', encoding="utf-8")
    files["category"].write_text('category = "plumbing"\n', encoding="utf-8")
    named = [option.format(**{k: str(v) for k, v in files.items()}) for option in options]

    result = add(node.data_dir, other.invite, "contractor", other.fingerprint, *named)

    assert says in one_error_line(result)
    assert other.node_id not in ok(node.admin("partner", "list"))


def test_a_ticket_handed_off_with_the_cli_is_taken_by_the_partner(
    node: Node, partner: Partner
) -> None:
    key, theirs = hand_to(node, partner, "Till 3 dead")

    their_view = ok(partner.quick("show", theirs))
    assert "Till 3 dead" in their_view
    assert re.search(rf"handed to us by {node_id(node.init)} \({NAME}\) .* as {key}: ", their_view)
    assert f"as {theirs}: accepted" in ok(node.quick("anna", "show", key)), "the store's view"
    line = one_error_line(node.quick("anna", "handoff", key, partner.node_id))
    assert line.startswith("hdx: error: PERMISSION_DENIED")
    line = one_error_line(node.quick("ivan", "handoff", key, "nobody"))
    assert line == "hdx: error: NOT_FOUND: partner 'nobody' not found"


def test_keys_rotate_reaches_the_partner_while_the_node_serves(
    node: Node, partner: Partner
) -> None:
    key, theirs = hand_to(node, partner, "Scale 2 misweighs")
    old = re.search(r"^signing key ([0-9a-f]{16})$", ok(node.admin("status")), re.M)
    assert old

    rotated = ok(hdx("keys", "rotate", data_dir=node.data_dir))

    match = re.fullmatch(
        r"signing key ([0-9a-f]{16}) -> ([0-9a-f]{16}); announced to \d+ partner\(s\), "
        r"signed by the old key; a serving node signs with the new one within 1 s\n",
        rotated,
    )
    assert match, rotated
    assert match.group(1) == old.group(1) != match.group(2)
    new = match.group(2)
    assert f"signing key {new}" in ok(node.admin("status"))
    wait_for(
        "the server to sign with the new key",
        lambda: f"signing with key {new} from now on" in node.server.log_path.read_text(),
    )
    ok(node.quick("ivan", "comment", key, "Signed with the new key"))
    wait_for("the comment", lambda: "Signed with the new key" in ok(partner.quick("show", theirs)))
    theirs_node = open_node(load(partner.data_dir))
    try:
        with theirs_node.db.read() as tx:
            assert set(tx.links.keys_of(node_id(node.init))) == {old.group(1), new}
            [link] = tx.links.links_of(int(theirs.split("-")[1]))
            signed = {
                e.kind: pb.Envelope.FromString(e.envelope).key_id
                for e in tx.links.log_of(link.id)
                if not e.outbound
            }
    finally:
        theirs_node.db.dispose()
    assert signed == {"offer": old.group(1), "comment": new}


def test_status_flags_a_partner_unreachable_longer_than_the_alert_threshold(
    node: Node, tmp_path: Path
) -> None:
    other = stranger(tmp_path, "gone")
    ok(add(node.data_dir, other.invite, "contractor", other.fingerprint))
    key = own_ticket(node)
    ok(node.quick("ivan", "handoff", key, other.node_id))
    row = rf"^  {other.node_id} +contractor +active +"

    wait_for(
        "a failed delivery",
        lambda: re.search(row + r"unreachable for \d+ min", ok(node.admin("status")), re.M),
    )
    flagged = wait_for(
        "the flag",
        lambda: re.search(
            row + r"ALERT: unreachable for \d+ min \(since \S+ \S+Z\), 1 waiting, \d+ failures: "
            r"UNAVAILABLE",
            ok(
                hdx(
                    "status",
                    data_dir=node.data_dir,
                    env={"HDX_EXCHANGE_ALERT_AFTER_MINUTES": "0.01"},
                )
            ),
            re.M,
        ),
    )
    assert flagged
    assert not re.search(row + "ALERT", ok(node.admin("status")), re.M), "30 minutes by default"
    listed = ok(node.admin("partner", "list"))
    assert re.search(
        rf"^{other.node_id} +gone +contractor +active +{re.escape(UNREACHABLE)} +1 +[1-9]\d* +"
        r"\S+ \S+Z +UNAVAILABLE",
        listed,
        re.M,
    )

    assert (
        ok(node.admin("partner", "suspend", other.node_id))
        == f"partner {other.node_id} is suspended\n"
    )
    assert re.search(rf"^{other.node_id} .* suspended ", ok(node.admin("partner", "list")), re.M)
    ok(node.admin("partner", "resume", other.node_id))
    ok(node.admin("partner", "remove", other.node_id))
    assert re.search(rf"^  {other.node_id} +contractor +removed ", ok(node.admin("status")), re.M)
    line = one_error_line(node.admin("partner", "resume", "nobody"))
    assert line == "hdx: error: partner 'nobody' not found"


def test_serve_refuses_an_alert_store_missing_from_the_catalogue(node: Node) -> None:
    env = {"HDX_EXCHANGE_ALERT_STORE": "nowhere"}

    result = hdx(*SERVE_ANY_PORT, data_dir=node.data_dir, env=env)

    assert result.returncode == 1
    assert result.stdout == ""
    last = result.stderr.splitlines()[-1]
    assert last == "hdx: error: exchange.alert_store: no such store 'nowhere' in the catalogue"


def test_serve_on_an_exchange_port_in_use_fails_with_a_clear_line(node: Node) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"

        result = hdx(
            "serve", "--listen", "127.0.0.1:0", "--exchange-listen", listen, data_dir=node.data_dir
        )

    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        f"hdx: error: exchange.listen: cannot listen on {listen}"
    )


def test_migrate_gives_a_node_from_before_the_exchange_its_identity(tmp_path: Path) -> None:
    data_dir = tmp_path / "older"
    ok(run("--data-dir", str(data_dir), "init", "--name", "Older", "--prefix", "OLD"))
    shutil.rmtree(data_dir / "keys")
    shutil.rmtree(data_dir / "tls")
    older = open_node(load(data_dir))
    with older.db.write() as tx:
        tx.conn.execute(text("DELETE FROM node_settings WHERE name = 'node_id'"))
    older.db.dispose()

    refused = one_error_line(hdx(*SERVE_ANY_PORT, data_dir=data_dir))
    assert refused == (
        f"hdx: error: the node has no exchange identity in {data_dir}: run `hdx migrate`"
    )
    migrated = ok(hdx("migrate", data_dir=data_dir)).splitlines()

    assert re.fullmatch(r"schema (\S+) -> \1", migrated[0])
    made = NODE_ID.fullmatch(migrated[1].removesuffix(" (new exchange identity)"))
    assert made and made.group(1).startswith("older-")
    assert f"node        {made.group(1)} (Older)" in ok(run("--data-dir", str(data_dir), "status"))
    assert len(ok(hdx("migrate", data_dir=data_dir)).splitlines()) == 1


def test_serve_stops_cleanly_on_sigterm(node: Node) -> None:
    """Last: stops the module's server the way systemd or docker would."""
    assert node.server.stop() == 0
    log = node.server.log_path.read_text()
    assert "Traceback" not in log
    assert "ERROR" not in log


def test_init_with_a_url_of_no_known_database_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"

    line = one_error_line(
        run("--data-dir", str(data_dir), "init", "--database-url", "nonsense://x")
    )

    assert line.startswith("hdx: error: database.url: not a database URL hdx can use")
    assert not (data_dir / "hdx.toml").exists()
