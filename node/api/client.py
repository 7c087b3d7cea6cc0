"""A typed client of the HelpDesk API, for the CLI, the demo and partner systems.

Calls return domain values. A failed call raises `ApiError` with the gRPC status
name and the server's message. Every call is retried a few times while the
node is UNAVAILABLE; creates are safe to retry because each carries a request id.
"""

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TypeVar

import grpc
from hdx.helpdesk.v1 import helpdesk_pb2_grpc
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from node.api import codec
from node.domain.ticket import (
    Category,
    Comment,
    HistoryEntry,
    Ticket,
    TicketDraft,
    TicketPatch,
    TicketQuery,
    User,
    Visibility,
)

R = TypeVar("R")


class ApiError(Exception):
    """A call the node refused or could not serve.

    Attributes:
        code: the gRPC status name, e.g. "FAILED_PRECONDITION".
        details: the node's message.
    """

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details


@dataclass(frozen=True, slots=True)
class TicketView:
    """A ticket as the caller sees it, with the transitions the caller may take now."""

    ticket: Ticket
    transitions: tuple[str, ...]


def _unavailable(error: BaseException) -> bool:
    return isinstance(error, grpc.RpcError) and error.code() is grpc.StatusCode.UNAVAILABLE


class HelpDeskClient:
    """A connection to one node, as one user.

    Args:
        target: host:port of the node.
        token: the user's API token.
        attempts: tries per call while the node is unavailable.
    """

    def __init__(self, target: str, token: str, *, attempts: int = 4) -> None:
        self.channel = grpc.insecure_channel(target)
        self.stub = helpdesk_pb2_grpc.HelpDeskStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),)
        self.retrying = Retrying(
            retry=retry_if_exception(_unavailable),
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=0.1, max=2),
            reraise=True,
        )

    def __enter__(self) -> "HelpDeskClient":
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def _call(self, method: Callable[..., R], request: object) -> R:
        try:
            return self.retrying(method, request, metadata=self.metadata, timeout=30)
        except grpc.RpcError as error:
            raise ApiError(error.code().name, error.details() or "") from None

    def _ticket(self, method: Callable[..., codec.TicketMessage], request: object) -> TicketView:
        """Calls a method that answers with a ticket."""
        return _view(codec.ticket_from_pb(self._call(method, request)))

    def create(self, draft: TicketDraft) -> TicketView:
        """Files a ticket; a request id is made up when draft has none, so retries are safe."""
        if not draft.request_id:
            draft = replace(draft, request_id=uuid.uuid4().hex)
        return self._ticket(self.stub.CreateTicket, codec.draft_to_pb(draft))

    def get(self, key: str) -> TicketView:
        return self._ticket(self.stub.GetTicket, codec.get_request(key))

    def list_tickets(
        self,
        query: TicketQuery = TicketQuery(),
        *,
        include_closed: bool = False,
        page_token: str = "",
    ) -> tuple[list[TicketView], str]:
        """One page of tickets in queue order and the token of the next ('' on the last)."""
        request = codec.query_to_pb(query, include_closed=include_closed, page_token=page_token)
        tickets, next_page_token = codec.tickets_from_pb(self._call(self.stub.ListTickets, request))
        return [_view(codec.ticket_from_pb(t)) for t in tickets], next_page_token

    def update(self, key: str, patch: TicketPatch) -> TicketView:
        return self._ticket(self.stub.UpdateTicket, codec.patch_to_pb(key, patch))

    def transition(self, key: str, transition: str, reason: str = "") -> TicketView:
        request = codec.transition_request(key, transition, reason)
        return self._ticket(self.stub.TransitionTicket, request)

    def assign(
        self, key: str, assignee: str = "", group: str = "", co_assignees: tuple[str, ...] = ()
    ) -> TicketView:
        request = codec.assign_request(key, assignee, group, co_assignees)
        return self._ticket(self.stub.AssignTicket, request)

    def hand_off(self, key: str, partner: str, note: str = "") -> TicketView:
        """Hands a ticket to a contractor node; the ticket comes back with its links."""
        return self._ticket(self.stub.HandOffTicket, codec.handoff_request(key, partner, note))

    def comment(self, key: str, body: str, visibility: Visibility = Visibility.PUBLIC) -> Comment:
        request = codec.comment_request(key, body, visibility)
        return codec.comment_from_pb(self._call(self.stub.AddComment, request))

    def comments(self, key: str) -> list[Comment]:
        return codec.comments_from_pb(
            self._call(self.stub.ListComments, codec.comments_request(key))
        )

    def history(self, key: str) -> list[HistoryEntry]:
        return codec.entries_from_pb(self._call(self.stub.GetHistory, codec.history_request(key)))

    def categories(self) -> list[Category]:
        response = self._call(self.stub.ListCategories, codec.categories_request())
        return codec.categories_from_pb(response)

    def whoami(self) -> User:
        return codec.identity_from_pb(self._call(self.stub.WhoAmI, codec.whoami_request()))

    def watch(self, after_event_id: int = 0, key: str = "") -> Iterator[HistoryEntry]:
        """Changes as they happen, until the caller stops iterating or closes the client."""
        request = codec.watch_request(after_event_id, key)
        try:
            for event in self.stub.WatchTickets(request, metadata=self.metadata):
                yield codec.event_from_pb(event)
        except grpc.RpcError as error:
            if error.code() is grpc.StatusCode.CANCELLED:
                return
            raise ApiError(error.code().name, error.details() or "") from None


def _view(decoded: tuple[Ticket, list[str]]) -> TicketView:
    ticket, transitions = decoded
    return TicketView(ticket, tuple(transitions))
