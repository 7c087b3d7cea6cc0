"""A partner that stays unreachable opens an alert ticket; its return is noted on it.

The delivery worker records when a partner became unreachable
(`partners.down_since`, set by a failed call, cleared by a delivery that goes
through or by any event from the partner). After each round it calls
`OutageAlerts.check` with the partners' delivery states, which files one alert
ticket per outage longer than the policy's threshold (as the node itself, in the
policy's category and store) and records it in `partners.alert_ticket_id`; once
the partner is reachable again it adds a comment to that ticket and forgets it.
Each outage files once, whatever the number of processes: the partner's row is
locked while it is decided, and the ticket's request id names the outage.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from exchange.service import ExchangeService
from node.domain.errors import DomainError, InvalidArgument
from node.domain.partner import Delivery, Partner, PartnerState
from node.domain.roles import SYSTEM_ACTOR, Role
from node.domain.status import FINAL_KINDS
from node.domain.ticket import TicketDraft, User, Visibility
from node.store.tx import Tx

log = logging.getLogger("hdx.exchange")
ERROR_EXCERPT = 500
"""How much of the last delivery error the alert ticket repeats."""


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """When an unreachable partner is an alert, and where its ticket goes.

    Attributes:
        after: how long a partner may stay unreachable before it is one.
        category: the alert ticket's category.
        store: the alert ticket's store; empty: no ticket (`hdx status` still flags it).
    """

    after: timedelta
    category: str = "monitoring"
    store: str = ""

    def overdue(self, delivery: Delivery, now: datetime) -> bool:
        """Whether a partner in this delivery state has been unreachable too long."""
        return delivery.down_since is not None and now - delivery.down_since >= self.after


class OutageAlerts:
    """Alert tickets for partners unreachable past the policy's threshold.

    Args:
        exchange: the node's exchange service (its database, clock and ticket service).
        policy: the threshold and where alert tickets go.
    """

    def __init__(self, exchange: ExchangeService, policy: AlertPolicy) -> None:
        self.tickets = exchange.tickets
        self.db = exchange.db
        self.clock = exchange.clock
        self.policy = policy

    def check(self, states: Sequence[tuple[Partner, Delivery]]) -> datetime | None:
        """Files an alert ticket for each partner unreachable too long that has none yet,
        and comments on the alert ticket of each partner reachable again.

        Args:
            states: every partner with where delivery to it stands, as the delivery worker
                read them after its round.

        Returns:
            When the next outage known now will have lasted too long, if any.
        """
        now = self.clock.now()
        for partner, delivery in states:
            if self._back(delivery) or self._alarming(partner, delivery, now):
                try:
                    self._settle(partner.node_id, now)
                except DomainError as error:
                    log.warning("alert for partner %s: %s", partner.node_id, error)
        if not self.policy.store:
            return None
        due = [
            d.down_since + self.policy.after
            for _, d in states
            if d.down_since is not None
            and d.alert_ticket_id is None
            and not self.policy.overdue(d, now)
        ]
        return min(due, default=None)

    def validate(self) -> None:
        """Checks that the policy's category and store are in the catalogue.

        Raises:
            InvalidArgument: naming the setting.
        """
        if not self.policy.store:
            return
        with self.db.read() as tx:
            if tx.category(self.policy.category) is None:
                raise InvalidArgument(
                    "exchange.alert_category",
                    f"no such category {self.policy.category!r} in the catalogue",
                )
            if tx.store(self.policy.store) is None:
                raise InvalidArgument(
                    "exchange.alert_store", f"no such store {self.policy.store!r} in the catalogue"
                )

    def _back(self, delivery: Delivery) -> bool:
        return delivery.alert_ticket_id is not None and delivery.down_since is None

    def _alarming(self, partner: Partner, delivery: Delivery, now: datetime) -> bool:
        return (
            bool(self.policy.store)
            and delivery.alert_ticket_id is None
            and partner.state is PartnerState.ACTIVE
            and self.policy.overdue(delivery, now)
        )

    def _settle(self, node_id: str, now: datetime) -> None:
        """Opens or comments on the partner's alert ticket, deciding again with its row
        locked (another process of the node may have done it meanwhile)."""
        with self.db.write() as tx:
            partner = tx.links.partner(node_id, for_update=True)
            assert partner is not None, "partners are never deleted"
            delivery = tx.links.delivery(node_id)
            if self._back(delivery):
                assert delivery.alert_ticket_id is not None
                self._comment_back(tx, partner, delivery.alert_ticket_id, now)
            elif self._alarming(partner, delivery, now):
                self._open(tx, partner, delivery, now)

    def _open(self, tx: Tx, partner: Partner, delivery: Delivery, now: datetime) -> None:
        assert delivery.down_since is not None
        since = delivery.down_since
        tx.add_user(User(SYSTEM_ACTOR.login, "this node", Role.SYSTEM))
        waiting = tx.links.outbox_size(partner.node_id)
        ticket = self.tickets.file(
            tx,
            SYSTEM_ACTOR,
            TicketDraft(
                category=self.policy.category,
                title=f"Partner node {partner.node_id} unreachable",
                description=(
                    f"Deliveries to partner node {partner.name} ({partner.node_id}, "
                    f"{partner.endpoint}) have failed since {since:%Y-%m-%d %H:%M} UTC: "
                    f"{delivery.failures} calls in a row, the last with: "
                    f"{delivery.last_error[:ERROR_EXCERPT]}\n"
                    f"{waiting} events wait for it. A comment follows when it is reachable "
                    "again; `hdx status` shows where delivery stands."
                ),
                store=self.policy.store,
                request_id=f"outage:{partner.node_id}:{since:%Y%m%dT%H%M%S}",
            ),
        )
        tx.links.update_partner(partner.node_id, alert_ticket_id=ticket.id)
        log.warning(
            "partner %s unreachable since %s: alert ticket %s", partner.node_id, since, ticket.key
        )

    def _comment_back(self, tx: Tx, partner: Partner, ticket_id: int, now: datetime) -> None:
        ticket = tx.ticket(ticket_id, for_update=True)
        if ticket is not None and self.tickets.workflow.kind(ticket.status) not in FINAL_KINDS:
            self.tickets.remark(
                tx,
                SYSTEM_ACTOR,
                ticket,
                f"Partner node {partner.node_id} is reachable again "
                f"({now:%Y-%m-%d %H:%M} UTC): delivery resumes.",
                Visibility.PUBLIC,
            )
        tx.links.update_partner(partner.node_id, alert_ticket_id=None)
