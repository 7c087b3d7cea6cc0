"""Protobuf messages of hdx.helpdesk.v1 to domain values and back: the only module that does."""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import TypeVar

from google.protobuf.timestamp_pb2 import Timestamp
from hdx.helpdesk.v1 import helpdesk_pb2 as pb

from node.domain import paging, validation
from node.domain.errors import InvalidArgument
from node.domain.partner import LinkState, Side, TicketLink
from node.domain.roles import Role
from node.domain.sla import ClockState, ClockView, TicketSla, Timer
from node.domain.ticket import (
    Category,
    Change,
    Comment,
    HistoryEntry,
    Level,
    Priority,
    Ticket,
    TicketDraft,
    TicketPatch,
    TicketQuery,
    TicketType,
    User,
    Visibility,
)

TicketMessage = pb.Ticket
"""The wire form of a ticket, for callers that pass it on to this module unopened."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

E = TypeVar("E", bound=Enum)
W = TypeVar("W", bound=int)

_TYPES: Mapping[TicketType, pb.TicketType.ValueType] = {
    TicketType.INCIDENT: pb.TICKET_TYPE_INCIDENT,
    TicketType.SERVICE_REQUEST: pb.TICKET_TYPE_SERVICE_REQUEST,
    TicketType.ALERT: pb.TICKET_TYPE_ALERT,
}
_LEVELS: Mapping[Level, pb.Level.ValueType] = {
    Level.LOW: pb.LEVEL_LOW,
    Level.MEDIUM: pb.LEVEL_MEDIUM,
    Level.HIGH: pb.LEVEL_HIGH,
    Level.CRITICAL: pb.LEVEL_CRITICAL,
}
_PRIORITIES: Mapping[Priority, pb.Priority.ValueType] = {
    Priority.P1: pb.PRIORITY_P1,
    Priority.P2: pb.PRIORITY_P2,
    Priority.P3: pb.PRIORITY_P3,
    Priority.P4: pb.PRIORITY_P4,
}
_VISIBILITIES: Mapping[Visibility, pb.Visibility.ValueType] = {
    Visibility.PUBLIC: pb.VISIBILITY_PUBLIC,
    Visibility.INTERNAL: pb.VISIBILITY_INTERNAL,
}
_ROLES: Mapping[Role, pb.Role.ValueType] = {
    Role.REQUESTER: pb.ROLE_REQUESTER,
    Role.AGENT: pb.ROLE_AGENT,
    Role.SUPERVISOR: pb.ROLE_SUPERVISOR,
    Role.ADMIN: pb.ROLE_ADMIN,
    Role.SYSTEM: pb.ROLE_SYSTEM,
}


def _decode(field: str, value: int, table: Mapping[E, W]) -> E | None:
    """The domain value of a wire enum; None for 0 (unspecified)."""
    if value == 0:
        return None
    for domain, wire in table.items():
        if wire == value:
            return domain
    raise InvalidArgument(field, f"{value} is not a valid value")


def _required(field: str, value: int, table: Mapping[E, W]) -> E:
    decoded = _decode(field, value, table)
    if decoded is None:
        raise InvalidArgument(field, "must be set")
    return decoded


def _reverse(table: Mapping[E, W], value: int) -> E:
    decoded = _decode("response", value, table)
    assert decoded is not None
    return decoded


def _wire(value: E | None, table: Mapping[E, W], unspecified: W) -> W:
    return unspecified if value is None else table[value]


def _put_instant(field: Timestamp, value: datetime | None) -> None:
    """Sets a message's Timestamp field to an instant (timezone-aware, as every instant of
    the domain); None leaves it unset. Setting the field in place costs less than building
    a Timestamp for the message's constructor, which copies it."""
    if value is not None:
        since = value - _EPOCH
        field.seconds = since.days * 86_400 + since.seconds
        field.nanos = since.microseconds * 1000


def _instant(stamp: Timestamp, present: bool) -> datetime | None:
    return stamp.ToDatetime(tzinfo=UTC) if present else None


# -- server side: requests in, domain values out ------------------------------------


def draft_from_pb(request: pb.CreateTicketRequest) -> TicketDraft:
    return TicketDraft(
        category=request.category,
        title=request.title,
        description=request.description,
        store=request.store,
        request_id=request.request_id,
        ticket_type=_decode("type", request.type, _TYPES),
        impact=_decode("impact", request.impact, _LEVELS),
        urgency=_decode("urgency", request.urgency, _LEVELS),
        requester=request.requester,
    )


