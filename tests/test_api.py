"""The HelpDesk API over real gRPC: every bad request gets the right status code and a
message naming the field or rule, writes nothing and leaves the server serving; creates
are idempotent over the wire; listings page in queue order; health and reflection work.
"""

import base64
import json
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from hdx.helpdesk.v1 import helpdesk_pb2 as pb
from hdx.helpdesk.v1 import helpdesk_pb2_grpc

from node.api import codec
from node.domain.roles import Role
from node.domain.ticket import (
    FAR_FUTURE,
    Comment,
    HistoryEntry,
    Ticket,
    TicketDraft,
    TicketQuery,
)
from node.store.database import Database
from tests.conftest import (
    BACKENDS,
    PREFIX,
    USERS,
    Api,
    Desk,
    FakeClock,
    ServerThread,
    seed_desk,
)
from tests.postgres import PostgresServer

Metadata = tuple[tuple[str, str], ...]
ONE_MIB = 1 << 20


# -- a served desk shared by the bad-input matrix ------------------------------------------


@dataclass
class Served:
    """One desk served for a whole module, with tickets in known states to aim bad calls at."""

    desk: Desk
    target: str
    channel: grpc.Channel
    stub: helpdesk_pb2_grpc.HelpDeskStub
    tokens: dict[str, str]
    anna_ticket: str
    boris_ticket: str
    cancelled_ticket: str
    reused_request_id: str

    def metadata(self, who: str | None) -> Metadata:
        if who is None:
            return ()
        return (("authorization", f"Bearer {self.tokens.get(who, who)}"),)


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("api") / "hdx.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database("test_api_matrix", template="hdx_template")
    db = Database(url)
    desk = seed_desk(db, FakeClock())
    admin = desk.admin
    admin.add_user("carol", "Carol", Role.REQUESTER, "msk-001")
    tokens = {login: admin.create_token(login) for login, _, _ in USERS}
    tokens["revoked"] = admin.create_token("carol")
    admin.revoke_tokens("carol")
    tokens["unknown"] = "hdx_" + "A" * 43
    tokens["garbage"] = "let-me-in"

    anna, boris = desk.actor("anna"), desk.actor("boris")
    anna_ticket = desk.tickets.create(anna, TicketDraft(category="other", title="Door sticks"))
    boris_ticket = desk.tickets.create(boris, TicketDraft(category="scales", title="Scales off"))
    cancelled = desk.tickets.create(anna, TicketDraft(category="other", title="Never mind"))
    desk.tickets.transition(anna, cancelled.key, "cancel", "fixed it ourselves")
    desk.tickets.create(
        anna, TicketDraft(category="other", title="Till 7 is slow", request_id="till-7")
    )

    thread = ServerThread(desk)
    channel = grpc.insecure_channel(thread.target)
    try:
        yield Served(
            desk=desk,
            target=thread.target,
            channel=channel,
            stub=helpdesk_pb2_grpc.HelpDeskStub(channel),
            tokens=tokens,
            anna_ticket=anna_ticket.key,
            boris_ticket=boris_ticket.key,
            cancelled_ticket=cancelled.key,
            reused_request_id="till-7",
        )
    finally:
        channel.close()
        thread.stop()
        db.dispose()


def state(desk: Desk) -> tuple[list[Ticket], list[list[HistoryEntry]], list[list[Comment]]]:
    """Every ticket with its full history and comments, as an administrator sees them."""
    admin = desk.actor("admin")
    tickets, _ = desk.tickets.list_tickets(admin, TicketQuery(limit=500), include_closed=True)
    return (
        tickets,
        [desk.tickets.history(admin, t.key) for t in tickets],
        [desk.tickets.comments(admin, t.key) for t in tickets],
    )


