"""Delivers the outbox to partners, in order, until each event's signed receipt is back.

Per partner, one process at a time (a lease in the database, so several
processes of one node over PostgreSQL send each event once): read the oldest
events waiting, send them in one call, check each receipt (signed by the partner,
naming our event's digest) and store it. The lease is short and renewed while the
call is under way, so a process killed holding it (kill -9, a pulled plug) keeps
the next one, or a restart of itself, waiting for `LEASE` at most; a process finding
the lease held wakes when it ends. A call that fails is retried a few times
at once (tenacity); then the partner backs off, the delay doubling up to
`BACKOFF_CAP`, kept in the database and reset by any message from that partner.
A refused event stays in the outbox with the reason; a gap the partner reports
puts our events from the sequence it expects back in the outbox. After each
round, a partner unreachable too long gets an alert ticket (exchange/alerts.py).
A round the database fails (a PostgreSQL restart) is tried again a second later:
what it sent without storing the receipts is sent again and gets the same receipts.
"""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import grpc
from hdx.exchange.v1 import exchange_pb2 as pb
from hdx.exchange.v1 import exchange_pb2_grpc
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from exchange.alerts import OutageAlerts
from exchange.envelope import Refused, opened
from exchange.service import ExchangeService
from node.domain.errors import Unavailable
from node.domain.partner import LoggedEvent, Partner, PartnerState
from node.store.tx import Tx

log = logging.getLogger("hdx.exchange")

BATCH = 500
"""Events per call."""
CALL_TIMEOUT_S = 10.0
QUICK_RETRIES = 3
BACKOFF_FIRST = timedelta(seconds=1)
BACKOFF_CAP = timedelta(minutes=5)
LEASE = timedelta(seconds=5)
"""How long a process's claim on a partner lasts unless renewed (every third of it while
its call is under way)."""
IDLE_S = 60.0
"""The longest the worker sleeps, so it notices what other processes of the node wrote."""
DATABASE_RETRY_S = 1.0
"""How soon the worker tries again after the database failed it."""
TRANSIENT = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL}
)


def _transient(error: BaseException) -> bool:
    return isinstance(error, grpc.aio.AioRpcError) and error.code() in TRANSIENT


