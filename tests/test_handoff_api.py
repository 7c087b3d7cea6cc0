"""Handing a ticket to a partner node through the HelpDesk API, over real gRPC: the retail
node serves its API with the exchange's hand-off, its contractor node takes the offer
over the exchange (TLS on loopback), and the ticket shows the link."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from node.api.client import ApiError, HelpDeskClient
from node.domain.partner import LinkState, Side
from node.domain.ticket import TicketDraft
from tests.conftest import BACKENDS, Api, FakeClock, ServerThread
from tests.exchange_nodes import ChainNode, retail_and_contractor, wait_for


@dataclass
class Served:
    retail: ChainNode
    contractor: ChainNode
    clients: dict[str, HelpDeskClient]
    """A client of the retail node's API per user."""

    def ticket(self) -> str:
        """A ticket anna filed and ivan started working."""
        filed = self.clients["anna"].create(TicketDraft(category="pos-down", title="POS dead"))
        return self.clients["ivan"].transition(filed.ticket.key, "start").ticket.key


@pytest.fixture(params=BACKENDS)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    with retail_and_contractor(request, tmp_path, FakeClock()) as (retail, contractor):
        desk = retail.desk
        server = ServerThread(desk, hand_off=retail.exchange.hand_off)
        clients = {
            login: HelpDeskClient(server.target, desk.admin.create_token(login), attempts=1)
            for login in ("anna", "ivan")
        }
        try:
            yield Served(retail, contractor, clients)
        finally:
            for client in clients.values():
                client.close()
            server.stop()


def test_an_engineer_hands_a_ticket_off_and_sees_its_link_follow_the_partner(
    served: Served,
) -> None:
    ivan, contractor = served.clients["ivan"], served.contractor
    key = served.ticket()

    view = ivan.hand_off(key, contractor.node_id, "register 2, since this morning")

    assert view.ticket.status == "waiting_partner"
    [link] = view.ticket.links
    assert (link.partner, link.partner_name, link.side, link.state, link.remote_ticket) == (
        contractor.node_id,
        "contractor",
        Side.ORIGIN,
        LinkState.OFFERED,
        "",
    )
    wait_for("the accept", lambda: ivan.get(key).ticket.links[0].state is LinkState.ACCEPTED)
    theirs = ivan.get(key).ticket.links[0].remote_ticket
    assert theirs.startswith("CON-")
    c = contractor.desk
    assert c.tickets.get(c.actor("olga"), theirs).title == "POS dead"
    assert served.clients["anna"].get(key).ticket.links[0].remote_ticket == theirs, "the store's"


@pytest.mark.parametrize(
    ("login", "key", "partner", "note", "says"),
    [
        ("anna", "{key}", "{partner}", "", "PERMISSION_DENIED: requester may not hand"),
        ("ivan", "{key}", "nobody", "", "NOT_FOUND: partner 'nobody' not found"),
        ("ivan", "{key}", "Not A Node", "", "INVALID_ARGUMENT: partner: must be 1-64"),
        ("ivan", "{key}", "", "", "INVALID_ARGUMENT: partner: must be 1-64"),
        ("ivan", "{key}", "{partner}", "x" * 1001, "INVALID_ARGUMENT: note: must be at most"),
        ("ivan", "{key}", "{partner}", "a\x00b", "INVALID_ARGUMENT: note: must not contain"),
        ("ivan", "RET-999", "{partner}", "", "NOT_FOUND: ticket 'RET-999' not found"),
        ("ivan", "XYZ-1", "{partner}", "", "INVALID_ARGUMENT: key: belongs to another node"),
    ],
    ids=[
        "requester",
        "unknown partner",
        "malformed partner",
        "no partner",
        "long note",
        "control character",
        "unknown ticket",
        "foreign key",
    ],
)
def test_a_refused_hand_off_says_why_and_changes_nothing(
    served: Served, *, login: str, key: str, partner: str, note: str, says: str
) -> None:
    ours = served.ticket()
    names = {"key": ours, "partner": served.contractor.node_id}

    with pytest.raises(ApiError) as refused:
        served.clients[login].hand_off(key.format(**names), partner.format(**names), note)

    assert str(refused.value).startswith(says)
    after = served.clients["ivan"].get(ours).ticket
    assert (after.status, after.links) == ("in_progress", ())
    assert served.retail.exchange.partners()[0][2] == 0, "nothing waits for the partner"
    assert served.clients["ivan"].hand_off(ours, served.contractor.node_id).ticket.links


def test_a_node_that_serves_no_exchange_says_hand_offs_are_unimplemented(api: Api) -> None:
    key = api["ivan"].create(TicketDraft(category="other", title="Door", store="msk-001"))

    with pytest.raises(ApiError) as refused:
        api["ivan"].hand_off(key.ticket.key, "contractor-node")

    assert refused.value.code == "UNIMPLEMENTED"
    assert "serves no exchange" in refused.value.details
    assert api["ivan"].get(key.ticket.key).ticket.status == "new"
