"""Delivers the outbox to partners, in order, until each event's signed receipt is back.

Per partner, one process at a time (a lease in the database, so several
processes of one node over PostgreSQL send each event once): read the oldest
events waiting, send as many as fit in one call, check each receipt (signed by
the partner, naming our event's digest) and store it, and go on while events
wait. The transaction that writes events starts that turn: on SQLite it takes the
lease and reads the events itself as its work ends, and they are sent the moment
it commits. Rounds (on waking, when a backoff or a lease ends, every `IDLE_S`)
deliver whatever else waits. A call that fails is retried a few times at once
(tenacity), each retry on a new connection; then the partner backs off, the delay
doubling up to `BACKOFF_CAP`, kept in the database and reset by any message from
that partner, and the failed channel is dropped so the next attempt connects
afresh. A refused event stays in the outbox with the
reason, and the partner backs off; a gap the partner reports puts our events from
the sequence it expects back in the outbox, sent again at once. After each round,
a partner unreachable too long gets an alert ticket (exchange/alerts.py).

The lease is short and renewed while a call is under way, so a process killed
holding it (kill -9, a pulled plug) keeps the next one, or a restart of itself,
waiting for `LEASE` at most; a process finding the lease held wakes when it ends.
Leases and backoff are soft state, and so are the receipts the worker stores: they
commit without waiting for the disk. A power cut loses at most a lease that has
ended by the time the node is back, or receipts, whose events are then sent again
and get the same receipts back (the partner holds them durably).

On start the worker pulls from each active partner what it sent while this node
was away, and applies it. Being pulled is a message too: the partner stops
backing off from us and delivers its backlog at once, with no need for new
traffic (while it backs off it only looks again when the delay ends).
"""

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import grpc
from hdx.exchange.v1 import exchange_pb2 as pb
from hdx.exchange.v1 import exchange_pb2_grpc
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from exchange.alerts import OutageAlerts
from exchange.envelope import Refused, fitting
from exchange.receipts import Verified, proven
from exchange.service import ExchangeService
from node.domain.errors import Unavailable
from node.domain.partner import Delivery, LoggedEvent, Partner, PartnerState
from node.store.tx import Tx

log = logging.getLogger("hdx.exchange")
Claim = tuple[Partner | None, list[LoggedEvent]]
"""A partner this worker holds the lease on and the events to send it; (None, []) when the
lease is not ours to take."""

