"""`hdx`: set up, serve and administer a node, and use it as a client.

    hdx init [--name N] [--prefix P]      data directory, config, schema, identity, admin token
    hdx serve                             serve the gRPC API and the exchange with partners
    hdx migrate                           upgrade the schema of an older node
    hdx user add|list, hdx token create|revoke, hdx catalog load|show
    hdx partner invite|add|list|suspend|resume|remove, hdx keys rotate, hdx status
    hdx ticket create|list|show|transition|comment|assign|handoff   (client of a running node)

Administration commands work on the node's database directly, as its operator;
ticket commands talk to a running node over gRPC with an API token
(`--token` or HDX_TOKEN). Errors print as one line and exit non-zero.
"""

import argparse
import asyncio
import logging
import os
import sys
import tomllib
from collections.abc import Sequence
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from cli import config as configuration
from cli import sla
from cli.wiring import (
    Listening,
    Node,
    alert_policy,
    ensure_identity,
    open_exchange,
    open_node,
    schema_problem,
    serve,
)
from exchange import keys
from exchange.service import ExchangeService, Invite
from node.api.client import ApiError, HelpDeskClient, TicketView
from node.domain import validation
from node.domain.errors import DomainError
from node.domain.partner import (
    LATE_OFFER_CHOICES,
    Delivery,
    PartnerRole,
    PartnerState,
    Side,
    Terms,
    TicketLink,
)
from node.domain.roles import Role
from node.domain.ticket import Level, Ticket, TicketDraft, TicketQuery, Visibility
from node.store import migrate


