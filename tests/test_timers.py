"""The node's timers (`cli.wiring._timer`): they run at the due instant, and a change that
brings an SLA alarm nearer wakes them at once, while other changes leave them asleep."""

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from cli.wiring import Bell, timer_loop
from tests.conftest import FakeClock

FAR = timedelta(hours=1)


class Schedule:
    """A fake use case: counts its rounds and says when it is next due."""

    def __init__(self, clock: FakeClock, due_in: timedelta) -> None:
        self.clock = clock
        self.due_at: datetime | None = clock.now() + due_in
        self.rounds = 0

    def run(self) -> int:
        self.rounds += 1
        return 0

    def next_due(self) -> datetime | None:
        return self.due_at


async def rounds_after(
    schedule: Schedule, clock: FakeClock, act: Callable[[Bell], None], wait_s: float
) -> int:
    bell = Bell(asyncio.get_running_loop())
    task = asyncio.create_task(timer_loop("test", schedule.run, schedule.next_due, clock, bell))
    try:
        while bell.until is None:
            await asyncio.sleep(0.01)
        act(bell)
        await asyncio.sleep(wait_s)
        return schedule.rounds
    finally:
        task.cancel()


def test_an_earlier_alarm_wakes_the_timer_at_once() -> None:
    clock = FakeClock()
    schedule = Schedule(clock, FAR)

    def earlier(bell: Bell) -> None:
        schedule.due_at = clock.now() + timedelta(seconds=10)
        bell.ring(schedule.due_at)

    started = time.monotonic()
    assert asyncio.run(rounds_after(schedule, clock, earlier, 0.3)) == 2
    assert time.monotonic() - started < 5


def test_a_later_alarm_leaves_the_timer_asleep() -> None:
    clock = FakeClock()
    schedule = Schedule(clock, timedelta(minutes=5))

    def later(bell: Bell) -> None:
        bell.ring(clock.now() + FAR)

    assert asyncio.run(rounds_after(schedule, clock, later, 0.3)) == 1


def test_the_timer_runs_again_when_the_due_instant_comes() -> None:
    clock = FakeClock()
    schedule = Schedule(clock, timedelta(milliseconds=200))

    def nothing(_bell: Bell) -> None:
        """Nobody rings: the due instant alone wakes it."""

    assert asyncio.run(rounds_after(schedule, clock, nothing, 0.6)) >= 2