def patch_from_pb(request: pb.UpdateTicketRequest) -> TicketPatch:
    has = request.HasField
    return TicketPatch(
        title=request.title if has("title") else None,
        description=request.description if has("description") else None,
        category=request.category if has("category") else None,
        ticket_type=_required("type", request.type, _TYPES) if has("type") else None,
        impact=_required("impact", request.impact, _LEVELS) if has("impact") else None,
        urgency=_required("urgency", request.urgency, _LEVELS) if has("urgency") else None,
        priority=_required("priority", request.priority, _PRIORITIES) if has("priority") else None,
    )


def query_from_pb(request: pb.ListTicketsRequest) -> TicketQuery:
    def code(field: str) -> str | None:
        value: str = getattr(request, field)
        return validation.code(field, value) if value else None

    return TicketQuery(
        statuses=tuple(request.statuses),
        assignee=code("assignee"),
        group=code("group"),
        store=code("store"),
        category=code("category"),
        priority=_decode("priority", request.priority, _PRIORITIES),
        stop_trade_only=request.stop_trade_only,
        after=paging.decode(request.page_token) if request.page_token else None,
        limit=validation.page_size(request.page_size),
    )


def handoff_from_pb(request: pb.HandOffTicketRequest) -> tuple[str, str, str]:
    """The key, the partner's node id and the note of a hand-off, checked."""
    note = validation.text(
        "note", request.note, max_len=validation.REASON_MAX, required=False, multiline=True
    )
    return request.key, validation.code("partner", request.partner), note


def visibility_from_pb(value: int) -> Visibility:
    return _decode("visibility", value, _VISIBILITIES) or Visibility.PUBLIC


def ticket_to_pb(ticket: Ticket, transitions: Iterable[str]) -> pb.Ticket:
    message = pb.Ticket(
        key=ticket.key,
        title=ticket.title,
        description=ticket.description,
        type=_TYPES[ticket.ticket_type],
        category=ticket.category,
        requester=ticket.requester,
        store=ticket.store,
        impact=_LEVELS[ticket.impact],
        urgency=_LEVELS[ticket.urgency],
        priority=_PRIORITIES[ticket.priority],
        stop_trade=ticket.stop_trade,
        status=ticket.status,
        assignee=ticket.assignee or "",
        co_assignees=sorted(ticket.co_assignees),
        group=ticket.group or "",
        transitions=list(transitions),
        line=ticket.line,
        sla_policy=ticket.sla.policy,
    )
    _put_instant(message.created_at, ticket.created_at)
    _put_instant(message.updated_at, ticket.updated_at)
    _put_instant(message.resolved_at, ticket.resolved_at)
    _put_instant(message.closed_at, ticket.closed_at)
    _put_instant(message.due_at, ticket.due_at)
    for clock in ticket.clocks:
        _put_clock(message.clocks.add(), clock)
    for link in ticket.links:
        _put_link(message.links.add(), link)
    return message


def _put_link(message: pb.Link, link: TicketLink) -> None:
    """Fills an empty Link message (one just added to a ticket's)."""
    message.partner = link.partner
    message.partner_name = link.partner_name
    message.side = link.side.value
    message.state = link.state.value
    message.remote_ticket = link.remote_ticket
    _put_instant(message.created_at, link.created_at)


def _put_clock(message: pb.Clock, clock: ClockView) -> None:
    """Fills an empty Clock message (one just added to a ticket's)."""
    message.timer = clock.timer.value
    message.cycle = clock.cycle
    message.policy = clock.policy
    message.state = clock.state.value
    message.target_seconds = clock.target_s
    message.elapsed_seconds = clock.elapsed_s
    message.remaining_seconds = clock.remaining_s
    message.paused_seconds = clock.paused_s
    message.breached = clock.breached
    _put_instant(message.started_at, clock.started_at)
    _put_instant(message.due_at, clock.due_at)
    _put_instant(message.ended_at, clock.ended_at)


def comment_to_pb(comment: Comment) -> pb.Comment:
    message = pb.Comment(
        id=comment.id,
        ticket_key=comment.ticket_key,
        author=comment.author,
        visibility=_VISIBILITIES[comment.visibility],
        body=comment.body,
    )
    _put_instant(message.created_at, comment.created_at)
    return message


def history_to_pb(entry: HistoryEntry) -> pb.HistoryEntry:
    message = pb.HistoryEntry(
        id=entry.id,
        ticket_key=entry.ticket_key,
        actor=entry.actor,
        action=entry.change.action,
        field=entry.change.field,
        before=entry.change.before,
        after=entry.change.after,
    )
    _put_instant(message.at, entry.at)
    return message


