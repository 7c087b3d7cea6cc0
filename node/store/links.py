"""Partners, their keys, links and the signed log of each link, in the node's database.

`Links` is bound to the open transaction of a `Tx` (`tx.links`), so the exchange
writes an event to the outbox in the same transaction as the change it reports.
"""

import functools
import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, insert, or_, select, update

from node.domain.partner import (
    Delivery,
    Link,
    LinkState,
    LoggedEvent,
    Partner,
    PartnerRole,
    PartnerState,
    Side,
    Terms,
    TicketLink,
)
from node.store import schema as s

if TYPE_CHECKING:
    from node.store.tx import Tx


# The statements of receiving and sending events run on the driver's cursor (`Tx.raw`).
_LINK_COLUMNS = [column.name for column in s.links.columns]
_SQL_LINK = f"SELECT {', '.join(_LINK_COLUMNS)} FROM links WHERE id = :id"
_SQL_LINKS_OF = (
    f"SELECT {', '.join(_LINK_COLUMNS)} FROM links WHERE ticket_id = :ticket_id ORDER BY created_at"
)
_SQL_LINKS_WITH = (
    f"SELECT {', '.join(_LINK_COLUMNS)} FROM links WHERE partner = :partner ORDER BY created_at"
)
_SAVED_LINK_COLUMNS = [c for c in _LINK_COLUMNS if c not in ("id", "partner", "side", "created_at")]
_SQL_SAVE_LINK = (
    f"UPDATE links SET {', '.join(f'{c} = :{c}' for c in _SAVED_LINK_COLUMNS)} WHERE id = :id"
)
_LOGGED_COLUMNS = [c.name for c in s.link_events.columns if c.name not in ("id", "refused")]
_SQL_LOG = (
    f"INSERT INTO link_events ({', '.join(_LOGGED_COLUMNS)})"
    f" VALUES ({', '.join(':' + c for c in _LOGGED_COLUMNS)})"
)
_PARTNER_COLUMNS = [
    "node_id",
    "name",
    "endpoint",
    "role",
    "state",
    "login",
    "cert_pem",
    "plaintext",
    "terms",
    "added_at",
]
_SQL_PARTNER = f"SELECT {', '.join(_PARTNER_COLUMNS)} FROM partners WHERE node_id = :node_id"
_SQL_PARTNERS = f"SELECT {', '.join(_PARTNER_COLUMNS)} FROM partners ORDER BY node_id"
_DELIVERY_COLUMNS = (
    "failures",
    "retry_at",
    "down_since",
    "last_error",
    "last_heard_at",
    "alert_ticket_id",
    "lease_owner",
    "lease_until",
)
"""The columns of a partner's row that say where delivery to it stands (`Delivery`)."""
_SQL_DELIVERY = f"SELECT {', '.join(_DELIVERY_COLUMNS)} FROM partners WHERE node_id = :node_id"
_SQL_CLAIM = """
    UPDATE partners SET lease_owner = :owner, lease_until = :until
    WHERE node_id = :node_id AND state = 'active' AND (retry_at IS NULL OR retry_at <= :now)
    AND (lease_owner = :owner OR lease_until IS NULL OR lease_until <= :now)
    RETURNING node_id"""
_SQL_RELEASE = """
    UPDATE partners SET lease_owner = '', lease_until = NULL
    WHERE node_id = :node_id AND lease_owner = :owner"""
_SQL_ADD_LINK = (
    f"INSERT INTO links ({', '.join(_LINK_COLUMNS)})"
    f" VALUES ({', '.join(':' + c for c in _LINK_COLUMNS)})"
)
_EVENT_COLUMNS = [column.name for column in s.link_events.columns]
_SQL_OUTBOX = f"""
    SELECT {", ".join(_EVENT_COLUMNS)} FROM link_events
    WHERE partner = :partner AND pending = :pending ORDER BY id LIMIT :limit"""
_SQL_INBOUND = f"""
    SELECT {", ".join(_EVENT_COLUMNS)} FROM link_events
    WHERE link = :link AND outbound = :outbound AND seq = :seq"""
