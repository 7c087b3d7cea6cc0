"""`make demo`: the end-to-end story of DESIGN.md with three nodes, each its own process.

A bakery chain (RET), its register contractor (CON) and a regional service centre
(SVC) are set up as their operators would (`hdx init`, catalogue, people and tokens,
their own SLA, `hdx partner invite` / `partner add --fingerprint` both ways with the
terms agreed), each on SQLite in a temporary directory, and each served by its own
`hdx serve` on loopback ports. Their people then play the story (`demo.story`), and
each node prints `hdx sla verify` for its ticket of the chain. The demo exits
non-zero when a rule breaks, when any signature, chain or receipt fails to verify,
or when the two nodes of a link print different verdicts for it.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

from demo import nodes
from demo.nodes import DemoFailed, Person
from demo.story import Chain, Story
from demo.verdicts import Printed, disagreements
from demo.wire import Wire
from node.api.client import ApiError

STORES = """
[[stores]]
code = "msk-001"
name = "Bakery, Tverskaya 1"
region = "Moscow"
timezone = "Europe/Moscow"
tier = "flagship"
"""


def own_sla(respond: str, resolve: str) -> str:
    """hdx.toml tables of a partner's own SLA: stop-trade within respond and resolve,
    round the clock (the partner promises its clients less than they promise the store)."""
    return f"""
[sla.hours]
business = {{ "mon-fri" = "09:00-18:00" }}

[[sla.policies]]
name = "stop-trade"
hours = "24/7"
first_response = "{respond}"
resolution = "{resolve}"
match = {{ stop_trade = true }}

[[sla.policies]]
name = "standard"
first_response = "4h"
resolution = "27h"
"""


def set_up(base: Path) -> Chain:
    """The three nodes, set up (not serving yet)."""
    retail = nodes.create(
        base,
        "RET",
        "bakery-chain",
        [
            Person("anna", "requester", "Anna, shift manager", "msk-001"),
            Person("ivan", "agent", "Ivan, POS engineer on duty"),
            Person("olga", "agent", "Olga, engineer"),
        ],
        catalog=STORES,
    )
    contractor = nodes.create(
        base,
        "CON",
        "fixit-registers",
        [Person("petr", "agent", "Petr, field engineer")],
        settings=own_sla("10m", "3h"),
    )
    service = nodes.create(
        base,
        "SVC",
        "volga-service-centre",
        [Person("sara", "agent", "Sara, repair technician")],
        settings=own_sla("10m", "2h"),
    )
    return Chain(retail, contractor, service)


def pair(chain: Chain) -> None:
    """Pairs the serving nodes: the bakery with its contractor, the contractor with the
    service centre, each with the terms its admin agreed."""
    retail, contractor, service = chain.nodes
    nodes.pair(
        retail,
        contractor,
        "--categories=pos-down,fiscal-printer,card-terminal",
        "--accept-minutes=5",
        "--respond-minutes=15",
        "--resolve-minutes=240",
    )
    nodes.pair(
        contractor,
        service,
        "--categories=pos-down",
        "--accept-minutes=10",
        "--respond-minutes=10",
        "--resolve-minutes=180",
    )


def verdicts(chain: Chain, keys: dict[str, str]) -> None:
    """Prints each node's `hdx sla verify` of its ticket of the chain.

    Raises:
        DemoFailed: a log does not verify, or the two nodes of a link disagree.
    """
    printed: dict[str, Printed] = {}
    for node in chain.nodes:
        key = keys[node.prefix]
        status, out, err = nodes.run_hdx(node.data_dir, "sla", "verify", key)
        printed[node.prefix] = Printed(out + err, status == 0)
        print(f"\n{node.prefix} ({node.node_id}) $ hdx sla verify {key}")
        print("\n".join(f"  {line}".rstrip() for line in (out + err).rstrip().splitlines()))
    problems = disagreements(printed)
    if problems:
        raise DemoFailed("the nodes do not agree:\n  " + "\n  ".join(problems))
    print(
        "\nEvery signature, chain and receipt verifies; "
        "both nodes of each link print the same verdict."
    )


def introduce(chain: Chain, seconds: float) -> None:
    print(f"Three nodes set up with hdx, each serving in its own process ({seconds:.1f} s):")
    for node in chain.nodes:
        print(
            f"  {node.prefix}  {node.name:21} {node.node_id:30} "
            f"API {node.api}, exchange {node.exchange} (TLS)"
        )
    print(
        "RET hands stop-trade tickets to CON, which hands parts work to SVC. The story plays\n"
        "in seconds: every instant below is real, and so are the signatures and receipts."
    )


def main() -> int:
    for name in [name for name in os.environ if name.startswith("HDX_")]:
        del os.environ[name]  # the demo's nodes run on their own settings only
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hdx-demo-") as tmp:
        try:
            chain = set_up(Path(tmp))
            with nodes.serving(chain.nodes):
                pair(chain)
                introduce(chain, time.monotonic() - started)
                story = Story(chain, Wire(chain.nodes))
                try:
                    story.play()
                finally:
                    story.wire.close()
                verdicts(chain, story.keys)
        except (DemoFailed, ApiError) as error:
            print(f"\nDEMO FAILED: {error}", file=sys.stderr)
            return 1
    print(f"Demo finished in {time.monotonic() - started:.1f} s: every rule held.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