# -- the bad-input matrix --------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """A request the node must refuse.

    Attributes:
        who: whose token goes with it (a login, or 'revoked', 'unknown', 'garbage'); None: none.
        build: the request, given the served desk (for the keys of its tickets).
        says: fragments the error message must contain (field names, rules, values).
    """

    name: str
    who: str | None
    method: str
    build: Callable[[Served], Message]
    code: grpc.StatusCode
    says: tuple[str, ...]


def _create(**fields: Any) -> Callable[[Served], Message]:
    base: dict[str, Any] = {"category": "other", "title": "Freezer hums"}
    return lambda _: pb.CreateTicketRequest(**{**base, **fields})


def unknown(number: int) -> Any:
    """An enum number the proto does not define, as an old or broken client may send."""
    return number


def forged_token(ticket_id: int) -> str:
    """A page token in the node's format, but not one it gave out."""
    raw = json.dumps([0, 1, "2026-11-23T09:12:00+00:00", ticket_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


INVALID = grpc.StatusCode.INVALID_ARGUMENT
BAD_REQUESTS = [
    # fields of a new ticket
    Bad("empty title", "anna", "CreateTicket", _create(title="   "), INVALID,
        ("title", "must not be empty")),
    Bad("oversized title", "anna", "CreateTicket", _create(title="x" * 201), INVALID,
        ("title", "at most 200", "201")),
    Bad("title with a line break", "anna", "CreateTicket", _create(title="POS\ndown"), INVALID,
        ("title", "line breaks")),
    Bad("description too long", "anna", "CreateTicket", _create(description="d" * 20_001),
        INVALID, ("description", "at most 20000")),
    Bad("unknown category", "anna", "CreateTicket", _create(category="teleport"), INVALID,
        ("category", "teleport")),
    Bad("malformed category", "anna", "CreateTicket", _create(category="POS DOWN"), INVALID,
        ("category", "a-z")),
    Bad("unknown store", "ivan", "CreateTicket", _create(store="zzz-999"), INVALID,
        ("store", "zzz-999")),
    Bad("engineer names no store", "ivan", "CreateTicket", _create(), INVALID,
        ("store", "must be given")),
    Bad("unknown requester", "pos", "CreateTicket", _create(store="msk-001", requester="nobody"),
        INVALID, ("requester", "nobody")),
    Bad("impact out of range", "anna", "CreateTicket", _create(impact=99), INVALID,
        ("impact", "99")),
    Bad("urgency out of range", "anna", "CreateTicket", _create(urgency=5), INVALID,
        ("urgency", "5")),
    Bad("type out of range", "anna", "CreateTicket", _create(type=7), INVALID, ("type", "7")),
    Bad("request id with spaces", "anna", "CreateTicket", _create(request_id="till 7"), INVALID,
        ("request_id",)),
    Bad("request id too long", "anna", "CreateTicket", _create(request_id="r" * 129), INVALID,
        ("request_id", "128")),
    # keys
    Bad("malformed key", "ivan", "GetTicket", lambda _: pb.GetTicketRequest(key="ret-1"),
        INVALID, ("key", f"{PREFIX}-123", "ret-1")),
    Bad("key with trailing junk", "ivan", "GetTicket",
        lambda _: pb.GetTicketRequest(key="RET-1; DROP TABLE tickets"), INVALID, ("key",)),
    Bad("empty key", "ivan", "GetTicket", lambda _: pb.GetTicketRequest(), INVALID, ("key",)),
    Bad("another node's prefix", "ivan", "GetTicket", lambda _: pb.GetTicketRequest(key="ABC-1"),
        INVALID, ("key", "another node", f"{PREFIX}-")),
    Bad("comment on another node's key", "ivan", "AddComment",
        lambda _: pb.AddCommentRequest(key="ABC-1", body="hello"), INVALID,
        ("key", "another node")),
    # changes
    Bad("unknown transition", "ivan", "TransitionTicket",
        lambda s: pb.TransitionTicketRequest(key=s.anna_ticket, transition="teleport"), INVALID,
        ("transition", "teleport", "start")),
    Bad("cancel without a reason", "anna", "TransitionTicket",
        lambda s: pb.TransitionTicketRequest(key=s.anna_ticket, transition="cancel"), INVALID,
        ("reason", "must not be empty")),
    Bad("empty comment", "anna", "AddComment",
        lambda s: pb.AddCommentRequest(key=s.anna_ticket, body=" \n "), INVALID,
        ("body", "must not be empty")),
    Bad("comment visibility out of range", "ivan", "AddComment",
        lambda s: pb.AddCommentRequest(key=s.anna_ticket, body="hi", visibility=unknown(9)),
        INVALID, ("visibility", "9")),
    Bad("priority out of range", "sergey", "UpdateTicket",
        lambda s: pb.UpdateTicketRequest(key=s.anna_ticket, priority=unknown(42)), INVALID,
        ("priority", "42")),
    Bad("oversized title in an edit", "ivan", "UpdateTicket",
        lambda s: pb.UpdateTicketRequest(key=s.anna_ticket, title="t" * 201), INVALID,
        ("title", "at most 200")),
    Bad("assign to a requester", "sergey", "AssignTicket",
        lambda s: pb.AssignTicketRequest(key=s.anna_ticket, assignee="anna"), INVALID,
        ("assignee", "anna")),
    Bad("assign to an unknown group", "sergey", "AssignTicket",
        lambda s: pb.AssignTicketRequest(key=s.anna_ticket, assignee="ivan", group="plumbing"),
        INVALID, ("group", "plumbing")),
    # listings
    Bad("garbage page token", "ivan", "ListTickets",
        lambda _: pb.ListTicketsRequest(page_token="bm9uc2Vuc2U"), INVALID, ("page_token",)),
    Bad("page token with an id past bigint", "ivan", "ListTickets",
        lambda _: pb.ListTicketsRequest(page_token=forged_token(10**30)), INVALID,
        ("page_token",)),
    Bad("page token with a negative id", "ivan", "ListTickets",
        lambda _: pb.ListTicketsRequest(page_token=forged_token(-1)), INVALID, ("page_token",)),
    Bad("page size too big", "ivan", "ListTickets", lambda _: pb.ListTicketsRequest(page_size=501),
        INVALID, ("page_size", "500")),
    Bad("unknown status filter", "ivan", "ListTickets",
        lambda _: pb.ListTicketsRequest(statuses=["lost"]), INVALID, ("statuses", "lost")),
    # who is calling
    Bad("missing token", None, "CreateTicket", _create(), grpc.StatusCode.UNAUTHENTICATED,
        ("authorization",)),
    Bad("garbage token", "garbage", "GetTicket", lambda s: pb.GetTicketRequest(key=s.anna_ticket),
        grpc.StatusCode.UNAUTHENTICATED, ("authorization",)),
    Bad("unknown token", "unknown", "CreateTicket", _create(), grpc.StatusCode.UNAUTHENTICATED,
        ("authorization", "unknown")),
    Bad("revoked token", "revoked", "AddComment",
        lambda s: pb.AddCommentRequest(key=s.anna_ticket, body="still there?"),
        grpc.StatusCode.UNAUTHENTICATED, ("authorization", "revoked")),
    # another store's tickets do not exist for a requester
    Bad("read another store's ticket", "anna", "GetTicket",
        lambda s: pb.GetTicketRequest(key=s.boris_ticket), grpc.StatusCode.NOT_FOUND,
        ("ticket", "not found")),
    Bad("comment on another store's ticket", "anna", "AddComment",
        lambda s: pb.AddCommentRequest(key=s.boris_ticket, body="ours?"),
        grpc.StatusCode.NOT_FOUND, ("not found",)),
    Bad("cancel another store's ticket", "anna", "TransitionTicket",
        lambda s: pb.TransitionTicketRequest(key=s.boris_ticket, transition="cancel", reason="x"),
        grpc.StatusCode.NOT_FOUND, ("not found",)),
    Bad("history of another store's ticket", "anna", "GetHistory",
        lambda s: pb.GetHistoryRequest(key=s.boris_ticket), grpc.StatusCode.NOT_FOUND,
        ("not found",)),
    Bad("ticket that does not exist", "ivan", "GetTicket",
        lambda _: pb.GetTicketRequest(key=f"{PREFIX}-999999"), grpc.StatusCode.NOT_FOUND,
        (f"{PREFIX}-999999", "not found")),
    # roles
    Bad("requester writes an internal comment", "anna", "AddComment",
        lambda s: pb.AddCommentRequest(
            key=s.anna_ticket, body="psst", visibility=pb.VISIBILITY_INTERNAL
        ),
        grpc.StatusCode.PERMISSION_DENIED, ("visibility", "internal")),
    Bad("requester edits", "anna", "UpdateTicket",
        lambda s: pb.UpdateTicketRequest(key=s.anna_ticket, title="Door sticks badly"),
        grpc.StatusCode.PERMISSION_DENIED, ("requester", "may not edit")),
    Bad("requester assigns", "anna", "AssignTicket",
        lambda s: pb.AssignTicketRequest(key=s.anna_ticket, assignee="ivan"),
        grpc.StatusCode.PERMISSION_DENIED, ("may not assign",)),
    Bad("requester files for another store", "anna", "CreateTicket", _create(store="vvo-002"),
        grpc.StatusCode.PERMISSION_DENIED, ("store", "own store")),
    Bad("requester files in another's name", "anna", "CreateTicket", _create(requester="boris"),
        grpc.StatusCode.PERMISSION_DENIED, ("requester", "own name")),
    Bad("requester lists another store", "anna", "ListTickets",
        lambda _: pb.ListTicketsRequest(store="vvo-002"), grpc.StatusCode.PERMISSION_DENIED,
        ("store",)),
    # the workflow
    Bad("agent confirms a new ticket", "ivan", "TransitionTicket",
        lambda s: pb.TransitionTicketRequest(key=s.anna_ticket, transition="confirm"),
        grpc.StatusCode.FAILED_PRECONDITION,
        ("'confirm'", "allowed for ivan from 'new': start, wait_requester, wait_partner")),
    Bad("requester resolves", "anna", "TransitionTicket",
        lambda s: pb.TransitionTicketRequest(key=s.anna_ticket, transition="resolve"),
        grpc.StatusCode.FAILED_PRECONDITION, ("'resolve'", "allowed for anna from 'new': cancel")),
    Bad("agent starts a cancelled ticket", "ivan", "TransitionTicket",
        lambda s: pb.TransitionTicketRequest(key=s.cancelled_ticket, transition="start"),
        grpc.StatusCode.FAILED_PRECONDITION, ("'start'", "allowed for ivan", "none")),
    Bad("comment on a cancelled ticket", "anna", "AddComment",
        lambda s: pb.AddCommentRequest(key=s.cancelled_ticket, body="hello?"),
        grpc.StatusCode.FAILED_PRECONDITION, ("cancelled",)),
    # idempotency
    Bad("reused request id with other content", "anna", "CreateTicket",
        lambda s: pb.CreateTicketRequest(
            request_id=s.reused_request_id, category="other", title="Till 8 is slow"
        ),
        grpc.StatusCode.ALREADY_EXISTS, ("request_id", "till-7", "other content")),
    # transport limits
    Bad("request over the 1 MiB receive limit", "anna", "CreateTicket",
        _create(description="x" * (ONE_MIB + 1024)), grpc.StatusCode.RESOURCE_EXHAUSTED,
        ("larger than max",)),
]  # fmt: skip


@pytest.mark.parametrize("bad", BAD_REQUESTS, ids=[b.name for b in BAD_REQUESTS])
def test_a_bad_request_is_refused_with_its_reason_and_writes_nothing(
    served: Served, bad: Bad
) -> None:
    before = state(served.desk)
    method = getattr(served.stub, bad.method)

    with pytest.raises(grpc.RpcError) as refused:
        method(bad.build(served), metadata=served.metadata(bad.who), timeout=10)

    error: Any = refused.value
    assert error.code() == bad.code, error.details()
    for fragment in bad.says:
        assert fragment in error.details()
    assert "internal error" not in error.details()
    assert state(served.desk) == before
    # the node keeps serving the same caller and others
    ticket = served.stub.GetTicket(
        pb.GetTicketRequest(key=served.anna_ticket), metadata=served.metadata("anna"), timeout=10
    )
    assert ticket.key == served.anna_ticket
    me = served.stub.WhoAmI(pb.WhoAmIRequest(), metadata=served.metadata("ivan"), timeout=10)
    assert me.login == "ivan"


def test_a_request_that_does_not_parse_is_refused_and_the_node_serves_on(
    served: Served,
) -> None:
    before = state(served.desk)
    body = pb.CreateTicketRequest(category="other", title="@@", store="msk-001")
    garbled = body.SerializeToString().replace(b"@@", b"\xff\xfe")  # not UTF-8
    create = served.channel.unary_unary(
        "/hdx.helpdesk.v1.HelpDesk/CreateTicket",
        request_serializer=bytes,
        response_deserializer=pb.Ticket.FromString,
    )

    with pytest.raises(grpc.RpcError) as refused:
        create(garbled, metadata=served.metadata("ivan"), timeout=10)

    error: Any = refused.value
    assert error.code() != grpc.StatusCode.DEADLINE_EXCEEDED
    assert state(served.desk) == before
    me = served.stub.WhoAmI(pb.WhoAmIRequest(), metadata=served.metadata("ivan"), timeout=10)
    assert me.login == "ivan"


def test_the_matrix_leaves_no_trace_in_the_history(served: Served) -> None:
    """After every refusal, each ticket still holds only what its setup wrote."""
    tickets, histories, comments = state(served.desk)
    assert len(tickets) == 4
    for ticket, entries in zip(tickets, histories, strict=True):
        actions = [e.change.action for e in entries]
        assert actions.count("created") == 1, ticket.key
        assert "commented" not in actions
    assert all(not c for c in comments)


# -- idempotent creates over the wire ----------------------------------------------------


def _history_count(desk: Desk, key: str, action: str) -> int:
    entries = desk.tickets.history(desk.actor("admin"), key)
    return sum(1 for e in entries if e.change.action == action)


def test_a_retried_create_returns_the_same_ticket(api: Api) -> None:
    request = pb.CreateTicketRequest(
        request_id="pos-17:till-3:0001", category="pos-down", title="Till 3 is dead"
    )
    metadata = api["anna"].metadata
    first = api["anna"].stub.CreateTicket(request, metadata=metadata, timeout=10)
    with grpc.insecure_channel(api.target) as channel:
        again = helpdesk_pb2_grpc.HelpDeskStub(channel).CreateTicket(
            request, metadata=metadata, timeout=10
        )

    assert again.key == first.key
    assert again.created_at == first.created_at
    listed, _ = api["ivan"].list_tickets()
    assert [v.ticket.key for v in listed] == [first.key]
    assert _history_count(api.desk, first.key, "created") == 1


def test_racing_retries_of_one_create_file_one_ticket(api: Api) -> None:
    request = pb.CreateTicketRequest(
        request_id="monitoring-4411", category="network-down", title="Store offline"
    )
    keys: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def retry() -> None:
        try:
            start.wait(timeout=10)
            reply = api["anna"].stub.CreateTicket(
                request, metadata=api["anna"].metadata, timeout=20
            )
            keys.append(reply.key)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=retry) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors
    assert len(keys) == 6
    assert len(set(keys)) == 1
    listed, _ = api["ivan"].list_tickets()
    assert [v.ticket.key for v in listed] == keys[:1]
    assert _history_count(api.desk, keys[0], "created") == 1


def test_one_request_id_is_per_requester(api: Api) -> None:
    """Two stores' tills may pick the same request id; each files its own ticket."""
    draft = TicketDraft(category="scales", title="Scales print no labels", request_id="till-1")
    anna = api["anna"].create(draft)
    boris = api["boris"].create(draft)
    assert anna.ticket.key != boris.ticket.key
    assert (anna.ticket.store, boris.ticket.store) == ("msk-001", "vvo-002")


# -- listing -------------------------------------------------------------------------


def test_the_queue_pages_in_order_without_gaps_or_repeats(api: Api) -> None:
    desk = api.desk
    filed: list[tuple[str, str]] = []
    for login, category in [
        ("anna", "other"),
        ("boris", "scales"),
        ("anna", "network-down"),
        ("boris", "pos-down"),
        ("anna", "other"),
        ("boris", "card-terminal"),
        ("anna", "pos-down"),
        ("boris", "other"),
    ]:
        api[login].create(TicketDraft(category=category, title=f"{category} at {login}"))
        filed.append((login, category))
        desk.clock.advance(timedelta(minutes=3))

    pages: list[list[Ticket]] = []
    token = ""
    while True:
        response = api["ivan"].stub.ListTickets(
            pb.ListTicketsRequest(page_size=3, page_token=token),
            metadata=api["ivan"].metadata,
            timeout=10,
        )
        pages.append([codec.ticket_from_pb(t)[0] for t in response.tickets])
        token = response.next_page_token
        if not token:
            break
        assert len(pages) < 10, "paging does not end"

    assert [len(p) for p in pages] == [3, 3, 2]
    queue = [t for page in pages for t in page]
    assert len({t.key for t in queue}) == len(filed)
    order = [
        (not t.stop_trade, t.due_at or FAR_FUTURE, t.priority, t.created_at, t.id) for t in queue
    ]
    assert order == sorted(order)
    assert [t.title for t in queue] == [
        "pos-down at boris",  # stop-trade, the nearest deadline first
        "card-terminal at boris",
        "pos-down at anna",
        "network-down at anna",  # P1, a flagship's outage: respond in 30 min
        "other at anna",  # P3, Moscow is open: respond in 4 h
        "other at anna",
        "scales at boris",  # filed after hours in Vladivostok: due tomorrow
        "other at boris",
    ]

    # a requester pages through their own store's queue only
    mine: list[str] = []
    token = ""
    while True:
        views, token = api["anna"].list_tickets(TicketQuery(limit=2), page_token=token)
        mine += [v.ticket.key for v in views]
        if not token:
            break
    assert mine == [t.key for t in queue if t.store == "msk-001"]


def test_a_ticket_filed_between_pages_does_not_shift_the_next_page(api: Api) -> None:
    for n in range(4):
        api["boris"].create(TicketDraft(category="other", title=f"Shelf {n} wobbles"))
        api.desk.clock.advance(timedelta(minutes=1))
    first, token = api["ivan"].list_tickets(TicketQuery(limit=2))
    api["boris"].create(TicketDraft(category="pos-down", title="Till dead"))  # jumps the queue
    second, last = api["ivan"].list_tickets(TicketQuery(limit=2), page_token=token)

    seen = [v.ticket.title for v in first + second]
    assert seen == ["Shelf 0 wobbles", "Shelf 1 wobbles", "Shelf 2 wobbles", "Shelf 3 wobbles"]
    assert last == ""


# -- standard services -------------------------------------------------------------------


@pytest.mark.parametrize("service", ["", "hdx.helpdesk.v1.HelpDesk"])
def test_health_check_says_serving(api: Api, service: str) -> None:
    with api.channel() as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_health_check_of_an_unknown_service_is_not_found(api: Api) -> None:
    with api.channel() as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
    error: Any = refused.value
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_helpdesk_service(api: Api) -> None:
    with api.channel() as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        replies = list(stub.ServerReflectionInfo(iter([request]), timeout=10))
        names = {s.name for s in replies[0].list_services_response.service}
        described = reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="hdx.helpdesk.v1.HelpDesk"
        )
        files = list(stub.ServerReflectionInfo(iter([described]), timeout=10))
    assert "hdx.helpdesk.v1.HelpDesk" in names
    assert "grpc.health.v1.Health" in names
    assert files[0].file_descriptor_response.file_descriptor_proto  # grpcurl can describe it