def category_to_pb(category: Category) -> pb.Category:
    return pb.Category(
        code=category.code,
        name=category.name,
        type=_TYPES[category.ticket_type],
        group=category.group or "",
        stop_trade=category.stop_trade,
        impact=_LEVELS[category.impact],
        urgency=_LEVELS[category.urgency],
    )


def identity_to_pb(user: User) -> pb.Identity:
    return pb.Identity(
        login=user.login, name=user.name, role=_ROLES[user.role], store=user.store or ""
    )


def tickets_to_pb(tickets: list[pb.Ticket], next_page_token: str) -> pb.ListTicketsResponse:
    return pb.ListTicketsResponse(tickets=tickets, next_page_token=next_page_token)


def comments_to_pb(comments: Iterable[Comment]) -> pb.ListCommentsResponse:
    return pb.ListCommentsResponse(comments=[comment_to_pb(c) for c in comments])


def entries_to_pb(entries: Iterable[HistoryEntry]) -> pb.GetHistoryResponse:
    return pb.GetHistoryResponse(entries=[history_to_pb(e) for e in entries])


def event_to_pb(entry: HistoryEntry) -> pb.TicketEvent:
    return pb.TicketEvent(entry=history_to_pb(entry))


def categories_to_pb(categories: Iterable[Category]) -> pb.ListCategoriesResponse:
    return pb.ListCategoriesResponse(categories=[category_to_pb(c) for c in categories])


# -- client side: domain values in, requests out, responses back ---------------------


def draft_to_pb(draft: TicketDraft) -> pb.CreateTicketRequest:
    return pb.CreateTicketRequest(
        request_id=draft.request_id,
        category=draft.category,
        title=draft.title,
        description=draft.description,
        store=draft.store,
        type=_wire(draft.ticket_type, _TYPES, pb.TICKET_TYPE_UNSPECIFIED),
        impact=_wire(draft.impact, _LEVELS, pb.LEVEL_UNSPECIFIED),
        urgency=_wire(draft.urgency, _LEVELS, pb.LEVEL_UNSPECIFIED),
        requester=draft.requester,
    )


def query_to_pb(
    query: TicketQuery, *, include_closed: bool, page_token: str
) -> pb.ListTicketsRequest:
    return pb.ListTicketsRequest(
        statuses=list(query.statuses),
        assignee=query.assignee or "",
        group=query.group or "",
        store=query.store or "",
        category=query.category or "",
        priority=_wire(query.priority, _PRIORITIES, pb.PRIORITY_UNSPECIFIED),
        stop_trade_only=query.stop_trade_only,
        include_closed=include_closed,
        page_size=query.limit,
        page_token=page_token,
    )


def get_request(key: str) -> pb.GetTicketRequest:
    return pb.GetTicketRequest(key=key)


def transition_request(key: str, transition: str, reason: str) -> pb.TransitionTicketRequest:
    return pb.TransitionTicketRequest(key=key, transition=transition, reason=reason)


def assign_request(
    key: str, assignee: str, group: str, co_assignees: Iterable[str]
) -> pb.AssignTicketRequest:
    return pb.AssignTicketRequest(
        key=key, assignee=assignee, group=group, co_assignees=list(co_assignees)
    )


def handoff_request(key: str, partner: str, note: str) -> pb.HandOffTicketRequest:
    return pb.HandOffTicketRequest(key=key, partner=partner, note=note)


def comment_request(key: str, body: str, visibility: Visibility) -> pb.AddCommentRequest:
    return pb.AddCommentRequest(key=key, body=body, visibility=_VISIBILITIES[visibility])


def comments_request(key: str) -> pb.ListCommentsRequest:
    return pb.ListCommentsRequest(key=key)


def history_request(key: str) -> pb.GetHistoryRequest:
    return pb.GetHistoryRequest(key=key)


def categories_request() -> pb.ListCategoriesRequest:
    return pb.ListCategoriesRequest()


def whoami_request() -> pb.WhoAmIRequest:
    return pb.WhoAmIRequest()


def watch_request(after_event_id: int, key: str) -> pb.WatchTicketsRequest:
    return pb.WatchTicketsRequest(after_event_id=after_event_id, key=key)


def tickets_from_pb(response: pb.ListTicketsResponse) -> tuple[list[pb.Ticket], str]:
    return list(response.tickets), response.next_page_token


def comments_from_pb(response: pb.ListCommentsResponse) -> list[Comment]:
    return [comment_from_pb(c) for c in response.comments]


