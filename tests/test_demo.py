"""`make demo`: the story with three real `hdx serve` processes, and the comparison of the
nodes' `hdx sla verify` outputs that decides whether it exits non-zero.

The demo itself runs once, as `make demo` runs it. That it fails when two nodes print
different verdicts for a link cannot be shown with nodes that do not lie; so the
comparison (`demo.verdicts.disagreements`) is tested on its own, with outputs in the
form `hdx sla verify` prints them.
"""

import os
import subprocess
import sys

from demo.verdicts import Printed, disagreements

UP = "2e92b7395ea143fa879daee3e152092c"
DOWN = "e165cfa257a84f0f86afb6fe90ed6b00"
UP_VERDICT = """\
  verified: 15 events, signatures, chains and receipts
  origin bakery-chain-8ae41dad, partner fixit-registers-836e10af: closed
  respond by 2026-11-23 17:26:33Z: met 0h09m59s early, done 2026-11-23 17:16:33Z
  resolve by 2026-11-23 20:16:34Z (+0h00m01s paused): met 2h59m57s early, done 2026-11-23 17:16:36Z
  held by fixit-registers-836e10af from 2026-11-23 17:16:33Z
"""
DOWN_VERDICT = """\
  verified: 12 events, signatures, chains and receipts
  origin fixit-registers-836e10af, partner volga-service-centre-8eba324e: closed
  respond by 2026-11-23 17:26:34Z: met 0h09m59s early, done 2026-11-23 17:16:34Z
  resolve by 2026-11-23 19:16:34Z (+0h00m01s paused): met 1h59m58s early, done 2026-11-23 17:16:36Z
"""


def verify_output(key: str, *links: tuple[str, str, str]) -> str:
    """What `hdx sla verify key` prints for links given as (id, header's words, lines)."""
    blocks = "".join(f"\nlink {link}: {words}\n{lines}" for link, words, lines in links)
    return f"{key}: {len(links)} link(s)\n{blocks}"


def chain_outputs(
    up_at_contractor: str = UP_VERDICT, down_at_service: str = DOWN_VERDICT
) -> dict[str, Printed]:
    """The three nodes' outputs for a chain RET -> CON -> SVC."""
    return {
        "RET": Printed(verify_output("RET-1", (UP, "handed to fixit", UP_VERDICT)), ok=True),
        "CON": Printed(
            verify_output(
                "CON-1",
                (UP, "handed to us by bakery-chain", up_at_contractor),
                (DOWN, "handed to volga", DOWN_VERDICT),
            ),
            ok=True,
        ),
        "SVC": Printed(
            verify_output("SVC-1", (DOWN, "handed to us by fixit", down_at_service)), ok=True
        ),
    }


def test_nodes_that_print_the_same_verdict_for_each_link_agree() -> None:
    assert disagreements(chain_outputs()) == []


def test_a_verdict_that_differs_between_the_two_nodes_of_a_link_is_named() -> None:
    breached = DOWN_VERDICT.replace("met 1h59m58s early", "breached by 0h00m02s")

    problems = disagreements(chain_outputs(down_at_service=breached))

    assert problems == [
        f"link {DOWN}: CON says 'resolve by 2026-11-23 19:16:34Z (+0h00m01s paused): met "
        "1h59m58s early, done 2026-11-23 17:16:36Z', SVC says 'resolve by 2026-11-23 19:16:34Z "
        "(+0h00m01s paused): breached by 0h00m02s, done 2026-11-23 17:16:36Z'"
    ]


def test_a_line_one_node_prints_and_the_other_does_not_is_a_difference() -> None:
    extra = UP_VERDICT + "  held by bakery-chain-8ae41dad from 2026-11-23 17:16:36Z\n"

    problems = disagreements(chain_outputs(up_at_contractor=extra))

    assert problems == [
        f"link {UP}: RET says '(nothing)', CON says "
        "'held by bakery-chain-8ae41dad from 2026-11-23 17:16:36Z'"
    ]


def test_a_log_that_does_not_verify_fails_even_when_both_nodes_print_the_same() -> None:
    failed = "  verification FAILED (15 events):\n    row 7: signature: does not verify\n"
    outputs = chain_outputs(up_at_contractor=failed)
    outputs["RET"] = Printed(verify_output("RET-1", (UP, "handed to fixit", failed)), ok=False)

    problems = disagreements(outputs)

    assert problems == [
        "RET: hdx sla verify failed",
        f"link {UP} on RET: verification FAILED (15 events):",
        f"link {UP} on CON: verification FAILED (15 events):",
    ]


def test_a_link_without_a_verdict_fails() -> None:
    unjudged = (
        "  verified: 1 events, signatures, chains and receipts, 1 awaiting their receipt\n"
        "  no verdict: the offer has not been received\n"
    )
    outputs = chain_outputs(down_at_service=unjudged)

    problems = disagreements(outputs)

    assert problems[0] == f"link {DOWN} on SVC: no verdict: the offer has not been received"


def test_a_link_only_one_of_its_nodes_prints_fails() -> None:
    outputs = chain_outputs()
    outputs["SVC"] = Printed("SVC-1: 0 link(s)\n", ok=True)

    assert disagreements(outputs) == [f"link {DOWN}: printed by CON, not by both of its nodes"]


def test_make_demo_tells_the_story_with_three_node_processes_and_exits_zero() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HDX_")}

    result = subprocess.run(
        [sys.executable, "-m", "demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=110,
        check=False,
    )

    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    for chapter in range(1, 8):
        assert f"\n{chapter}. " in out
    for crossing in (
        "RET->CON offer #1: RET-1 'POS does not work' (P1, stop-trade)",
        "CON->RET accept #1: as CON-1",
        "CON->SVC offer #1: CON-1",
        "SVC->CON pause #",
        "CON->RET pause #",
        "CON->RET comment #",
        "RET->CON confirmed #",
        "CON->SVC confirmed #",
    ):
        assert crossing in out
    assert "now: RET-1 waiting_requester | CON-1 waiting_requester | SVC-1 waiting_requester" in (
        out
    )
    assert "now: RET-1 closed | CON-1 closed | SVC-1 closed" in out
    assert out.count("$ hdx sla verify ") == 3
    assert out.count("  verified: ") == 4, "each of the two links, on both of its nodes"
    assert "both nodes of each link print the same verdict" in out
