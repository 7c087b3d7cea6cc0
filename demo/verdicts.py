"""Whether the nodes of a chain agree on the SLA of every link between them.

Each node prints `hdx sla verify TICKET` for its ticket of the chain: one block per
link of that ticket, headed `link <id>: handed to ...` (which way the link goes,
seen from that node), then the link's verification and its verdict. The verdict is
a pure function of the link's signed log and both nodes of a link hold the same log,
so the lines after the header must be the same on both. `disagreements` says where
they are not, or where a log does not verify: the demo fails on any.
"""

from collections.abc import Mapping
from dataclasses import dataclass

VERIFIED = "  verified: "
"""How the first line of a link whose log verifies begins."""
VERDICT = "  origin "
"""How the first line of a link's verdict begins (`exchange.verdict.describe`)."""


@dataclass(frozen=True, slots=True)
class Printed:
    """What `hdx sla verify` printed on one node, and whether it exited 0."""

    output: str
    ok: bool


def links_of(output: str) -> dict[str, list[str]]:
    """The lines of each link block of `hdx sla verify` output, by link id, without the
    header (which is worded from the printing node's side)."""
    blocks = output.split("\nlink ")[1:]
    return {block.split(":", 1)[0]: block.splitlines()[1:] for block in blocks}


def disagreements(printed: Mapping[str, Printed]) -> list[str]:
    """Everything wrong with the verdicts the nodes printed (by node name), in words.

    Wrong: a node's `hdx sla verify` failed; a link's log does not verify or has no
    verdict; a link printed by only one node (both ends must judge it); and the two
    nodes of a link printing different lines for it.

    Returns:
        One line per problem; empty when every link verifies and both of its nodes agree.
    """
    problems: list[str] = []
    seen: dict[str, list[tuple[str, list[str]]]] = {}
    for node, result in printed.items():
        if not result.ok:
            problems.append(f"{node}: hdx sla verify failed")
        for link, lines in links_of(result.output).items():
            seen.setdefault(link, []).append((node, lines))
            if not lines or not lines[0].startswith(VERIFIED):
                first = lines[0].strip() if lines else "nothing printed"
                problems.append(f"link {link} on {node}: {first}")
            elif len(lines) < 2 or not lines[1].startswith(VERDICT):
                why = lines[1].strip() if len(lines) > 1 else "no verdict"
                problems.append(f"link {link} on {node}: {why}")
    for link, ends in seen.items():
        if len(ends) != 2:
            names = ", ".join(node for node, _ in ends)
            problems.append(f"link {link}: printed by {names}, not by both of its nodes")
            continue
        (one, ours), (other, theirs) = ends
        for index in range(max(len(ours), len(theirs))):
            mine = ours[index].strip() if index < len(ours) else "(nothing)"
            yours = theirs[index].strip() if index < len(theirs) else "(nothing)"
            if mine != yours:
                problems.append(f"link {link}: {one} says {mine!r}, {other} says {yours!r}")
                break
    return problems
