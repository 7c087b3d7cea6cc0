"""The client harness: closed-loop clients, each a thread with its own gRPC channel.

A client calls, waits for the answer, and calls again, as fast as the server lets
it; the figure is completed calls per second of wall time. Every channel uses a
private subchannel pool, so each client has its own HTTP/2 connection, as separate
programs would (gRPC otherwise shares one connection among channels to one target).

A benchmark and its bare run through the same harness with the same number of
clients, and `compare` measures them in alternating windows (bare, subject,
subject, bare, ...), so a slow spell of the shared machine weighs on both alike.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

Call = Callable[[], None]
"""One request/response round trip of one client."""

CALL_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 15.0
CHANNEL_OPTIONS = [("grpc.use_local_subchannel_pool", 1)]


def open_channel(target: str) -> grpc.Channel:
    """A channel with a connection of its own to target, connected."""
    channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
    try:
        grpc.channel_ready_future(channel).result(timeout=CONNECT_TIMEOUT_S)
    except grpc.FutureTimeoutError:
        channel.close()
        raise RuntimeError(f"could not connect to {target}") from None
    return channel


@dataclass(frozen=True, slots=True)
class Window:
    """Calls completed in one measuring window and the wall time it took."""

    calls: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds > 0 else 0.0


class ClientPool:
    """Concurrent clients of one server, kept connected across windows.

    Args:
        target: host:port of the server.
        clients: how many clients call at once.
        caller: makes client number i's call from its channel.
    """

    def __init__(
        self, target: str, clients: int, caller: Callable[[grpc.Channel, int], Call]
    ) -> None:
        self.channels: list[grpc.Channel] = []
        self.calls: list[Call] = []
        try:
            for i in range(clients):
                channel = open_channel(target)
                self.channels.append(channel)
                self.calls.append(caller(channel, i))
        except BaseException:
            self.close()
            raise

    def run(self, seconds: float) -> Window:
        """Every client calls in a loop for seconds; the window ends when the last call does.

        Raises:
            the first error a client's call raised.
        """
        count = len(self.calls)
        done = [0] * count
        errors: list[BaseException] = []
        failed = threading.Event()
        start = threading.Barrier(count + 1)
        deadline = 0.0

        def client(i: int) -> None:
            call = self.calls[i]
            start.wait()
            n = 0
            try:
                while time.perf_counter() < deadline and not failed.is_set():
                    call()
                    n += 1
            except BaseException as error:
                errors.append(error)
                failed.set()
            done[i] = n

        threads = [
            threading.Thread(target=client, args=(i,), name=f"bench-client-{i}", daemon=True)
            for i in range(count)
        ]
        for thread in threads:
            thread.start()
        began = time.perf_counter()
        deadline = began + seconds
        start.wait()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began
        if errors:
            raise errors[0]
        return Window(sum(done), elapsed)

    def close(self) -> None:
        for channel in self.channels:
            channel.close()
        self.channels.clear()
        self.calls.clear()


@dataclass(frozen=True, slots=True)
class Comparison:
    """A subject and its bare, each as calls per second over all its windows."""

    subject: Window
    bare: Window
    subject_windows: tuple[float, ...]
    bare_windows: tuple[float, ...]


def _total(windows: list[Window]) -> Window:
    return Window(sum(w.calls for w in windows), sum(w.seconds for w in windows))


def compare(
    subject: ClientPool, bare: ClientPool, *, warmup_s: float, window_s: float, rounds: int
) -> Comparison:
    """Warms both up, then measures them in rounds of one window each, in ABBA order.

    The order alternates every round (bare first, then subject first) so that a
    trend in the machine's load, such as a neighbour's job starting, favours neither.
    """
    bare.run(warmup_s)
    subject.run(warmup_s)
    measured: dict[str, list[Window]] = {"subject": [], "bare": []}
    pools = {"subject": subject, "bare": bare}
    for i in range(rounds):
        order = ("bare", "subject") if i % 2 == 0 else ("subject", "bare")
        for which in order:
            measured[which].append(pools[which].run(window_s))
    return Comparison(
        subject=_total(measured["subject"]),
        bare=_total(measured["bare"]),
        subject_windows=tuple(w.rate for w in measured["subject"]),
        bare_windows=tuple(w.rate for w in measured["bare"]),
    )
