"""A store's cash register dies; the help desk serves it by the rules of the field.

One node of a bakery chain on SQLite in a temporary directory, started with the
real `hdx` command and driven over gRPC as its people would: the store files,
routing puts the ticket in the POS queue, an engineer works it, a colleague who
is not assigned cannot close it, the store disputes and then confirms, and only
the administrator can reopen a closed ticket. Prints the timeline; exits
non-zero if the node does anything the rules forbid.
"""

import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from node.api.client import ApiError, HelpDeskClient
from node.domain.ticket import HistoryEntry, TicketDraft, Visibility

HDX = [sys.executable, "-m", "cli"]
SERVE_ANY_PORT = ["serve", "--listen", "127.0.0.1:0", "--exchange-listen", "127.0.0.1:0"]
STORES = """
[[stores]]
code = "msk-001"
name = "Bakery, Tverskaya 1"
region = "Moscow"
timezone = "Europe/Moscow"
tier = "flagship"

[[stores]]
code = "vvo-002"
name = "Bakery, Svetlanskaya 2"
region = "Primorye"
timezone = "Asia/Vladivostok"
"""


class StoryError(Exception):
    """The node did something the rules forbid."""


def hdx(data_dir: Path, *args: str) -> str:
    done = subprocess.run(
        [*HDX, "--data-dir", str(data_dir), *args], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@contextmanager
def running_node(data_dir: Path) -> Iterator[str]:
    """Serves the node in its own process; yields host:port."""
    server = subprocess.Popen(
        [*HDX, "--data-dir", str(data_dir), *SERVE_ANY_PORT],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if "serving on" not in line:
            raise StoryError(f"the node did not start: {line!r}")
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        server.terminate()
        server.wait(timeout=30)


def say(who: str, what: str) -> None:
    print(f"  {who:>8} | {what}")


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise StoryError(what)


def refused(call: object, code: str) -> str:
    """Runs call, which the node must refuse with code; returns the node's message."""
    try:
        assert callable(call)
        call()
    except ApiError as error:
        expect(error.code == code, f"expected {code}, got {error}")
        return error.details
    raise StoryError(f"the node allowed what it must refuse with {code}")


def set_up(data_dir: Path) -> dict[str, str]:
    """Creates the node, its catalogue and people; returns an API token per login."""
    print("Setting up the retail network's node (hdx init, catalogue, people) ...")
    admin_token = hdx(data_dir, "init", "--name", "bakery-chain", "--prefix", "RET").split("=")[-1]
    (data_dir / "stores.toml").write_text(STORES, encoding="utf-8")
    hdx(data_dir, "catalog", "load", str(data_dir / "stores.toml"))
    hdx(
        data_dir,
        "user",
        "add",
        "anna",
        "--role",
        "requester",
        "--store",
        "msk-001",
        "--name",
        "Anna, shift manager",
    )
    hdx(data_dir, "user", "add", "ivan", "--role", "agent", "--name", "Ivan, POS engineer")
    hdx(data_dir, "user", "add", "olga", "--role", "agent", "--name", "Olga, engineer")
    tokens = {login: hdx(data_dir, "token", "create", login) for login in ("anna", "ivan", "olga")}
    tokens["admin"] = admin_token
    return tokens


def story(data_dir: Path) -> None:
    tokens = set_up(data_dir)
    with running_node(data_dir) as target:
        print(f"Node serving on {target}.\n")
        people = {login: HelpDeskClient(target, token) for login, token in tokens.items()}
        anna, ivan, olga, admin = (people[k] for k in ("anna", "ivan", "olga", "admin"))
        seen_by_store: list[HistoryEntry] = []
        watcher = threading.Thread(target=lambda: seen_by_store.extend(anna.watch()), daemon=True)
        watcher.start()

        print("09:12  The cash register of store msk-001 dies.")
        pos = anna.create(
            TicketDraft(
                category="pos-down",
                title="POS does not work",
                description="Register 2 shows a black screen.",
            )
        )
        t = pos.ticket
        say("anna", f"files {t.key} '{t.title}' from the catalogue")
        expect(t.stop_trade and t.priority.name == "P1", "stop-trade must be P1")
        say("node", f"{t.key}: stop-trade, {t.priority.name}, routed to queue '{t.group}'")
        scales = anna.create(TicketDraft(category="scales", title="Scales print no labels")).ticket
        say("anna", f"files {scales.key} '{scales.title}' ({scales.priority.name})")

        queue, _ = ivan.list_tickets()
        say(
            "ivan",
            "opens his queue: "
            + ", ".join(
                f"{v.ticket.key} {v.ticket.priority.name}{' STOP' if v.ticket.stop_trade else ''}"
                for v in queue
            ),
        )
        expect(queue[0].ticket.key == t.key, "stop-trade must lead the queue")

        ivan.transition(t.key, "start")
        say("ivan", f"starts {t.key}; it is assigned to him")
        ivan.comment(t.key, "PSU of register 2 is dead; spare in the van.", Visibility.INTERNAL)
        say("ivan", "notes internally: PSU dead, spare in the van")
        ivan.comment(t.key, "An engineer is on the way, ETA 40 minutes.")
        say("ivan", "tells the store: engineer on the way")

        why = refused(lambda: olga.transition(t.key, "resolve"), "FAILED_PRECONDITION")
        say("olga", f"tries to resolve {t.key}: refused ({why})")

        ivan.transition(t.key, "resolve")
        say("ivan", f"resolves {t.key}")
        anna.transition(t.key, "dispute", "Register 2 works but prints no receipts.")
        say("anna", "disputes: register 2 prints no receipts")
        ivan.transition(t.key, "resolve")
        say("ivan", "fixes the printer cable and resolves again")
        closed = anna.transition(t.key, "confirm").ticket
        say("anna", f"confirms; {t.key} is {closed.status}")
        expect(closed.status == "closed", "a confirmed ticket must be closed")

        why = refused(
            lambda: ivan.transition(t.key, "reopen", "Again black"), "FAILED_PRECONDITION"
        )
        say("ivan", f"tries to reopen {t.key}: refused ({why})")
        reopened = admin.transition(t.key, "reopen", "Store reports the screen went dark again.")
        say("admin", f"reopens {t.key}: {reopened.ticket.status}")

        print(f"\nHistory of {t.key}:")
        for entry in anna.history(t.key):
            c = entry.change
            print(f"  {entry.actor:>8} | {c.action:10} {c.field}: {c.before or '-'} -> {c.after}")

        for client in people.values():
            client.close()
        watcher.join(timeout=5)
    internal = [e for e in seen_by_store if e.change.field == "internal"]
    expect(not internal, "the store must never see internal comments")
    print(f"\nThe store's live feed showed {len(seen_by_store)} changes, none of them internal.")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="hdx-demo-") as tmp:
        try:
            story(Path(tmp) / "retail")
        except (StoryError, ApiError, subprocess.CalledProcessError) as error:
            print(f"\nDEMO FAILED: {error}", file=sys.stderr)
            return 1
    print("Demo finished: every rule held.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
