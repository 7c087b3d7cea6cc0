"""A node of the exchange benchmarks served by a process of its own, as nodes run: its
database, keys, Exchange server and delivery worker (`tests.exchange_nodes.serve`) on the
real clock.

    python -m bench.chain_node URL DATA_DIR NAME LISTEN

It serves the node that bench.exchange set up (and stopped) there, at the same endpoint,
so its partner reaches it where it did; prints `chain node serving on HOST:PORT` when
ready, its start-up catch-up done (so that what a benchmark then measures is not raced
by the node pulling what it missed), and stops on SIGTERM or SIGINT.
"""

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.processes import stop_signalled
from tests.conftest import FakeClock
from tests.exchange_nodes import serve

CATCH_UP_S = 30.0
"""How long the node may take to pull, on start, what its partner holds for it."""


class WallClock(FakeClock):
    """The real time: a backoff a slow call causes ends, as it does on a real node."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def main(argv: list[str]) -> None:
    url, data_dir, name, listen = argv
    node = serve(url, Path(data_dir), name, WallClock(), listen=listen)
    caught_up = asyncio.run_coroutine_threadsafe(node.courier.caught_up.wait(), node.loop)
    caught_up.result(CATCH_UP_S)
    print(f"chain node serving on {node.endpoint}", flush=True)
    asyncio.run(stop_signalled())
    node.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
