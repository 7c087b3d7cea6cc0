"""A contractor node that stays unreachable: the retail node's delivery worker opens one
alert ticket once the outage passes the threshold (a fake clock moves time), and notes
on it when the contractor is back; two nodes over TLS on loopback."""

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from exchange.alerts import AlertPolicy, OutageAlerts
from exchange.server import start_exchange_server
from node.domain.partner import Delivery, LinkState
from node.domain.ticket import TicketDraft, TicketQuery
from tests.conftest import BACKENDS, FakeClock
from tests.exchange_nodes import ChainNode, link_state, retail_and_contractor, wait_for

POLICY = AlertPolicy(after=timedelta(minutes=30), category="monitoring", store="msk-001")


@pytest.fixture(params=BACKENDS)
def nodes(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ChainNode, ChainNode, FakeClock]]:
    clock = FakeClock()
    with retail_and_contractor(request, tmp_path, clock, alerts=POLICY) as (retail, contractor):
        yield retail, contractor, clock


def delivery(node: ChainNode) -> Delivery:
    with node.desk.db.read() as tx:
        return tx.links.delivery(node.exchange.partners()[0][0].node_id)


def check(alerts: OutageAlerts, node: ChainNode) -> datetime | None:
    """What alerts do after a round of node's delivery worker."""
    return alerts.check([(partner, delivery) for partner, delivery, _ in node.exchange.partners()])


def alert_tickets(node: ChainNode) -> list[str]:
    desk = node.desk
    query = TicketQuery(category="monitoring")
    tickets, _ = desk.tickets.list_tickets(desk.actor("ivan"), query, include_closed=True)
    return [t.key for t in tickets]


def test_a_partner_unreachable_past_the_threshold_opens_one_alert_ticket_noted_on_its_return(
    nodes: tuple[ChainNode, ChainNode, FakeClock],
) -> None:
    retail, contractor, clock = nodes
    r = retail.desk
    contractor.run(contractor.server.stop(0))
    key = r.tickets.create(r.actor("anna"), TicketDraft(category="pos-down", title="POS dead")).key
    r.tickets.transition(r.actor("ivan"), key, "start", "")
    retail.exchange.hand_off(r.actor("ivan"), key, contractor.node_id)
    down_since = wait_for("a failed delivery", lambda: delivery(retail).down_since)
    alerts = OutageAlerts(retail.exchange, POLICY)

    clock.advance(timedelta(minutes=29))
    assert check(alerts, retail) == down_since + POLICY.after
    assert alert_tickets(retail) == []

    clock.advance(timedelta(minutes=2))
    assert check(OutageAlerts(retail.exchange, replace(POLICY, store="")), retail) is None
    assert alert_tickets(retail) == [], "no alert store, no alert ticket"
    retail.courier.wake("")  # the worker's round after its backoff
    alert_id = wait_for("the alert ticket", lambda: delivery(retail).alert_ticket_id)
    alert = r.tickets.get(r.actor("ivan"), f"RET-{alert_id}")
    assert (alert.category, alert.store, alert.requester, alert.status) == (
        "monitoring",
        "msk-001",
        "system",
        "new",
    )
    assert alert.title == f"Partner node {contractor.node_id} unreachable"
    assert contractor.endpoint in alert.description
    assert "1 events wait for it" in alert.description
    assert check(alerts, retail) is None, "an outage with its alert ticket waits for nothing more"
    clock.advance(timedelta(hours=3))
    failures = delivery(retail).failures
    retail.courier.wake("")
    wait_for("another failed delivery", lambda: delivery(retail).failures > failures)
    assert check(alerts, retail) is None
    assert alert_tickets(retail) == [alert.key], "one alert ticket per outage"

    contractor.server = contractor.run(
        start_exchange_server(contractor.exchange, contractor.endpoint, tls=True)
    )[0]
    clock.advance(timedelta(minutes=10))  # past the longest backoff
    retail.courier.wake("")
    wait_for("the hand-off", lambda: link_state(retail, key) is LinkState.ACCEPTED)
    wait_for("the note on the alert", lambda: delivery(retail).alert_ticket_id is None)
    assert delivery(retail).down_since is None
    notes = r.tickets.comments(r.actor("ivan"), alert.key)
    assert [(n.author, n.body) for n in notes] == [
        (
            "system",
            f"Partner node {contractor.node_id} is reachable again "
            f"({clock.now():%Y-%m-%d %H:%M} UTC): delivery resumes.",
        )
    ]
    assert alert_tickets(retail) == [alert.key]
