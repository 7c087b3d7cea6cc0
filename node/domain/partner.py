"""Partner nodes and the links between our tickets and theirs, as the node stores them.

The exchange (exchange/) gives these their meaning; the node keeps them beside
the tickets so that a change to a linked ticket and the event reporting it to the
partner are written in one transaction.
"""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from node.domain.errors import InvalidArgument


class PartnerRole(StrEnum):
    CONTRACTOR = "contractor"
    """Works for us: we hand tickets to it."""
    CLIENT = "client"
    """We work for it: it hands tickets to us."""


class PartnerState(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    """Nothing is sent to it or accepted from it until resumed; its outbox waits."""
    REMOVED = "removed"


class Side(StrEnum):
    """Our side of a link."""

    ORIGIN = "origin"
    """We handed our ticket to the partner."""
    PARTNER = "partner"
    """The partner handed its ticket to us; ours was filed from its offer."""


class LinkState(StrEnum):
    OFFERED = "offered"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    RESOLVED = "resolved"
    CLOSED = "closed"
    RECALLED = "recalled"
    CONTROL = "control"
    """The link of the partners' own matters (key announcements), no ticket on it."""


LATE_OFFER_CHOICES = ("reject", "accept")


@dataclass(frozen=True, slots=True)
class Terms:
    """What the two organisations agreed (the underpinning contract), as this node keeps it.

    Attributes:
        categories: our categories that may be handed to a contractor; empty: any.
        accept_minutes, respond_minutes, resolve_minutes: the partner's agreed times.
        status_out: our status → wire status name, for what we report.
        status_in: wire status name → our status, for what the partner reports.
        late_offers: what we do with an offer whose deadlines our own rules cannot meet:
            'reject' it, or 'accept' it flagged at risk.
        category: the category of ours a ticket handed to us is filed under when its
            own category is not in our catalogue.
    """

    categories: tuple[str, ...] = ()
    accept_minutes: float = 15.0
    respond_minutes: float = 60.0
    resolve_minutes: float = 480.0
    status_out: dict[str, str] = field(default_factory=dict)
    status_in: dict[str, str] = field(default_factory=dict)
    late_offers: str = "accept"
    category: str = "other"

    def to_json(self) -> dict[str, Any]:
        return {
            "categories": list(self.categories),
            "accept_minutes": self.accept_minutes,
            "respond_minutes": self.respond_minutes,
            "resolve_minutes": self.resolve_minutes,
            "status_out": self.status_out,
            "status_in": self.status_in,
            "late_offers": self.late_offers,
            "category": self.category,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any], where: str = "terms") -> "Terms":
        """Terms from their stored or configured form; missing entries keep their defaults.

        Raises:
            InvalidArgument: naming the entry and the rule.
        """
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise InvalidArgument(f"{where}.{unknown[0]}", f"unknown; known: {', '.join(known)}")
        values: dict[str, Any] = {}
        for name in ("accept_minutes", "respond_minutes", "resolve_minutes"):
            if name in raw:
                value = raw[name]
                if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                    raise InvalidArgument(f"{where}.{name}", "must be a positive number")
                values[name] = float(value)
        for name in ("status_out", "status_in"):
            if name in raw:
                mapping = raw[name]
                if not isinstance(mapping, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
                ):
                    raise InvalidArgument(f"{where}.{name}", "must map names to names")
                values[name] = dict(mapping)
        if "categories" in raw:
            categories = raw["categories"]
            if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
                raise InvalidArgument(f"{where}.categories", "must be a list of category codes")
            values["categories"] = tuple(categories)
        if "late_offers" in raw:
            if raw["late_offers"] not in LATE_OFFER_CHOICES:
                raise InvalidArgument(f"{where}.late_offers", "must be 'reject' or 'accept'")
            values["late_offers"] = raw["late_offers"]
        if "category" in raw:
            if not isinstance(raw["category"], str) or not raw["category"]:
                raise InvalidArgument(f"{where}.category", "must name a category")
            values["category"] = raw["category"]
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Partner:
    """A node this one exchanges tickets with.

    Attributes:
        login: the user of ours that stands for the partner in tickets and history.
        plaintext: talk to it without TLS (local use only, set explicitly).
    """

    node_id: str
    name: str
    endpoint: str
    role: PartnerRole
    state: PartnerState
    login: str
    cert_pem: str
    plaintext: bool
    terms: Terms
    added_at: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where delivery to a partner stands.

    Attributes:
        failures: calls that failed in a row since the last success.
        retry_at: not before then (the backoff); None: now.
        down_since: unreachable since then; None while reachable.
        lease_owner, lease_until: the process delivering to the partner, and until when
            its lease lasts unless renewed; "" and None when none is.
    """

    failures: int
    retry_at: datetime | None
    down_since: datetime | None
    last_error: str
    last_heard_at: datetime | None
    alert_ticket_id: int | None
    lease_owner: str
    lease_until: datetime | None


@dataclass(slots=True)
class Link:
    """Our ticket linked to one on a partner, and the head of each direction's chain.

    Attributes:
        respond_by, resolve_by: the deadlines agreed on the link: the offer's, lowered by
            the accept (the partner's own, never later), set anew by a deadline change.
    """

    id: str
    partner: str
    ticket_id: int | None
    side: Side
    state: LinkState
    remote_ticket: str
    out_seq: int
    out_digest: bytes
    in_seq: int
    in_digest: bytes
    created_at: datetime
    respond_by: datetime | None = None
    resolve_by: datetime | None = None

    @classmethod
    def new(
        cls,
        link_id: str,
        partner: str,
        ticket_id: int | None,
        *,
        side: Side,
        state: LinkState,
        now: datetime,
    ) -> "Link":
        """A link with no event on it yet."""
        return cls(link_id, partner, ticket_id, side, state, "", 0, b"", 0, b"", now)


@dataclass(frozen=True, slots=True)
class TicketLink:
    """A link of a ticket as engineers see it: with whom, which way, how it stands."""

    partner: str
    partner_name: str
    side: Side
    state: LinkState
    remote_ticket: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """An event of a link's signed log, as sent, with its signed receipt once back."""

    id: int
    link: str
    partner: str
    outbound: bool
    seq: int
    kind: str
    digest: bytes
    envelope: bytes
    receipt: bytes | None
    received_at: datetime | None
    pending: bool
    refused: str
