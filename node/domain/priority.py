"""Priority at registration: an impact x urgency matrix, raised for flagship stores.

A stop-trade category (the store cannot sell) is P1 whatever the matrix says.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from node.domain.ticket import Level, Priority, Tier


def _default_table() -> dict[tuple[Level, Level], Priority]:
    by_score = {8: Priority.P1, 7: Priority.P1, 6: Priority.P2, 5: Priority.P3, 4: Priority.P3}
    return {
        (impact, urgency): by_score.get(impact + urgency, Priority.P4)
        for impact in Level
        for urgency in Level
    }


@dataclass(frozen=True, slots=True)
class PriorityMatrix:
    """Maps (impact, urgency) to a priority.

    Attributes:
        table: a priority for every (impact, urgency) pair.
        flagship_raises_impact: a flagship store's ticket counts one impact level higher.
    """

    table: Mapping[tuple[Level, Level], Priority]
    flagship_raises_impact: bool = True

    def priority(self, impact: Level, urgency: Level, tier: Tier, stop_trade: bool) -> Priority:
        """The priority of a ticket at registration.

        Args:
            impact: how much of the business is hit.
            urgency: how soon it hurts.
            tier: the store's tier.
            stop_trade: the category stops the store from selling.

        Returns:
            P1 for stop-trade, else the matrix entry for the (possibly raised) impact.
        """
        if stop_trade:
            return Priority.P1
        if self.flagship_raises_impact and tier is Tier.FLAGSHIP:
            impact = Level(min(impact + 1, Level.CRITICAL))
        return self.table[(impact, urgency)]


DEFAULT_MATRIX = PriorityMatrix(table=_default_table())