BATCH = 500
"""Events per call."""
CALL_TIMEOUT_S = 60.0
QUICK_RETRIES = 3
BACKOFF_FIRST = timedelta(seconds=1)
BACKOFF_CAP = timedelta(minutes=5)
LEASE = timedelta(seconds=5)
"""How long a process's claim on a partner lasts unless renewed (every third of it while
its call is under way)."""
IDLE_S = 60.0
"""The longest the worker sleeps, so it notices what other processes of the node wrote."""
AFTER_ERROR_S = 1.0
"""How long the worker waits after a round failed (its database away) before the next."""
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
        self._turns = threading.Lock()
        self._sending: set[str] = set()
        """The partners this worker is delivering to (one turn at a time each)."""
        self._again: set[str] = set()
        """Of those, the ones events were written for meanwhile: their turn goes on."""
        self._drains: set[asyncio.Task[None]] = set()
        self.caught_up = asyncio.Event()
        """Set once the worker has pulled, on start, what its partners sent while it was
        away."""
        exchange.outbox_ready = self.claim_in
        exchange.heard = self.wake

    def wake(self, _partner: str) -> None:
        """Called from any thread when a partner is back: a round delivers what waits."""
        self._loop.call_soon_threadsafe(self._wake.set)

    def claim_in(self, tx: Tx, partner_id: str) -> None:
        """Called in a transaction that wrote events for partner_id, as its work ends.

        On SQLite, takes the partner's lease and its oldest waiting events in that very
        transaction; once it commits, the event loop sends them at once, with no
        transaction and no read of its own (the loop is the node's gRPC servers' too).
        On PostgreSQL the lease is taken after the commit, on the loop: taken inside, its
        row lock would make every writer of events for the partner wait for the others'
        commits. If this worker is delivering to the partner already, that turn goes on
        with them; if another process is, that one does.
        """
        claimed = None if tx.locks_rows else self._claim(tx, partner_id, self.clock.now())
        tx.after_commit(lambda: self._hand_over(partner_id, claimed))

    def _hand_over(self, partner_id: str, claimed: Claim | None) -> None:
        """Starts the turn that sends what the committed transaction claimed, one turn of
        the event loop later: the answer to a call whose work wrote the events (an offer
        accepted) goes out first, so the partner has stored its receipt by the time they
        come in."""
        if not self._begin(partner_id):
            return
        try:
            self._loop.call_soon_threadsafe(self._loop.call_soon, self._spawn, partner_id, claimed)
        except RuntimeError:  # the loop has stopped: the lease ends, the next start sends
            self._abandon(partner_id)

    def _begin(self, partner_id: str) -> bool:
        """Starts this worker's turn of delivery to partner_id, unless one is under way
        (which is then told to go on)."""
        with self._turns:
            if partner_id in self._sending:
                self._again.add(partner_id)
                return False
            self._sending.add(partner_id)
            return True

    def _end(self, partner_id: str) -> bool:
        """Ends the turn, unless events were written for the partner meanwhile: then
        True, and the turn goes on."""
        with self._turns:
            if partner_id in self._again:
                self._again.discard(partner_id)
                return True
            self._sending.discard(partner_id)
            return False

    def _abandon(self, partner_id: str) -> None:
        with self._turns:
            self._sending.discard(partner_id)
            self._again.discard(partner_id)

    def _spawn(self, partner_id: str, claimed: Claim | None) -> None:
        task = self._loop.create_task(self._drain_soon(partner_id, claimed))
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)

    async def _drain_soon(self, partner_id: str, claimed: Claim | None) -> None:
        try:
            await self._drain(partner_id, claimed)
        except Unavailable as error:  # the database is away: a round tries again
            log.warning("delivery to %s paused: %s", partner_id, error)
            self._wake.set()
        except Exception:
            log.exception("delivery to %s failed; the next round tries again", partner_id)
            self._wake.set()

    async def _drain(self, partner_id: str, claimed: Claim | None) -> None:
        """Delivers the claimed events to the partner (claims them first if None), and
        what waits for it after them, until nothing does (or a call fails); then ends the
        turn."""
        try:
            partner, events = self._claimed(partner_id) if claimed is None else claimed
            while True:
                while partner is not None and events and await self._send(partner, events):
                    partner, events = self._claimed(partner_id)
                if partner is None:  # not ours now (a lease, a backoff): a round plans when
                    self._wake.set()
                if not self._end(partner_id):
                    return
                partner, events = self._claimed(partner_id)
        except BaseException:
            self._abandon(partner_id)
            raise

    async def run(self) -> None:
        """Catches up with every partner, then delivers until cancelled. A round that fails
        (the database away) is tried again after `AFTER_ERROR_S`: the worker outlives it."""
        try:
            while True:
                self._wake.clear()
                delay = IDLE_S
                try:
                    if not self.caught_up.is_set():
                        await self.catch_up_all()
                        self.caught_up.set()
                    next_at = await self.round()
                except Unavailable as error:  # the database is away: try again once it is back
                    log.warning("delivery paused for %s s: %s", AFTER_ERROR_S, error)
                    delay = AFTER_ERROR_S
                except Exception:
                    log.exception("delivery round failed; trying again")
                    delay = AFTER_ERROR_S
                else:
                    if next_at is not None:
                        wait_s = (next_at - self.clock.now()).total_seconds()
                        delay = min(delay, max(wait_s, 0.0))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
        finally:
            for task in list(self._drains):
                task.cancel()
            await asyncio.gather(*self._drains, return_exceptions=True)
            self._give_back()
            for _partner, channel in self._channels.values():
                await channel.close(None)

    def _give_back(self) -> None:
        """Ends this worker's leases as it stops (mid-call, perhaps), so that the next
        process need not wait them out. A process killed cannot: the next one delivers to
        those partners once the lease ends (LEASE after it was taken)."""
        try:
            with self.db.write(durable=False) as tx:
                tx.links.release_all(self.owner)
        except Exception:
            log.exception("could not give back the delivery leases of %s", self.owner)

    async def catch_up_all(self) -> None:
        """Catches up with every active partner at once (one slow to answer delays none)."""
        with self.db.read() as tx:
            partners = [p for p in tx.links.partners() if p.state is PartnerState.ACTIVE]
        await asyncio.gather(*(self.catch_up(partner) for partner in partners))

    async def round(self) -> datetime | None:
        """Delivers to every partner due now, then files or follows up outage alerts;
        returns when to look again: a backoff or another process's lease ends, or an
        outage becomes an alert, if any."""
        now = self.clock.now()
        with self.db.read() as tx:
            states = _states(tx)
        for partner, delivery in states:
            if self._due(partner, delivery, now) and self._begin(partner.node_id):
                await self._drain(partner.node_id, None)
        with self.db.read() as tx:
            states = _states(tx)  # with what this round's calls left
        tries = (self._next_try(d) for p, d in states if p.state is PartnerState.ACTIVE)
        next_at = min((at for at in tries if at is not None and at > now), default=None)
        if self.alerts is not None:
            next_at = min(filter(None, (next_at, self.alerts.check(states))), default=None)
        return next_at

    def _due(self, partner: Partner, delivery: Delivery, now: datetime) -> bool:
        """Whether the worker delivers to partner now."""
        if partner.state is not PartnerState.ACTIVE:
            return False
        at = self._next_try(delivery)
        return at is None or at <= now

    def _next_try(self, delivery: Delivery) -> datetime | None:
        """When a partner may be tried next (None: now): when its backoff ends, or the
        lease of another process on it, whichever is later."""
        lease_until = None if delivery.lease_owner == self.owner else delivery.lease_until
        return _later(delivery.retry_at, lease_until)

    async def catch_up(self, partner: Partner) -> None:
        """Pulls from partner what it sent us that we have not taken, and applies it, until
        it has nothing more. An answer shows the partner is up: our backoff from it (kept
        from before we stopped) ends. An unreachable partner is left to the delivery rounds."""
        stub = exchange_pb2_grpc.ExchangeStub(self._channel(partner))
        more = True
        try:
            while more:
                more = False
                for request in self.exchange.pull_requests(partner.node_id):
                    answer = await stub.Pull(request, timeout=CALL_TIMEOUT_S)
                    self.exchange.reached(partner.node_id)
                    if answer.events:
                        events = list(answer.events)
                        results = await asyncio.to_thread(self.exchange.receive, events)
                        more = more or all(result.code == 0 for result in results)
        except grpc.aio.AioRpcError as error:
            log.info("could not pull from %s: %s", partner.node_id, error.code().name)
            await self._drop_channel(partner)

    def _claimed(self, partner_id: str) -> Claim:
        """`_claim` in a transaction of its own."""
        with self.db.write(durable=False) as tx:
            return self._claim(tx, partner_id, self.clock.now())

    def _claim(self, tx: Tx, partner_id: str, now: datetime) -> Claim:
        """Takes the lease on the partner and the oldest events waiting for it: the partner
        and its events; (None, []) if it is not active, backs off, or another process holds
        the lease. When none wait, the lease is given back."""
        if not tx.links.claim(partner_id, self.owner, now, now + LEASE):
            return None, []
        events = tx.links.outbox(partner_id, BATCH)
        if not events:
            tx.links.release(partner_id, self.owner)
        return tx.links.partner(partner_id), events

    async def _send(self, partner: Partner, events: list[LoggedEvent]) -> bool:
        """Sends the oldest of events that fit in one call; whether to go on at once (they
        were all taken, or a gap asks for ours again)."""
        events = events[: fitting([event.envelope for event in events])]
        renewing = asyncio.create_task(self._renew(partner))
        try:
            response = await self._call(partner, events)
        except grpc.aio.AioRpcError as error:
            self._failed(partner, f"{error.code().name}: {error.details()}")
            await self._drop_channel(partner)
            return False
        finally:
            renewing.cancel()
        return self._settle(partner, events, response)

    async def _renew(self, partner: Partner) -> None:
        """Extends our lease on partner every third of `LEASE`, until cancelled."""
        while True:
            await asyncio.sleep(LEASE.total_seconds() / 3)
            now = self.clock.now()
            with contextlib.suppress(Unavailable), self.db.write(durable=False) as tx:
                tx.links.claim(partner.node_id, self.owner, now, now + LEASE)

    async def _call(self, partner: Partner, events: list[LoggedEvent]) -> pb.DeliverResponse:
        """Delivers events, retried a few times at once, each retry on a new connection (a
        partner's node restarted is reached again within the retries)."""
        request = pb.DeliverRequest(events=[pb.Envelope.FromString(e.envelope) for e in events])
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(QUICK_RETRIES),
            wait=wait_exponential(multiplier=0.05, max=0.5),
            retry=retry_if_exception(_transient),
            reraise=True,
        ):
            with attempt:
                stub = exchange_pb2_grpc.ExchangeStub(self._channel(partner))
                try:
                    response: pb.DeliverResponse = await stub.Deliver(
                        request, timeout=CALL_TIMEOUT_S
                    )
                except grpc.aio.AioRpcError as error:
                    if _transient(error):
                        await self._drop_channel(partner)
                    raise
        return response

    def _channel(self, partner: Partner) -> grpc.aio.Channel:
        known = self._channels.get(partner.node_id)
        if known is not None and known[0] == partner:
            return known[1]
        channel = self.channel_to(partner)
        self._channels[partner.node_id] = (partner, channel)
        return channel

    async def _drop_channel(self, partner: Partner) -> None:
        """Closes the channel to partner after a failed call: gRPC would make the next call
        on it wait out its own reconnect backoff (up to minutes) after the partner is back."""
        known = self._channels.pop(partner.node_id, None)
        if known is not None:
            await known[1].close(None)

    def _settle(
        self, partner: Partner, events: list[LoggedEvent], response: pb.DeliverResponse
    ) -> bool:
        """Stores the receipts; notes refusals; puts back what a gap asks for. Whether to
        go on at once: nothing was refused, and events wait (else the lease ends)."""
        now = self.clock.now()
        stalled: set[str] = set()
        refused = len(response.results) != len(events)
        if refused:
            log.warning(
                "%s answered %d events with %d results",
                partner.node_id,
                len(events),
                len(response.results),
            )
        verified: Verified = {}
        with self.db.write(durable=False) as tx:
            for event, result in zip(events, response.results, strict=False):
                if event.link in stalled:
                    continue
                why = result.message
                if result.code == 0:
                    try:
                        received_at = self._check(tx, partner, event, result.receipt, verified)
                    except Refused as refusal:
                        why = f"bad receipt: {refusal}"
                    else:
                        receipt = result.receipt.SerializeToString()
                        tx.links.delivered(event.id, receipt, received_at)
                        continue
                stalled.add(event.link)
                if result.expected_seq and result.expected_seq < event.seq:
                    tx.links.resend_from(event.link, result.expected_seq)
                else:
                    refused = True
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
            more = not refused and bool(tx.links.outbox(partner.node_id, 1))
            if not more:
                tx.links.release(partner.node_id, self.owner)
        if refused:
            self._wake.set()  # a round plans the retry after the backoff
        return more

    def _check(
        self,
        tx: Tx,
        partner: Partner,
        event: LoggedEvent,
        receipt: pb.Receipt,
        verified: Verified,
    ) -> datetime:
        """The instant a receipt says the partner got event, once it proves so (the
        signatures of a call's receipts verified once, in verified)."""
        signer, received_at, named = proven(receipt, tx.links.key, verified)
        if signer != partner.node_id:
            raise Refused("UNAUTHENTICATED", f"receipt: signed by {signer}, not the partner")
        if (named.seq, named.digest) != (event.seq, event.digest):
            raise Refused("INVALID_ARGUMENT", f"receipt: names another event than {event.seq}")
        return received_at

    def _failed(self, partner: Partner, error: str) -> None:
        now = self.clock.now()
        with self.db.write(durable=False) as tx:
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
        self._wake.set()  # a round plans the retry after the backoff, and alerts
        log.info("%s unreachable (%d failures): %s", partner.node_id, failures, error)


def _states(tx: Tx) -> list[tuple[Partner, Delivery]]:
    """Every partner with where delivery to it stands."""
    return [(p, tx.links.delivery(p.node_id)) for p in tx.links.partners()]


def _later(*instants: datetime | None) -> datetime | None:
    """The latest of instants, None if none is set."""
    return max((at for at in instants if at is not None), default=None)


def _backoff(failures: int) -> timedelta:
    delay: timedelta = BACKOFF_FIRST * 2 ** min(failures - 1, 20)
    return min(delay, BACKOFF_CAP)