class CliError(Exception):
    """A command that cannot go on; printed as one line."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        args.run(args)
    except (CliError, DomainError, ApiError) as error:
        print(f"hdx: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hdx", description="A federated help desk node.")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=configuration.default_data_dir(),
        help="the node's data directory (HDX_DATA_DIR, default ./hdx-data)",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    init = commands.add_parser("init", help="create a node: data directory, config, schema, admin")
    init.add_argument("--name", default="hdx", help="the node's name")
    init.add_argument("--prefix", default="HDX", help="ticket key prefix, e.g. RET for RET-1042")
    init.add_argument("--database-url", default="", help="default: SQLite file in the data dir")
    init.add_argument("--listen", default=configuration.DEFAULT_LISTEN)
    init.add_argument("--admin", default="admin", help="login of the first administrator")
    init.set_defaults(run=_init)

    serve_cmd = commands.add_parser("serve", help="serve the gRPC API and the exchange")
    serve_cmd.add_argument("--listen", help="host:port, overriding the config (port 0: any)")
    serve_cmd.add_argument(
        "--exchange-listen", help="host:port of the exchange, overriding the config (port 0: any)"
    )
    serve_cmd.set_defaults(run=_serve)

    commands.add_parser("migrate", help="upgrade the database schema").set_defaults(run=_migrate)

    user = commands.add_parser("user", help="people of this node").add_subparsers(required=True)
    add = user.add_parser("add", help="add a user")
    add.add_argument("login")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--name", default="")
    add.add_argument("--store", default="", help="the store of a requester")
    add.set_defaults(run=_user_add)
    user.add_parser("list", help="list users").set_defaults(run=_user_list)

    token = commands.add_parser("token", help="API tokens").add_subparsers(required=True)
    create = token.add_parser("create", help="create a token for a user; it is shown once")
    create.add_argument("login")
    create.add_argument("--name", default="", help="what the token is for")
    create.set_defaults(run=_token_create)
    revoke = token.add_parser("revoke", help="revoke every token of a user")
    revoke.add_argument("login")
    revoke.set_defaults(run=_token_revoke)

    catalog = commands.add_parser("catalog", help="groups, categories, stores").add_subparsers(
        required=True
    )
    load = catalog.add_parser("load", help="add or update entries from a TOML file")
    load.add_argument("file", type=Path)
    load.set_defaults(run=_catalog_load)
    catalog.add_parser("show", help="print the catalogue").set_defaults(run=_catalog_show)

    _exchange_commands(commands)
    _ticket_commands(commands)
    sla.add_commands(commands, _config)
    return parser


def _exchange_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    partner = commands.add_parser("partner", help="partner nodes").add_subparsers(required=True)
    invite = partner.add_parser("invite", help="print what a partner's admin needs to add us")
    invite.add_argument("--endpoint", help="host:port partners call (default: the config's)")
    invite.set_defaults(run=_partner_invite)

    add = partner.add_parser("add", help="add a partner from its invite, by its fingerprint")
    add.add_argument("file", help="the partner's invite ('-': standard input)")
    add.add_argument("--role", required=True, choices=[r.value for r in PartnerRole])
    add.add_argument("--fingerprint", help="as the partner's admin read it to you")
    add.add_argument("--terms", type=Path, help="a TOML file of terms (status maps and the rest)")
    add.add_argument("--categories", help="our categories it takes, comma-separated (contractor)")
    add.add_argument("--accept-minutes", type=float)
    add.add_argument("--respond-minutes", type=float)
    add.add_argument("--resolve-minutes", type=float)
    add.add_argument("--late-offers", choices=LATE_OFFER_CHOICES)
    add.add_argument("--plaintext", action="store_true", help="no TLS: for local use only")
    add.set_defaults(run=_partner_add)

    partner.add_parser("list", help="partners and their delivery").set_defaults(run=_partner_list)
    for name, state in (
        ("suspend", PartnerState.SUSPENDED),
        ("resume", PartnerState.ACTIVE),
        ("remove", PartnerState.REMOVED),
    ):
        change = partner.add_parser(name, help=f"{name} a partner (its links and log stay)")
        change.add_argument("node_id")
        change.set_defaults(run=_partner_state, state=state)

    key = commands.add_parser("keys", help="the node's signing keys").add_subparsers(required=True)
    key.add_parser(
        "rotate", help="sign with a new key, announced to every partner under the old one"
    ).set_defaults(run=_keys_rotate)

    commands.add_parser(
        "status", help="the node's identity and its partners' delivery"
    ).set_defaults(run=_status)


def _ticket_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    client = argparse.ArgumentParser(add_help=False)
    client.add_argument("--server", default=None, help="host:port (HDX_SERVER, default: config)")
    client.add_argument("--token", default=os.environ.get("HDX_TOKEN", ""), help="or HDX_TOKEN")
    ticket = commands.add_parser("ticket", help="work with tickets on a running node")
    sub = ticket.add_subparsers(required=True)

    create = sub.add_parser("create", parents=[client], help="file a ticket")
    create.add_argument("--category", required=True)
    create.add_argument("--title", required=True)
    create.add_argument("--description", default="")
    create.add_argument("--store", default="")
    create.add_argument("--requester", default="")
    create.add_argument("--impact", choices=[level.name.lower() for level in Level])
    create.add_argument("--urgency", choices=[level.name.lower() for level in Level])
    create.add_argument("--request-id", default="", help="makes a retried create safe")
    create.set_defaults(run=_ticket_create)

    listing = sub.add_parser("list", parents=[client], help="list tickets in queue order")
    listing.add_argument("--status", action="append", default=[])
    listing.add_argument("--assignee")
    listing.add_argument("--group")
    listing.add_argument("--store")
    listing.add_argument("--all", action="store_true", help="include closed and cancelled")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(run=_ticket_list)

    show = sub.add_parser("show", parents=[client], help="a ticket with comments and history")
    show.add_argument("key")
    show.set_defaults(run=_ticket_show)

    move = sub.add_parser("transition", parents=[client], help="take a workflow transition")
    move.add_argument("key")
    move.add_argument("transition", help="e.g. start, resolve, confirm, dispute, reopen, cancel")
    move.add_argument("--reason", default="")
    move.set_defaults(run=_ticket_transition)

    comment = sub.add_parser("comment", parents=[client], help="add a comment")
    comment.add_argument("key")
    comment.add_argument("body")
    comment.add_argument("--internal", action="store_true", help="for engineers only")
    comment.set_defaults(run=_ticket_comment)

    assign = sub.add_parser("assign", parents=[client], help="set assignee, group, co-assignees")
    assign.add_argument("key")
    assign.add_argument("--to", default="", help="assignee login; empty unassigns")
    assign.add_argument("--group", default="")
    assign.add_argument("--co", action="append", default=[], help="a co-assignee (repeatable)")
    assign.set_defaults(run=_ticket_assign)

    handoff = sub.add_parser("handoff", parents=[client], help="hand a ticket to a contractor")
    handoff.add_argument("key")
    handoff.add_argument("partner", help="the contractor's node id (`hdx partner list`)")
    handoff.add_argument("--note", default="", help="for the contractor's engineers")
    handoff.set_defaults(run=_ticket_handoff)


# -- node commands --------------------------------------------------------------------


def _config(args: argparse.Namespace) -> configuration.Config:
    try:
        return configuration.load(args.data_dir)
    except FileNotFoundError:
        raise CliError(f"no node in {args.data_dir}: run `hdx init` first") from None


def _init(args: argparse.Namespace) -> None:
    data_dir: Path = args.data_dir
    if (data_dir / configuration.CONFIG_FILE).exists():
        raise CliError(f"{data_dir} holds a node already")
    prefix = validation.key_prefix(args.prefix)
    admin_login = validation.code("admin", args.admin)
    data_dir.mkdir(parents=True, exist_ok=True)
    text = configuration.render(args.name, prefix, args.database_url, args.listen)
    config = configuration.parse(text, data_dir, os.environ)
    migrate.upgrade(open_node(config).db.engine)
    node = open_node(config)
    node.db.initialise(prefix, config.node_name)
    catalog = resources.files("cli").joinpath("default_catalog.toml").read_text(encoding="utf-8")
    node.admin.load_catalog(tomllib.loads(catalog))
    node.admin.add_user(admin_login, "Administrator", Role.ADMIN, None)
    token = node.admin.create_token(admin_login, "created by hdx init")
    me, _ = ensure_identity(node, config)
    (data_dir / configuration.CONFIG_FILE).write_text(text, encoding="utf-8")
    print(f"initialised node {config.node_name!r} in {data_dir} ({config.database_url})")
    print(f"node id {me.node_id}, fingerprint {me.fingerprint}")
    print(f"administrator {admin_login!r}; API token (shown once):")
    print(f"export HDX_TOKEN={token}")


def _serve(args: argparse.Namespace) -> None:
    """Serves; the first line printed says where the API listens, the second where the
    exchange does (readers take the port after the last space)."""
    config = _config(args)
    node = open_node(config)
    problem = schema_problem(node.db)
    if problem:
        raise CliError(problem)
    exchange = open_exchange(node, config)
    api_listen = args.listen or config.listen
    exchange_listen = args.exchange_listen or config.exchange.listen

    def ready(listening: Listening) -> None:
        api_host, exchange_host = api_listen.rsplit(":", 1)[0], exchange_listen.rsplit(":", 1)[0]
        name = config.node_name
        print(f"hdx node {name!r} serving on {api_host}:{listening.api_port}")
        print(f"hdx node {name!r} exchange serving on {exchange_host}:{listening.exchange_port}")
        sys.stdout.flush()

    asyncio.run(
        serve(
            node,
            exchange,
            config,
            api_listen=api_listen,
            exchange_listen=exchange_listen,
            on_ready=ready,
        )
    )


def _migrate(args: argparse.Namespace) -> None:
    config = _config(args)
    node = open_node(config)
    before = migrate.current(node.db.engine)
    migrate.upgrade(node.db.engine)
    print(f"schema {before or 'empty'} -> {migrate.current(node.db.engine)}")
    me, made = ensure_identity(node, config)
    if made:
        print(f"node id {me.node_id}, fingerprint {me.fingerprint} (new exchange identity)")


def _user_add(args: argparse.Namespace) -> None:
    node = open_node(_config(args))
    user = node.admin.add_user(args.login, args.name, Role(args.role), args.store or None)
    print(f"added {user.role} {user.login}" + (f" of store {user.store}" if user.store else ""))


def _user_list(args: argparse.Namespace) -> None:
    for user in open_node(_config(args)).admin.users():
        state = "" if user.active else "  (inactive)"
        print(f"{user.login:20} {user.role:11} {user.store or '-':12} {user.name}{state}")


def _token_create(args: argparse.Namespace) -> None:
    print(open_node(_config(args)).admin.create_token(args.login, args.name))


def _token_revoke(args: argparse.Namespace) -> None:
    count = open_node(_config(args)).admin.revoke_tokens(args.login)
    print(f"revoked {count} token(s) of {args.login}")


def _catalog_load(args: argparse.Namespace) -> None:
    try:
        catalog = tomllib.loads(args.file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise CliError(f"{args.file}: {error}") from None
    groups, categories, stores = open_node(_config(args)).admin.load_catalog(catalog)
    print(f"loaded {groups} groups, {categories} categories, {stores} stores")


def _catalog_show(args: argparse.Namespace) -> None:
    groups, categories, stores = open_node(_config(args)).admin.catalog()
    for group in groups:
        print(f"group    {group.code:16} {group.name}")
    for c in categories:
        flag = " STOP-TRADE" if c.stop_trade else ""
        print(f"category {c.code:16} {c.name} [{c.ticket_type}, {c.group or '-'}]{flag}")
    for s in stores:
        print(f"store    {s.code:16} {s.name} [{s.region}, {s.timezone}, {s.tier}]")


# -- partners and the exchange ----------------------------------------------------------


def _exchange(args: argparse.Namespace) -> tuple[configuration.Config, Node, ExchangeService]:
    config = _config(args)
    node = open_node(config)
    problem = schema_problem(node.db)
    if problem:
        raise CliError(problem)
    return config, node, open_exchange(node, config)


def _partner_invite(args: argparse.Namespace) -> None:
    config, _, exchange = _exchange(args)
    invite = exchange.invite(args.endpoint or config.exchange.endpoint, config.node_name)
    print(invite.to_text())
    print(f"fingerprint: {invite.fingerprint}", file=sys.stderr)


def _partner_add(args: argparse.Namespace) -> None:
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
    except OSError as error:
        raise CliError(f"{args.file}: {error.strerror}") from None
    invite = Invite.from_text(text)
    if not args.fingerprint:
        raise CliError(
            f"the invite of {invite.name!r} ({invite.node_id}) has fingerprint "
            f'"{invite.fingerprint}": compare it with its administrator\'s, then add it with '
            f'--fingerprint "{invite.fingerprint}"'
        )
    if _digits(args.fingerprint) != _digits(invite.fingerprint):
        raise CliError(
            f'fingerprint: the invite\'s is "{invite.fingerprint}", not the one given: '
            "do not add it; ask its administrator for a new invite"
        )
    _, _, exchange = _exchange(args)
    role = PartnerRole(args.role)
    partner = exchange.add_partner(invite, role, _terms(args), plaintext=args.plaintext)
    transport = "plaintext" if partner.plaintext else "TLS"
    print(f"added {role} {partner.node_id} ({partner.name}) at {partner.endpoint} over {transport}")


def _digits(fingerprint: str) -> str:
    return "".join(fingerprint.split()).lower()


def _terms(args: argparse.Namespace) -> Terms:
    """The terms of `hdx partner add`: the --terms file, overridden by the options."""
    raw: dict[str, Any] = {}
    if args.terms is not None:
        try:
            raw = tomllib.loads(args.terms.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise CliError(f"{args.terms}: {error}") from None
    if args.categories is not None:
        raw["categories"] = [c.strip() for c in args.categories.split(",") if c.strip()]
    for name in ("accept_minutes", "respond_minutes", "resolve_minutes", "late_offers"):
        if getattr(args, name) is not None:
            raw[name] = getattr(args, name)
    return Terms.from_json(raw)


def _partner_list(args: argparse.Namespace) -> None:
    _, _, exchange = _exchange(args)
    print(
        f"{'NODE':30} {'NAME':20} {'ROLE':10} {'STATE':9} {'ENDPOINT':22} "
        f"{'WAITING':>7} {'FAILURES':>8} {'UNREACHABLE SINCE':17} LAST ERROR"
    )
    for partner, delivery, waiting in exchange.partners():
        print(
            f"{partner.node_id:30} {partner.name:20} {partner.role:10} {partner.state:9} "
            f"{partner.endpoint:22} {waiting:7} {delivery.failures:8} "
            f"{_when(delivery.down_since):17} {delivery.last_error or '-'}"
        )


def _when(at: datetime | None) -> str:
    return "-" if at is None else f"{at:%Y-%m-%d %H:%M}Z"


def _partner_state(args: argparse.Namespace) -> None:
    _, _, exchange = _exchange(args)
    exchange.set_state(args.node_id, args.state)
    print(f"partner {args.node_id} is {args.state}")


def _keys_rotate(args: argparse.Namespace) -> None:
    config, _, exchange = _exchange(args)
    rotated = keys.rotate(exchange, config.data_dir)
    print(
        f"signing key {rotated.old_key_id} -> {rotated.new_key_id}; announced to "
        f"{rotated.partners} partner(s), signed by the old key; a serving node signs with "
        f"the new one within {keys.KEY_POLL_S:g} s"
    )


def _status(args: argparse.Namespace) -> None:
    config, node, exchange = _exchange(args)
    me, policy, now = exchange.identity, alert_policy(config), exchange.clock.now()
    transport = "TLS" if config.exchange.tls else "plaintext"
    print(f"node        {me.node_id} ({config.node_name})")
    print(f"fingerprint {me.fingerprint}")
    print(f"signing key {me.key_id}")
    print(
        f"exchange    {config.exchange.endpoint} ({transport}; listens on {config.exchange.listen})"
    )
    partners = exchange.partners()
    print(f"partners    {len(partners)}")
    for partner, delivery, waiting in partners:
        state = _delivery_state(delivery, waiting, now, policy.overdue(delivery, now))
        if delivery.alert_ticket_id is not None:
            state += f" (alert ticket {node.db.key_prefix}-{delivery.alert_ticket_id})"
        print(f"  {partner.node_id:30} {partner.role:10} {partner.state:9} {state}")


def _delivery_state(delivery: Delivery, waiting: int, now: datetime, overdue: bool) -> str:
    """Where delivery to a partner stands, in words; flagged when it is down too long."""
    if delivery.down_since is not None:
        minutes = int((now - delivery.down_since).total_seconds() // 60)
        flag = "ALERT: " if overdue else ""
        return (
            f"{flag}unreachable for {minutes} min (since {_when(delivery.down_since)}), "
            f"{waiting} waiting, {delivery.failures} failures: {delivery.last_error}"
        )
    if delivery.failures:
        return f"refusing events, {waiting} waiting: {delivery.last_error}"
    return f"delivering, {waiting} waiting" if waiting else "up to date"


# -- ticket commands (gRPC client) ------------------------------------------------------


def _client(args: argparse.Namespace) -> HelpDeskClient:
    if not args.token:
        raise CliError("no API token: pass --token or set HDX_TOKEN")
    server = args.server or os.environ.get("HDX_SERVER")
    if not server:
        try:
            server = configuration.load(args.data_dir).listen
        except FileNotFoundError:
            server = configuration.DEFAULT_LISTEN
    return HelpDeskClient(server, args.token)


def _level(name: str | None) -> Level | None:
    return None if name is None else Level[name.upper()]


def _line(view: TicketView) -> str:
    t = view.ticket
    flag = "STOP " if t.stop_trade else "     "
    due = f"{t.due_at:%m-%d %H:%M}Z" if t.due_at else "-"
    return (
        f"{t.key:10} {t.priority.name} {flag}{t.status:18} {t.line:3} {due:12} "
        f"{t.assignee or '-':12} {t.store:10} {t.title}"
    )


def _minutes(seconds: float) -> str:
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    return f"{sign}{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def _print_clocks(ticket: Ticket) -> None:
    """One line per SLA clock: due, remaining, paused, breached (business time)."""
    if not ticket.clocks:
        print(f"  SLA: {ticket.sla.policy or 'no policy applies'}")
        return
    print(f"  SLA {ticket.sla.policy or '(none now)'}:")
    for c in ticket.clocks:
        due = f"due {c.due_at:%Y-%m-%d %H:%M}Z" if c.due_at else f"{c.state}"
        verdict = "BREACHED" if c.breached else "in time"
        print(
            f"    {c.timer:15} cycle {c.cycle} {due:24} remaining {_minutes(c.remaining_s):>8} "
            f"paused {_minutes(c.paused_s):>7}  {verdict}"
        )


def _print_ticket(view: TicketView) -> None:
    t = view.ticket
    print(_line(view))
    print(
        f"  category {t.category}, type {t.ticket_type}, impact {t.impact.name.lower()}, "
        f"urgency {t.urgency.name.lower()}, group {t.group or '-'}"
    )
    print(f"  requester {t.requester}; created {t.created_at:%Y-%m-%d %H:%M:%S}Z")
    if t.co_assignees:
        print(f"  co-assignees {', '.join(sorted(t.co_assignees))}")
    _print_clocks(t)
    for link in t.links:
        print(f"  {_link(link)}")
    print(f"  you may: {', '.join(view.transitions) or 'nothing'}")


def _link(link: TicketLink) -> str:
    """A hand-off of a ticket, in words."""
    way = "handed to" if link.side is Side.ORIGIN else "handed to us by"
    theirs = f" as {link.remote_ticket}" if link.remote_ticket else ""
    return (
        f"{way} {link.partner} ({link.partner_name}) {link.created_at:%Y-%m-%d %H:%M}Z"
        f"{theirs}: {link.state}"
    )


def _ticket_create(args: argparse.Namespace) -> None:
    draft = TicketDraft(
        category=args.category,
        title=args.title,
        description=args.description,
        store=args.store,
        request_id=args.request_id,
        impact=_level(args.impact),
        urgency=_level(args.urgency),
        requester=args.requester,
    )
    with _client(args) as client:
        _print_ticket(client.create(draft))


def _ticket_list(args: argparse.Namespace) -> None:
    query = TicketQuery(
        statuses=tuple(args.status),
        assignee=args.assignee,
        group=args.group,
        store=args.store,
        limit=args.limit,
    )
    with _client(args) as client:
        views, _ = client.list_tickets(query, include_closed=args.all)
    for view in views:
        print(_line(view))


def _ticket_show(args: argparse.Namespace) -> None:
    with _client(args) as client:
        view = client.get(args.key)
        comments = client.comments(args.key)
        history = client.history(args.key)
    _print_ticket(view)
    if view.ticket.description:
        print(f"\n{view.ticket.description}")
    for c in comments:
        mark = " (internal)" if c.visibility is Visibility.INTERNAL else ""
        print(f"\n{c.created_at:%Y-%m-%d %H:%M}Z {c.author}{mark}:\n  {c.body}")
    print("\nhistory:")
    for entry in history:
        change = entry.change
        print(
            f"  {entry.at:%Y-%m-%d %H:%M:%S}Z {entry.actor:12} {change.action:10} "
            f"{change.field}: {change.before or '-'} -> {change.after or '-'}"
        )


def _ticket_transition(args: argparse.Namespace) -> None:
    with _client(args) as client:
        _print_ticket(client.transition(args.key, args.transition, args.reason))


def _ticket_comment(args: argparse.Namespace) -> None:
    visibility = Visibility.INTERNAL if args.internal else Visibility.PUBLIC
    with _client(args) as client:
        comment = client.comment(args.key, args.body, visibility)
    print(f"comment {comment.id} added to {comment.ticket_key} ({comment.visibility})")


def _ticket_assign(args: argparse.Namespace) -> None:
    with _client(args) as client:
        _print_ticket(client.assign(args.key, args.to, args.group, tuple(args.co)))


def _ticket_handoff(args: argparse.Namespace) -> None:
    with _client(args) as client:
        _print_ticket(client.hand_off(args.key, args.partner, args.note))


if __name__ == "__main__":
    sys.exit(main())
