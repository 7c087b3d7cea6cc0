"""`python -m bench [NAME-PREFIX ...]`: runs the benchmarks, prints a table, writes results.json.

With no argument every benchmark runs; with arguments, those whose name starts
with one of them (`python -m bench create_ticket_seq`). `--list` names them all.
A suite that fails is reported and the others still run; the exit status is then
1, and results.json gets the results that were measured.
"""

import argparse
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from types import FrameType

from bench import create_ticket, exchange, report, sla
from bench.report import Result, Suite

SUITES: tuple[Suite, ...] = (create_ticket.SUITE, sla.SUITE, exchange.SUITE)


def _terminate(signum: int, _frame: FrameType | None) -> None:
    """Turns SIGTERM into an exception, so servers and temporary directories are cleaned up."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("prefixes", nargs="*", metavar="NAME-PREFIX")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and stop")
    args = parser.parse_args(argv)
    every = [name for suite in SUITES for name in suite.names]
    selected = [n for n in every if not args.prefixes or n.startswith(tuple(args.prefixes))]
    if args.list:
        print("\n".join(every))
        return 0
    if not selected:
        parser.error(f"no benchmark starts with {' or '.join(args.prefixes)}; see --list")
    signal.signal(signal.SIGTERM, _terminate)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load}; figures are compared within this run")
    results: list[Result] = []
    failed = False
    for suite in SUITES:
        names = [n for n in suite.names if n in selected]
        if not names:
            continue
        try:
            for result in suite.run(names):
                results.append(result)
        except Exception:
            failed = True
            traceback.print_exc()
            print(f"bench: failed: {', '.join(names)}", file=sys.stderr)
    if results:
        print()
        print(report.table(results))
        report.write(results)
        print(f"\nwrote {report.RESULTS_FILE}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