def entries_from_pb(response: pb.GetHistoryResponse) -> list[HistoryEntry]:
    return [history_from_pb(e) for e in response.entries]


def categories_from_pb(response: pb.ListCategoriesResponse) -> list[Category]:
    return [category_from_pb(c) for c in response.categories]


def event_from_pb(event: pb.TicketEvent) -> HistoryEntry:
    return history_from_pb(event.entry)


def ticket_from_pb(message: pb.Ticket) -> tuple[Ticket, list[str]]:
    """The ticket a server sent and the transitions the caller may take on it."""
    ticket = Ticket(
        id=int(message.key.rsplit("-", 1)[1]),
        key=message.key,
        title=message.title,
        description=message.description,
        ticket_type=_reverse(_TYPES, message.type),
        category=message.category,
        requester=message.requester,
        store=message.store,
        impact=_reverse(_LEVELS, message.impact),
        urgency=_reverse(_LEVELS, message.urgency),
        priority=_reverse(_PRIORITIES, message.priority),
        stop_trade=message.stop_trade,
        status=message.status,
        created_at=message.created_at.ToDatetime(tzinfo=UTC),
        updated_at=message.updated_at.ToDatetime(tzinfo=UTC),
        assignee=message.assignee or None,
        group=message.group or None,
        co_assignees=frozenset(message.co_assignees),
        resolved_at=_instant(message.resolved_at, message.HasField("resolved_at")),
        closed_at=_instant(message.closed_at, message.HasField("closed_at")),
        line=message.line,
        sla=TicketSla(status=message.status, policy=message.sla_policy),
        due_at=_instant(message.due_at, message.HasField("due_at")),
        clocks=tuple(_clock_from_pb(clock) for clock in message.clocks),
        links=tuple(_link_from_pb(link) for link in message.links),
    )
    return ticket, list(message.transitions)


def _link_from_pb(message: pb.Link) -> TicketLink:
    return TicketLink(
        partner=message.partner,
        partner_name=message.partner_name,
        side=Side(message.side),
        state=LinkState(message.state),
        remote_ticket=message.remote_ticket,
        created_at=message.created_at.ToDatetime(tzinfo=UTC),
    )


def _clock_from_pb(message: pb.Clock) -> ClockView:
    return ClockView(
        timer=Timer(message.timer),
        cycle=message.cycle,
        policy=message.policy,
        state=ClockState(message.state),
        target_s=message.target_seconds,
        elapsed_s=message.elapsed_seconds,
        paused_s=message.paused_seconds,
        started_at=message.started_at.ToDatetime(tzinfo=UTC),
        due_at=_instant(message.due_at, message.HasField("due_at")),
        ended_at=_instant(message.ended_at, message.HasField("ended_at")),
    )


def comment_from_pb(message: pb.Comment) -> Comment:
    return Comment(
        id=message.id,
        ticket_key=message.ticket_key,
        author=message.author,
        visibility=_reverse(_VISIBILITIES, message.visibility),
        body=message.body,
        created_at=message.created_at.ToDatetime(tzinfo=UTC),
    )


def history_from_pb(message: pb.HistoryEntry) -> HistoryEntry:
    return HistoryEntry(
        id=message.id,
        ticket_key=message.ticket_key,
        store="",
        at=message.at.ToDatetime(tzinfo=UTC),
        actor=message.actor,
        change=Change(message.action, message.field, message.before, message.after),
    )


def category_from_pb(message: pb.Category) -> Category:
    return Category(
        code=message.code,
        name=message.name,
        ticket_type=_reverse(_TYPES, message.type),
        impact=_reverse(_LEVELS, message.impact),
        urgency=_reverse(_LEVELS, message.urgency),
        stop_trade=message.stop_trade,
        group=message.group or None,
    )


def identity_from_pb(message: pb.Identity) -> User:
    return User(message.login, message.name, _reverse(_ROLES, message.role), message.store or None)


def patch_to_pb(key: str, patch: TicketPatch) -> pb.UpdateTicketRequest:
    request = pb.UpdateTicketRequest(key=key)
    if patch.title is not None:
        request.title = patch.title
    if patch.description is not None:
        request.description = patch.description
    if patch.category is not None:
        request.category = patch.category
    if patch.ticket_type is not None:
        request.type = _TYPES[patch.ticket_type]
    if patch.impact is not None:
        request.impact = _LEVELS[patch.impact]
    if patch.urgency is not None:
        request.urgency = _LEVELS[patch.urgency]
    if patch.priority is not None:
        request.priority = _PRIORITIES[patch.priority]
    return request
