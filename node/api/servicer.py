"""The HelpDesk gRPC service: authenticate, decode, run the use case, encode.

Use cases block on the database, so each runs on a worker thread of the
server's executor while the asyncio loop keeps serving other calls and the
open WatchTickets streams (which hold no thread while they wait).
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import Executor
from typing import Any, TypeVar

import grpc
from hdx.helpdesk.v1 import helpdesk_pb2 as pb
from hdx.helpdesk.v1 import helpdesk_pb2_grpc

from node.api import codec
from node.domain.errors import (
    DomainError,
)
from node.domain.roles import Actor
from node.domain.ticket import Ticket
from node.services.admin import AdminService
from node.services.tickets import TicketService

T = TypeVar("T")
R = TypeVar("R")
Context = grpc.aio.ServicerContext[Any, Any]
log = logging.getLogger(__name__)

HandOff = Callable[[Actor, str, str, str], object]
"""Hands a ticket to a partner node: (actor, ticket key, partner node id, note). The
exchange provides it; the node's API knows it only as this callable."""
WATCH_POLL_S = 1.0
"""How often a watcher looks for changes committed by other processes of the node."""


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    for name, value in metadata or ():
        if name == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value.removeprefix("Bearer ").strip()
    return ""


class HelpDeskServicer(helpdesk_pb2_grpc.HelpDeskServicer):
    """The HelpDesk service of one node.

    Args:
        hand_off: hands tickets to partner nodes; None on a node that serves no exchange
            (HandOffTicket is then UNIMPLEMENTED).
    """

    def __init__(
        self,
        tickets: TicketService,
        admin: AdminService,
        executor: Executor,
        hand_off: HandOff | None = None,
    ) -> None:
        self.tickets = tickets
        self.admin = admin
        self.executor = executor
        self.hand_off = hand_off

    async def _run(
        self, context: Context, use_case: Callable[[Actor], T], *, write: bool = False
    ) -> T:
        """Runs use_case for the caller on a worker thread, in one transaction with the
        caller's authentication; write says whether it changes anything."""
        return await self._run_then(context, use_case, _result, write=write)

    async def _run_then(
        self,
        context: Context,
        use_case: Callable[[Actor], T],
        answer: Callable[[Actor, T], R],
        *,
        write: bool = False,
        category: str = "",
        store: str = "",
    ) -> R:
        """Runs use_case as `_run` does, then answer(actor, its result) on the same worker
        thread once the transaction has ended: on SQLite, where writers take turns, the
        next writer need not wait for the answer to be built. A category and store the
        use case looks up are read with the caller's authentication (`AdminService.run_as`).
        """
        token = bearer_token(context.invocation_metadata())

        def work() -> R:
            actor, result = self.admin.run_as(
                token, lambda a: (a, use_case(a)), write=write, category=category, store=store
            )
            return answer(actor, result)

        return await self._call(context, work)

    async def _call(self, context: Context, work: Callable[[], T]) -> T:
        """Runs work on a worker thread; a domain error aborts the call with its status."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, work)
        except DomainError as error:
            await context.abort(grpc.StatusCode[error.code], str(error))
        except Exception:
            log.exception("internal error")
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the node's log")
        raise AssertionError("abort returns only by raising")

    def _ticket(self, actor: Actor, ticket: Ticket) -> pb.Ticket:
        return codec.ticket_to_pb(ticket, self.tickets.transitions(actor, ticket))

    async def CreateTicket(self, request: pb.CreateTicketRequest, context: Context) -> pb.Ticket:
        return await self._run_then(
            context,
            lambda a: self.tickets.create(a, codec.draft_from_pb(request)),
            self._ticket,
            write=True,
            category=request.category,
            store=request.store,
        )

    async def GetTicket(self, request: pb.GetTicketRequest, context: Context) -> pb.Ticket:
        return await self._run_then(
            context, lambda a: self.tickets.get(a, request.key), self._ticket
        )

    async def ListTickets(
        self, request: pb.ListTicketsRequest, context: Context
    ) -> pb.ListTicketsResponse:
        def use_case(actor: Actor) -> pb.ListTicketsResponse:
            query = codec.query_from_pb(request)
            tickets, token = self.tickets.list_tickets(
                actor, query, include_closed=request.include_closed
            )
            return codec.tickets_to_pb([self._ticket(actor, t) for t in tickets], token)

        return await self._run(context, use_case)

    async def UpdateTicket(self, request: pb.UpdateTicketRequest, context: Context) -> pb.Ticket:
        return await self._run_then(
            context,
            lambda a: self.tickets.update(a, request.key, codec.patch_from_pb(request)),
            self._ticket,
            write=True,
        )

    async def TransitionTicket(
        self, request: pb.TransitionTicketRequest, context: Context
    ) -> pb.Ticket:
        return await self._run_then(
            context,
            lambda a: self.tickets.transition(a, request.key, request.transition, request.reason),
            self._ticket,
            write=True,
        )

    async def AssignTicket(self, request: pb.AssignTicketRequest, context: Context) -> pb.Ticket:
        def use_case(actor: Actor) -> Ticket:
            return self.tickets.assign(
                actor,
                request.key,
                request.assignee or None,
                request.group or None,
                frozenset(request.co_assignees),
            )

        return await self._run_then(context, use_case, self._ticket, write=True)

    async def HandOffTicket(self, request: pb.HandOffTicketRequest, context: Context) -> pb.Ticket:
        hand_off = self.hand_off
        if hand_off is None:
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED,
                "HandOffTicket: this node serves no exchange, so it has no partners",
            )
            raise AssertionError("abort returns only by raising")

        def use_case(actor: Actor) -> Ticket:
            key, partner, note = codec.handoff_from_pb(request)
            hand_off(actor, key, partner, note)
            return self.tickets.get(actor, key)

        return await self._run_then(context, use_case, self._ticket, write=True)

    async def AddComment(self, request: pb.AddCommentRequest, context: Context) -> pb.Comment:
        def use_case(actor: Actor) -> pb.Comment:
            visibility = codec.visibility_from_pb(request.visibility)
            return codec.comment_to_pb(
                self.tickets.comment(actor, request.key, request.body, visibility)
            )

        return await self._run(context, use_case, write=True)

    async def ListComments(
        self, request: pb.ListCommentsRequest, context: Context
    ) -> pb.ListCommentsResponse:
        return await self._run(
            context,
            lambda a: codec.comments_to_pb(self.tickets.comments(a, request.key)),
        )

    async def GetHistory(
        self, request: pb.GetHistoryRequest, context: Context
    ) -> pb.GetHistoryResponse:
        return await self._run(
            context,
            lambda a: codec.entries_to_pb(self.tickets.history(a, request.key)),
        )

    async def WatchTickets(
        self, request: pb.WatchTicketsRequest, context: Context
    ) -> AsyncIterator[pb.TicketEvent]:
        def start(actor: Actor) -> tuple[Actor, str]:
            key = self.tickets.get(actor, request.key).key if request.key else ""
            return actor, key

        actor, key = await self._run(context, start)
        cursor = await self._call(
            context, lambda: self.tickets.start_cursor(request.after_event_id)
        )
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        unsubscribe = self.tickets.feed.subscribe(lambda: _call_soon(loop, wake.set))
        try:
            while True:
                wake.clear()
                position = cursor.position
                events = await self._call(context, lambda: self.tickets.events(actor, cursor, key))
                for entry in events:
                    yield codec.event_to_pb(entry)
                if cursor.position == position:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), WATCH_POLL_S)
        finally:
            unsubscribe()

    async def ListCategories(
        self, request: pb.ListCategoriesRequest, context: Context
    ) -> pb.ListCategoriesResponse:
        return await self._run(
            context,
            lambda _: codec.categories_to_pb(self.admin.categories()),
        )

    async def WhoAmI(self, request: pb.WhoAmIRequest, context: Context) -> pb.Identity:
        return await self._run(context, lambda a: codec.identity_to_pb(self.admin.user(a.login)))


def _result(_actor: Actor, result: T) -> T:
    return result


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    loop.call_soon_threadsafe(callback)