class Courier:
    """The delivery worker of one node process.

    Args:
        exchange: the node's exchange service (it tells the courier of new outbox events
            and of partners heard from).
        channel_to: opens a channel to a partner.
        alerts: opens and follows up alert tickets for partners unreachable too long,
            after each round; None: outages show in `hdx status` only.
    """

    def __init__(
        self,
        exchange: ExchangeService,
        channel_to: Callable[[Partner], grpc.aio.Channel],
        alerts: OutageAlerts | None = None,
    ) -> None:
        self.exchange = exchange
        self.alerts = alerts
        self.db = exchange.db
        self.clock = exchange.clock
        self.channel_to = channel_to
        self.owner = uuid.uuid4().hex[:16]
        self._channels: dict[str, tuple[Partner, grpc.aio.Channel]] = {}
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        exchange.outbox_ready = self.wake
        exchange.heard = self.wake

    def wake(self, _partner: str) -> None:
        """Called from any thread when there is something to deliver, or a partner is back."""
        self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        """Delivers until cancelled."""
        try:
            while True:
                self._wake.clear()
                try:
                    next_at = await self.round()
                    if self.alerts is not None:
                        alert_at = self.alerts.check()
                        next_at = min(filter(None, (next_at, alert_at)), default=None)
                except Unavailable as error:  # the database is away: try again once it is back
                    log.warning("delivery paused for %s s: %s", DATABASE_RETRY_S, error)
                    next_at = self.clock.now() + timedelta(seconds=DATABASE_RETRY_S)
                delay = IDLE_S
                if next_at is not None:
                    delay = min(delay, max((next_at - self.clock.now()).total_seconds(), 0.0))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
        finally:
            for _partner, channel in self._channels.values():
                await channel.close(None)

    async def round(self) -> datetime | None:
        """Delivers to every partner due now; returns when the next one may be tried (its
        backoff or another process's lease ends), if any."""
        with self.db.read() as tx:
            partners = [p for p in tx.links.partners() if p.state is PartnerState.ACTIVE]
        due = self._next_tries(partners)
        now = self.clock.now()
        for partner in partners:
            retry_at = due[partner.node_id]
            if retry_at is None or retry_at <= now:
                while await self.deliver(partner) == BATCH:
                    pass
        due = self._next_tries(partners)  # with those a failure just now set
        return min((at for at in due.values() if at is not None and at > now), default=None)

    def _next_tries(self, partners: list[Partner]) -> dict[str, datetime | None]:
        """When each partner may be tried next (None: now): when its backoff ends, or
        the lease of another process on it, whichever is later."""
        with self.db.read() as tx:
            states = {p.node_id: tx.links.delivery(p.node_id) for p in partners}
        return {
            node_id: _later(
                state.retry_at, None if state.lease_owner == self.owner else state.lease_until
            )
            for node_id, state in states.items()
        }

    async def deliver(self, partner: Partner) -> int:
        """Sends one batch of partner's outbox; returns how many events it sent."""
        now = self.clock.now()
        with self.db.write() as tx:
            if not tx.links.claim(partner.node_id, self.owner, now, now + LEASE):
                return 0
            events = tx.links.outbox(partner.node_id, BATCH)
            if not events:  # nothing to send: another process (or the next life) may claim
                tx.links.release(partner.node_id, self.owner)
        if not events:
            return 0
        renewing = asyncio.create_task(self._renew(partner))
        try:
            response = await self._call(partner, events)
        except grpc.aio.AioRpcError as error:
            await self._forget_channel(partner)
            self._failed(partner, f"{error.code().name}: {error.details()}")
            return 0
        finally:
            renewing.cancel()
        self._settle(partner, events, response)
        return len(events)

    async def _renew(self, partner: Partner) -> None:
        """Extends our lease on partner every third of `LEASE`, until cancelled."""
        while True:
            await asyncio.sleep(LEASE.total_seconds() / 3)
            now = self.clock.now()
            with contextlib.suppress(Unavailable), self.db.write() as tx:
                tx.links.claim(partner.node_id, self.owner, now, now + LEASE)

    async def _call(self, partner: Partner, events: list[LoggedEvent]) -> pb.DeliverResponse:
        stub = exchange_pb2_grpc.ExchangeStub(self._channel(partner))
        request = pb.DeliverRequest(events=[pb.Envelope.FromString(e.envelope) for e in events])
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(QUICK_RETRIES),
            wait=wait_exponential(multiplier=0.05, max=0.5),
            retry=retry_if_exception(_transient),
            reraise=True,
        ):
            with attempt:
                response: pb.DeliverResponse = await stub.Deliver(request, timeout=CALL_TIMEOUT_S)
        return response

    def _channel(self, partner: Partner) -> grpc.aio.Channel:
        known = self._channels.get(partner.node_id)
        if known is not None and known[0] == partner:
            return known[1]
        channel = self.channel_to(partner)
        self._channels[partner.node_id] = (partner, channel)
        return channel

    async def _forget_channel(self, partner: Partner) -> None:
        """Closes the channel a call to partner failed on: the next call connects afresh,
        when our backoff says, instead of waiting out gRPC's own reconnect backoff."""
        known = self._channels.pop(partner.node_id, None)
        if known is not None:
            await known[1].close(None)

    def _settle(
        self, partner: Partner, events: list[LoggedEvent], response: pb.DeliverResponse
    ) -> None:
        """Stores the receipts; notes refusals; puts back what a gap asks for."""
        now = self.clock.now()
        stalled: set[str] = set()
        refused = False
        with self.db.write() as tx:
            for event, result in zip(events, response.results, strict=False):
                if event.link in stalled:
                    continue
                why = result.message
                if result.code == 0:
                    try:
                        received_at = self._check(tx, partner, event, result.receipt)
                    except Refused as refusal:
                        why = f"bad receipt: {refusal}"
                    else:
                        receipt = result.receipt.SerializeToString()
                        tx.links.delivered(event.id, receipt, received_at)
                        continue
                stalled.add(event.link)
                refused = True
                if result.expected_seq and result.expected_seq < event.seq:
                    tx.links.resend_from(event.link, result.expected_seq)
                else:
                    tx.links.refused(event.id, why)
                    log.warning("%s refused event %d: %s", partner.node_id, event.seq, why)
            failures = tx.links.delivery(partner.node_id).failures + 1 if refused else 0
            tx.links.update_partner(
                partner.node_id,
                failures=failures,
                retry_at=now + _backoff(failures) if refused else None,
                down_since=None,
                last_error="refused: see the outbox" if refused else "",
            )
            tx.links.release(partner.node_id, self.owner)

    def _check(
        self, tx: Tx, partner: Partner, event: LoggedEvent, receipt: pb.Envelope
    ) -> datetime:
        """The instant a receipt says the partner got event, once it proves so."""
        signer, body = opened(receipt, tx.links.key, pb.ReceiptBody)
        if signer != partner.node_id or body.receiver != partner.node_id:
            raise Refused("UNAUTHENTICATED", f"receipt: signed by {signer}, not the partner")
        if body.seq != event.seq or body.digest != event.digest:
            raise Refused("INVALID_ARGUMENT", f"receipt: names another event than {event.seq}")
        return body.received_at.ToDatetime(tzinfo=self.clock.now().tzinfo)

    def _failed(self, partner: Partner, error: str) -> None:
        now = self.clock.now()
        with self.db.write() as tx:
            state = tx.links.delivery(partner.node_id)
            failures = state.failures + 1
            tx.links.update_partner(
                partner.node_id,
                failures=failures,
                retry_at=now + _backoff(failures),
                down_since=state.down_since or now,
                last_error=error,
            )
            tx.links.release(partner.node_id, self.owner)
        log.info("%s unreachable (%d failures): %s", partner.node_id, failures, error)


def _later(*instants: datetime | None) -> datetime | None:
    """The latest of instants, None if none is set."""
    return max((at for at in instants if at is not None), default=None)


def _backoff(failures: int) -> timedelta:
    delay: timedelta = BACKOFF_FIRST * 2 ** min(failures - 1, 20)
    return min(delay, BACKOFF_CAP)
