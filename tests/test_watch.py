"""WatchTickets over real gRPC: live changes arrive within seconds, a resumed watch gets
exactly what it missed in order, and store staff never see internal notes or other stores.

A watcher reads its stream on a thread into a queue; every wait on it is bounded.
"""

import queue
import threading
import time
from types import TracebackType
from typing import Any

import grpc
import pytest
from hdx.helpdesk.v1 import helpdesk_pb2 as pb
from hdx.helpdesk.v1 import helpdesk_pb2_grpc

from node.domain.ticket import TicketDraft, Visibility
from node.services.tickets import TicketService
from tests.conftest import Api

WAIT_S = 5.0
"""How long a live change may take to reach a watcher."""
Row = tuple[int, str, str, str, str]
"""(id, ticket key, action, field, after) of a history entry."""


class Watcher:
    """An open WatchTickets stream, read on its own thread."""

    def __init__(self, api: Api, login: str, after_event_id: int = 0, key: str = "") -> None:
        self.channel = grpc.insecure_channel(api.target)
        stub = helpdesk_pb2_grpc.HelpDeskStub(self.channel)
        request = pb.WatchTicketsRequest(after_event_id=after_event_id, key=key)
        self.call = stub.WatchTickets(request, metadata=api[login].metadata)
        self.events: queue.Queue[pb.HistoryEntry | grpc.RpcError] = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for event in self.call:
                self.events.put(event.entry)
        except grpc.RpcError as error:
            self.events.put(error)

    def next(self, timeout: float = WAIT_S) -> pb.HistoryEntry:
        try:
            item = self.events.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no event within {timeout} s")
        if isinstance(item, grpc.RpcError):
            raise item
        return item

    def take(self, count: int, timeout: float = WAIT_S) -> list[pb.HistoryEntry]:
        return [self.next(timeout) for _ in range(count)]

    def error(self, timeout: float = WAIT_S) -> Any:
        """The error that ended the stream."""
        try:
            item = self.events.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"the stream was not refused within {timeout} s")
        assert isinstance(item, grpc.RpcError), f"expected a refusal, got {item}"
        return item

    def close(self) -> None:
        self.call.cancel()  # type: ignore[no-untyped-call]
        self.thread.join(timeout=10)
        self.channel.close()

    def __enter__(self) -> "Watcher":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def row(entry: pb.HistoryEntry) -> Row:
    return (entry.id, entry.ticket_key, entry.action, entry.field, entry.after)


def position(api: Api) -> int:
    """The id of the newest history entry."""
    return api.desk.tickets.start_cursor(0).position


def history_after(api: Api, keys: list[str], after: int) -> list[Row]:
    """Every entry of these tickets past after, as an administrator reads their histories."""
    admin = api.desk.actor("admin")
    entries = [e for key in keys for e in api.desk.tickets.history(admin, key) if e.id > after]
    return sorted(
        (e.id, e.ticket_key, e.change.action, e.change.field, e.change.after) for e in entries
    )


def wait_until_live(watcher: Watcher, api: Api, key: str) -> None:
    """Returns once the stream certainly delivers changes committed from now on.

    A watch from 'now' starts at whatever entry is newest when the node opens it, which
    the caller cannot observe; so comment until one of the comments comes through.
    """
    sent: list[str] = []
    deadline = time.monotonic() + 3 * WAIT_S
    while time.monotonic() < deadline:
        sent.append(f"probe {len(sent)}")
        api["ivan"].comment(key, sent[-1])
        try:
            item = watcher.events.get(timeout=0.5)
        except queue.Empty:
            continue
        if isinstance(item, grpc.RpcError):
            raise item
        # every probe after the first one delivered is delivered too: drain them
        while item.after != sent[-1]:
            item = watcher.next()
        return
    pytest.fail("the watch delivered none of the probes")


def test_a_change_reaches_a_watcher_within_seconds(api: Api) -> None:
    ticket = api["anna"].create(TicketDraft(category="pos-down", title="Till 2 is dead")).ticket
    with Watcher(api, "sergey") as watcher:
        wait_until_live(watcher, api, ticket.key)

        started = time.monotonic()
        api["ivan"].transition(ticket.key, "start")
        events = watcher.take(2)
        elapsed = time.monotonic() - started

        assert elapsed < WAIT_S
        assert [(e.ticket_key, e.actor, e.action, e.field, e.before, e.after) for e in events] == [
            (ticket.key, "ivan", "transition", "status", "new", "in_progress"),
            (ticket.key, "ivan", "assigned", "assignee", "", "ivan"),
        ]
        assert events[0].id < events[1].id
        assert events[0].at.seconds > 0


def test_a_change_committed_by_another_process_of_the_node_reaches_a_watcher(api: Api) -> None:
    """Replicas of one node share a database; a watcher also sees what the others commit."""
    ticket = api["anna"].create(TicketDraft(category="scales", title="Scales misweigh")).ticket
    replica = TicketService(api.desk.db, api.desk.clock)  # no shared in-process feed
    with Watcher(api, "ivan") as watcher:
        wait_until_live(watcher, api, ticket.key)

        started = time.monotonic()
        replica.comment(api.desk.actor("olga"), ticket.key, "on my way", Visibility.PUBLIC)
        event = watcher.next()

        assert time.monotonic() - started < WAIT_S
        assert (event.ticket_key, event.actor, event.action, event.after) == (
            ticket.key,
            "olga",
            "replied",
            "on my way",
        )