_SQL_KEY = "SELECT node_id, public_key FROM node_keys WHERE key_id = :key_id"
_SQL_DELIVERED = (
    "UPDATE link_events SET receipt = :receipt, received_at = :received_at, pending = :pending,"
    " refused = '' WHERE id = :id"
)


class Links:
    """Repository methods of the exchange, in tx's transaction."""

    def __init__(self, tx: "Tx") -> None:
        self.tx = tx
        self.conn = tx.conn
        self._partners: dict[str, Partner | None] = {}
        """Partners read in this transaction, by node id, until it changes them."""

    # -- partners and keys -------------------------------------------------------

    def add_partner(self, partner: Partner) -> None:
        self._partners.pop(partner.node_id, None)
        self.conn.execute(
            insert(s.partners).values(
                node_id=partner.node_id,
                name=partner.name,
                endpoint=partner.endpoint,
                role=partner.role.value,
                state=partner.state.value,
                login=partner.login,
                cert_pem=partner.cert_pem,
                plaintext=partner.plaintext,
                terms=json.dumps(partner.terms.to_json()),
                added_at=partner.added_at,
            )
        )

    def partner(self, node_id: str, *, for_update: bool = False) -> Partner | None:
        """The partner; read once per transaction, unless for_update locks its row."""
        if not for_update and node_id in self._partners:
            return self._partners[node_id]
        sql = self.tx.for_update(_SQL_PARTNER) if for_update else _SQL_PARTNER
        row = self.tx.raw(sql, {"node_id": node_id}).fetchone()
        partner = self._partners[node_id] = None if row is None else self._partner(row)
        return partner

    def partners(self) -> list[Partner]:
        partners = [self._partner(row) for row in self.tx.raw(_SQL_PARTNERS, {})]
        self._partners.update((p.node_id, p) for p in partners)
        return partners

    def update_partner(self, node_id: str, **values: Any) -> None:
        """Sets columns of a partner: state, endpoint, terms (as `Terms`), plaintext, and
        those of its delivery state."""
        if values.keys() - set(_DELIVERY_COLUMNS):
            self._partners.pop(node_id, None)
        if "state" in values:
            values["state"] = PartnerState(values["state"]).value
        if "terms" in values:
            values["terms"] = json.dumps(values["terms"].to_json())
        bound = {
            key: self.tx.bind_instant(value) if isinstance(value, datetime) else value
            for key, value in values.items()
        }
        self.tx.raw(_update_partner(tuple(sorted(values))), {**bound, "node_id": node_id})

    def add_key(self, node_id: str, key_id: str, public_key: bytes, now: datetime) -> None:
        """Records a public key of node_id (ours or a partner's); known keys stay as they are."""
        self.tx._insert_new(
            s.node_keys,
            {"key_id": key_id, "node_id": node_id, "public_key": public_key, "added_at": now},
            ["key_id"],
        )

    def key(self, key_id: str) -> tuple[str, bytes] | None:
        """(node id, raw public key) of a key id."""
        row = self.tx.raw(_SQL_KEY, {"key_id": key_id}).fetchone()
        return None if row is None else (row[0], bytes(row[1]))

    def all_keys(self) -> dict[str, tuple[str, bytes]]:
        """Every key this node knows, its own and its partners', old ones included:
        key id → (node id, raw public key)."""
        k = s.node_keys.c
        rows = self.conn.execute(select(k.key_id, k.node_id, k.public_key))
        return {row[0]: (row[1], bytes(row[2])) for row in rows}

    def keys_of(self, node_id: str) -> dict[str, bytes]:
        k = s.node_keys.c
        rows = self.conn.execute(select(k.key_id, k.public_key).where(k.node_id == node_id))
        return {row[0]: bytes(row[1]) for row in rows}

    # -- delivery state ----------------------------------------------------------

    def delivery(self, node_id: str) -> Delivery:
        row = self.tx.raw(_SQL_DELIVERY, {"node_id": node_id}).fetchone()
        instant = self.tx.read_instant
        failures, retry_at, down_since, last_error, heard_at, alert, owner, until = row
        return Delivery(
            failures,
            instant(retry_at),
            instant(down_since),
            last_error,
            instant(heard_at),
            alert,
            owner,
            instant(until),
        )

    def claim(self, node_id: str, owner: str, now: datetime, until: datetime) -> bool:
        """Makes owner the one process delivering to node_id until then, unless another
        process holds it now, the partner is not active, or it backs off; False then."""
        bind = self.tx.bind_instant
        params = {"node_id": node_id, "owner": owner, "now": bind(now), "until": bind(until)}
        return self.tx.raw(_SQL_CLAIM, params).fetchone() is not None

    def release(self, node_id: str, owner: str) -> None:
        self.tx.raw(_SQL_RELEASE, {"node_id": node_id, "owner": owner})

    def release_all(self, owner: str) -> None:
        """Ends every lease owner holds (a process stopping)."""
        p = s.partners.c
        self.conn.execute(
            update(s.partners)
            .where(p.lease_owner == owner)
            .values(lease_owner="", lease_until=None)
        )

    # -- links -------------------------------------------------------------------

    def add_link(self, link: Link) -> None:
        self.tx.raw(_SQL_ADD_LINK, self._link_values(link))

    def link(self, link_id: str, *, for_update: bool = False) -> Link | None:
        sql = self.tx.for_update(_SQL_LINK) if for_update else _SQL_LINK
        row = self.tx.raw(sql, {"id": link_id}).fetchone()
        return None if row is None else self._link(row)

    def links_of(self, ticket_id: int) -> list[Link]:
        return [self._link(row) for row in self.tx.raw(_SQL_LINKS_OF, {"ticket_id": ticket_id})]

    def ticket_links(self, ticket_id: int) -> list[TicketLink]:
        """The links of a ticket with their partners' names, oldest first."""
        k, p = s.links.c, s.partners.c
        query = (
            select(k.partner, p.name, k.side, k.state, k.remote_ticket, k.created_at)
            .join(s.partners, p.node_id == k.partner)
            .where(k.ticket_id == ticket_id)
            .order_by(k.created_at, k.id)
        )
        return [
            TicketLink(row[0], row[1], Side(row[2]), LinkState(row[3]), row[4], row[5])
            for row in self.conn.execute(query)
        ]

    def links_with(self, partner: str) -> list[Link]:
        """Every link with partner (its control link included), oldest first."""
        return [self._link(row) for row in self.tx.raw(_SQL_LINKS_WITH, {"partner": partner})]

    def save_link(self, link: Link) -> None:
        self.tx.raw(_SQL_SAVE_LINK, self._link_values(link))

    def _link_values(self, link: Link) -> dict[str, Any]:
        """The columns of link, as the raw statements bind them."""
        bind = self.tx.bind_instant
        return {
            "id": link.id,
            "partner": link.partner,
            "ticket_id": link.ticket_id,
            "side": link.side.value,
            "state": link.state.value,
            "remote_ticket": link.remote_ticket,
            "out_seq": link.out_seq,
            "out_digest": link.out_digest,
            "in_seq": link.in_seq,
            "in_digest": link.in_digest,
            "created_at": bind(link.created_at),
            "respond_by": bind(link.respond_by),
            "resolve_by": bind(link.resolve_by),
        }

    # -- the signed log ----------------------------------------------------------

    def log(self, events: Sequence[dict[str, Any]]) -> None:
        """Adds events to the log: dicts of link_events' columns but id and refused."""
        bind = self.tx.bind_instant
        self.tx.raw(_SQL_LOG, [{**e, "received_at": bind(e["received_at"])} for e in events])

    def inbound(self, link_id: str, seq: int) -> LoggedEvent | None:
        """The event received on a link with that sequence number."""
        params = {"link": link_id, "outbound": False, "seq": seq}
        row = self.tx.raw(_SQL_INBOUND, params).fetchone()
        return None if row is None else self._event(row)

    def outbox(self, partner: str, limit: int) -> list[LoggedEvent]:
        """Events waiting for partner's receipt, in the order they were written."""
        params = {"partner": partner, "pending": True, "limit": limit}
        return [self._event(row) for row in self.tx.raw(_SQL_OUTBOX, params)]

    def outbox_size(self, partner: str) -> int:
        e = s.link_events.c
        query = select(func.count()).where(e.partner == partner, e.pending.is_(True))
        return self.conn.scalar(query) or 0

    def delivered(self, event_id: int, receipt: bytes, received_at: datetime) -> None:
        received = self.tx.bind_instant(received_at)
        params = {"id": event_id, "receipt": receipt, "received_at": received, "pending": False}
        self.tx.raw(_SQL_DELIVERED, params)

    def refused(self, event_id: int, why: str) -> None:
        """Notes why the partner refuses an event; it stays in the outbox."""
        self.conn.execute(
            update(s.link_events).where(s.link_events.c.id == event_id).values(refused=why)
        )

    def resend_from(self, link_id: str, seq: int) -> None:
        """Puts our events on a link from seq on back in the outbox (the partner lost them)."""
        e = s.link_events.c
        self.conn.execute(
            update(s.link_events)
            .where(e.link == link_id, e.outbound.is_(True), e.seq >= seq)
            .values(pending=True)
        )

    def sent_after(self, partner: str, after: dict[str, int], limit: int) -> list[LoggedEvent]:
        """Our events to partner on the given links after the given sequence numbers."""
        e = s.link_events.c
        conditions = [and_(e.link == link, e.seq > seq) for link, seq in after.items()]
        if not conditions:
            return []
        query = (
            select(s.link_events)
            .where(e.partner == partner, e.outbound.is_(True))
            .where(or_(*conditions))
            .order_by(e.id)
            .limit(limit)
        )
        return [self._event(r) for r in self.conn.execute(query)]

    def log_of(self, link_id: str) -> list[LoggedEvent]:
        """Every event of a link, both directions, in the order this node logged them."""
        e = s.link_events.c
        query = select(s.link_events).where(e.link == link_id).order_by(e.id)
        return [self._event(r) for r in self.conn.execute(query)]

    def _partner(self, row: Sequence[Any]) -> Partner:
        """The partner of a row of `_PARTNER_COLUMNS` a raw statement read."""
        added_at = self.tx.read_instant(row[9])
        assert added_at is not None
        return Partner(
            node_id=row[0],
            name=row[1],
            endpoint=row[2],
            role=PartnerRole(row[3]),
            state=PartnerState(row[4]),
            login=row[5],
            cert_pem=row[6],
            plaintext=bool(row[7]),
            terms=Terms.from_json(json.loads(row[8])),
            added_at=added_at,
        )

    def _event(self, row: Sequence[Any]) -> LoggedEvent:
        """The logged event of a row of link_events (all columns) a raw statement read."""
        return LoggedEvent(
            id=row[0],
            link=row[1],
            partner=row[2],
            outbound=bool(row[3]),
            seq=row[4],
            kind=row[5],
            digest=bytes(row[6]),
            envelope=bytes(row[7]),
            receipt=None if row[8] is None else bytes(row[8]),
            received_at=self.tx.read_instant(row[9]),
            pending=bool(row[10]),
            refused=row[11],
        )

    def _link(self, row: Sequence[Any]) -> Link:
        """The link of a row of `_LINK_COLUMNS` a raw statement read."""
        instant = self.tx.read_instant
        created_at = instant(row[10])
        assert created_at is not None
        return Link(
            id=row[0],
            partner=row[1],
            ticket_id=row[2],
            side=Side(row[3]),
            state=LinkState(row[4]),
            remote_ticket=row[5],
            out_seq=row[6],
            out_digest=bytes(row[7]),
            in_seq=row[8],
            in_digest=bytes(row[9]),
            created_at=created_at,
            respond_by=instant(row[11]),
            resolve_by=instant(row[12]),
        )


@functools.cache
def _update_partner(columns: tuple[str, ...]) -> str:
    """The UPDATE of a partner's columns, named by their parameters."""
    return (
        f"UPDATE partners SET {', '.join(f'{c} = :{c}' for c in columns)} WHERE node_id = :node_id"
    )
