"""A node of the exchange benchmarks served by a process of its own, as nodes run: its
database, keys, Exchange server and delivery worker (`tests.exchange_nodes.serve`) on the
real clock.

    python -m bench.chain_node URL DATA_DIR NAME LISTEN

It serves the node that bench.exchange set up (and stopped) there, at the same endpoint,
so its partner reaches it where it did; prints `chain node serving on HOST:PORT` when
ready and stops on SIGTERM or SIGINT.
"""

import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from tests.conftest import FakeClock
from tests.exchange_nodes import serve


class WallClock(FakeClock):
    """The real time: a backoff a slow call causes ends, as it does on a real node."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def main(argv: list[str]) -> None:
    url, data_dir, name, listen = argv
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    node = serve(url, Path(data_dir), name, WallClock(), listen=listen)
    print(f"chain node serving on {node.endpoint}", flush=True)
    stop.wait()
    node.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