def test_a_resumed_watch_delivers_exactly_what_was_missed_in_order(api: Api) -> None:
    first = api["anna"].create(TicketDraft(category="other", title="Door sticks")).ticket
    mark = position(api)
    # while nobody watches
    second = api["boris"].create(TicketDraft(category="scales", title="Scales off")).ticket
    api["ivan"].comment(first.key, "coming tomorrow")
    api["sergey"].assign(first.key, "olga")
    api["olga"].transition(first.key, "start")
    api["olga"].comment(first.key, "hinge replaced", Visibility.INTERNAL)
    api["olga"].transition(first.key, "resolve")
    missed = history_after(api, [first.key, second.key], mark)
    assert len(missed) >= 7

    with Watcher(api, "sergey", after_event_id=mark) as watcher:
        assert [row(e) for e in watcher.take(len(missed))] == missed
        # and nothing more than the missed entries: the next one is a new change
        api["anna"].transition(first.key, "confirm")
        confirmed = watcher.next()
        assert (confirmed.ticket_key, confirmed.action, confirmed.after) == (
            first.key,
            "transition",
            "closed",
        )
        assert confirmed.id > missed[-1][0]

    # resuming from the middle gives the rest, from the entry after the one named
    middle = missed[2][0]
    with Watcher(api, "sergey", after_event_id=middle) as watcher:
        rest = watcher.take(len(missed) - 3)
        assert [row(e) for e in rest] == missed[3:]
        assert row(watcher.next()) == row(confirmed)


def test_a_requester_watch_shows_no_internal_notes_and_no_other_store(api: Api) -> None:
    own = api["anna"].create(TicketDraft(category="other", title="Door sticks")).ticket
    mark = position(api)
    with Watcher(api, "anna", after_event_id=mark) as watcher:
        api["ivan"].comment(own.key, "SECRET: the lock vendor is late", Visibility.INTERNAL)
        api["ivan"].comment(own.key, "we come tomorrow")
        other = api["boris"].create(TicketDraft(category="scales", title="Scales off")).ticket
        api["ivan"].comment(other.key, "boris's store only")
        api["ivan"].transition(other.key, "start")
        api["sergey"].assign(own.key, "olga")
        api["olga"].comment(own.key, "SECRET: spare part in van 3", Visibility.INTERNAL)
        api["olga"].comment(own.key, "done, please check")

        seen = watcher.take(3)
        assert [(e.ticket_key, e.action, e.field, e.after) for e in seen] == [
            (own.key, "replied", "public", "we come tomorrow"),
            (own.key, "assigned", "assignee", "olga"),
            (own.key, "replied", "public", "done, please check"),
        ]
        # the stream holds nothing else: the next entry it shows is the next visible change
        api["ivan"].comment(own.key, "SECRET: closing note", Visibility.INTERNAL)
        api["olga"].comment(other.key, "more for boris")
        api["anna"].comment(own.key, "thank you")
        assert watcher.next().after == "thank you"

    # boris's stream shows his store's ticket as his own history of it does
    boris = api.desk.actor("boris")
    visible = [e for e in api.desk.tickets.history(boris, other.key) if e.id > mark]
    assert len(visible) >= 4
    with Watcher(api, "boris", after_event_id=mark) as watcher:
        entries = watcher.take(len(visible))
        assert [row(e) for e in entries] == [
            (e.id, e.ticket_key, e.change.action, e.change.field, e.change.after) for e in visible
        ]
        api["anna"].comment(own.key, "anna again")
        api["olga"].comment(other.key, "boris again")
        assert watcher.next().after == "boris again"


def test_a_watch_of_one_ticket_shows_only_that_ticket(api: Api) -> None:
    one = api["anna"].create(TicketDraft(category="other", title="Door sticks")).ticket
    two = api["anna"].create(TicketDraft(category="other", title="Light flickers")).ticket
    with Watcher(api, "anna", after_event_id=position(api), key=two.key) as watcher:
        api["ivan"].comment(one.key, "about the door")
        api["ivan"].comment(two.key, "about the light")
        event = watcher.next()
        assert (event.ticket_key, event.after) == (two.key, "about the light")


@pytest.mark.parametrize(
    ("login", "after", "key", "code", "says"),
    [
        ("anna", 0, "boris-ticket", grpc.StatusCode.NOT_FOUND, "not found"),
        ("anna", 0, "ABC-1", grpc.StatusCode.INVALID_ARGUMENT, "key"),
        ("ivan", -1, "", grpc.StatusCode.INVALID_ARGUMENT, "after_event_id"),
    ],
    ids=["another store's ticket", "another node's key", "negative position"],
)
def test_a_watch_that_cannot_be_served_is_refused_at_once(
    api: Api, *, login: str, after: int, key: str, code: grpc.StatusCode, says: str
) -> None:
    if key == "boris-ticket":
        key = api["boris"].create(TicketDraft(category="other", title="Shelf")).ticket.key
    with Watcher(api, login, after_event_id=after, key=key) as watcher:
        error = watcher.error()
    assert error.code() == code
    assert says in error.details()


def test_a_watch_without_a_valid_token_is_refused(api: Api) -> None:
    with grpc.insecure_channel(api.target) as channel:
        stub = helpdesk_pb2_grpc.HelpDeskStub(channel)
        call = stub.WatchTickets(
            pb.WatchTicketsRequest(), metadata=(("authorization", "Bearer hdx_nope"),), timeout=10
        )
        with pytest.raises(grpc.RpcError) as refused:
            next(iter(call))
    error: Any = refused.value
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
