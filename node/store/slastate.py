"""A ticket's SLA state as the compact JSON text stored beside it (`tickets.sla_state`).

Only what the next event needs is stored: the cycle, whether an engineer has
replied, and the live clocks, each as a list of its fields with instants as
epoch seconds. Finished clocks go to `sla_results`, in business minutes, for reports.
"""

import json
from datetime import UTC, datetime

from node.domain.sla import Clock, ClockState, TicketSla, Timer


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
            c.started_at.timestamp(),
            c.state.value,
            c.since.timestamp(),
            c.elapsed_s,
            c.paused_s,
            c.fired,
        ]
        for c in sla.clocks
        if c.live
    ]
    return json.dumps([sla.cycle, sla.responded, clocks], separators=(",", ":"))


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
                timer=Timer(timer),
                cycle=clock_cycle,
                policy=clock_policy,
                target_s=target_s,
                started_at=datetime.fromtimestamp(started, UTC),
                state=ClockState(state),
                since=datetime.fromtimestamp(since, UTC),
                elapsed_s=elapsed_s,
                paused_s=paused_s,
                fired=fired,
            )
            for (
                timer,
                clock_cycle,
                clock_policy,
                target_s,
                started,
                state,
                since,
                elapsed_s,
                paused_s,
                fired,
            ) in clocks
        ),
    )
