"""A ticket's SLA state as the compact JSON text stored beside it (`tickets.sla_state`).

Only what the next event needs is stored: the cycle, whether an engineer has
replied, and the live clocks, each as a list of its fields with instants as
epoch microseconds. Finished clocks go to `sla_results`, in business minutes, for reports.
`live_clocks` reads the clocks without building domain values, for passes over
many tickets that only recompute deadlines; it decodes with orjson, several times faster
than json, which for 100,000 tickets is most of what such a pass computes. The stored
numbers are finite (targets are validated, times are counted), which orjson requires.
"""

import json
from typing import Any, NamedTuple

import orjson

from node.domain.calendar import epoch_us, instant
from node.domain.sla import Clock, ClockState, TicketSla, Timer

_JSON = json.JSONEncoder(separators=(",", ":"))
"""Compact JSON, the encoder built once: `json.dumps` builds one per call given options."""


class RawClock(NamedTuple):
    """A stored live clock's fields as stored: instants in epoch microseconds."""

    timer: str
    cycle: int
    policy: str
    target_s: float
    started_us: float
    state: str
    since_us: float
    elapsed_s: float
    paused_s: float
    fired: int


def live_clocks(text: str) -> list[list[Any]]:
    """The live clocks stored in text, each the list of its fields in `RawClock`'s order."""
    return orjson.loads(text)[2] if text else []


def encode(sla: TicketSla) -> str:
    """The stored text of sla's cycle, reply flag and live clocks."""
    if not sla.cycle:
        return ""
    clocks = [
        [
            c.timer.value,
            c.cycle,
            c.policy,
            c.target_s,
            epoch_us(c.started_at),
            c.state.value,
            epoch_us(c.since),
            c.elapsed_s,
            c.paused_s,
            c.fired,
        ]
        for c in sla.clocks
        if c.live
    ]
    return _JSON.encode([sla.cycle, sla.responded, clocks])


def decode(text: str, status: str, policy: str) -> TicketSla:
    """The state encode stored, for a ticket in status under policy."""
    if not text:
        return TicketSla(status=status, policy=policy)
    cycle, responded, clocks = json.loads(text)
    return TicketSla(
        status=status,
        policy=policy,
        cycle=cycle,
        responded=responded,
        clocks=tuple(
            Clock(
                timer=Timer(c.timer),
                cycle=c.cycle,
                policy=c.policy,
                target_s=c.target_s,
                started_at=instant(c.started_us),
                state=ClockState(c.state),
                since=instant(c.since_us),
                elapsed_s=c.elapsed_s,
                paused_s=c.paused_s,
                fired=c.fired,
            )
            for c in map(RawClock._make, clocks)
        ),
    )
