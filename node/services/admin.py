"""Running a node: its identity, people, tokens and service catalogue.

API tokens are random 256-bit secrets shown once; the node keeps only their
SHA-256, which is enough for secrets of that strength; every call looks its
token up, so a revoked token stops working at once in every process.
"""

import hashlib
import secrets
import zoneinfo
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from node.domain import validation
from node.domain.errors import AlreadyExists, InvalidArgument, NotFound, Unauthenticated
from node.domain.roles import Actor, Role
from node.domain.ticket import Category, Group, Level, Store, TicketType, Tier, User
from node.services.clock import Clock
from node.store.database import Database

TOKEN_PREFIX = "hdx_"
T = TypeVar("T")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AdminService:
    """Use cases of the node's administrator and of every call's authentication."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def authenticate(self, token: str, category: str = "", store: str = "") -> Actor:
        """The actor behind an API token.

        Args:
            category: a category code the transaction goes on to look up, read with the
                actor (see `Tx.actor_for_token`).
            store: the store code it looks up with it; '' for the actor's own store.

        Raises:
            Unauthenticated: the token is missing, malformed, unknown or revoked.
        """
        if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            raise Unauthenticated("authorization: expected 'Bearer hdx_...' with a valid token")
        with self.db.read() as tx:
            actor = tx.actor_for_token(token_digest(token), category, store)
        if actor is None:
            raise Unauthenticated("authorization: unknown or revoked token")
        return actor

    def run_as(
        self,
        token: str,
        use_case: Callable[[Actor], T],
        *,
        write: bool,
        category: str = "",
        store: str = "",
    ) -> T:
        """Authenticates token and runs use_case for its user, in one transaction.

        Args:
            write: use_case writes (it then runs in a read-write transaction).
            category: a category code use_case looks up; read with the actor, it saves
                filing a ticket a round trip.
            store: the store code use_case looks up with it; '' for the actor's own store.
        """
        with self.db.write() if write else self.db.read():
            return use_case(self.authenticate(token, category, store))

    def add_user(self, login: str, name: str, role: Role, store: str | None) -> User:
        """Adds a user. Requesters belong to a store; others may not.

        Raises:
            InvalidArgument: a bad login, name, or store.
            AlreadyExists: the login is taken.
        """
        user = User(
            login=validation.code("login", login),
            name=validation.text(
                "name", name or login, max_len=200, required=True, multiline=False
            ),
            role=role,
            store=store or None,
        )
        if role is Role.REQUESTER and not store:
            raise InvalidArgument("store", "a requester belongs to a store")
        if role is not Role.REQUESTER and store:
            raise InvalidArgument("store", "only requesters belong to a store")
        with self.db.write() as tx:
            if store and tx.store(store) is None:
                raise InvalidArgument("store", f"no such store {store!r}")
            if not tx.add_user(user):
                raise AlreadyExists(f"login: {login!r} is taken")
        return user

    def create_token(self, login: str, name: str = "") -> str:
        """Creates an API token for login and returns it; it is not stored and not shown again."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.db.write() as tx:
            if tx.user(login) is None:
                raise NotFound("user", login)
            tx.add_token(login, name or "token", token_digest(token), self.clock.now())
        return token

    def revoke_tokens(self, login: str) -> int:
        with self.db.write() as tx:
            return tx.revoke_tokens(login, self.clock.now())

    def users(self) -> list[User]:
        with self.db.read() as tx:
            return tx.users()

    def load_catalog(self, catalog: Mapping[str, Any]) -> tuple[int, int, int]:
        """Adds or updates groups, categories and stores described in a catalogue table.

        The catalogue has lists `groups` (code, name), `categories` (code, name, type,
        impact, urgency, stop_trade, group) and `stores` (code, name, region, timezone,
        tier). All of it is checked before anything is written.

        Returns:
            How many groups, categories and stores it wrote.

        Raises:
            InvalidArgument: naming the entry (e.g. `stores[3].timezone`) and the rule.
        """
        groups = [_group(f"groups[{i}]", g) for i, g in enumerate(_list(catalog, "groups"))]
        categories = [
            _category(f"categories[{i}]", c) for i, c in enumerate(_list(catalog, "categories"))
        ]
        stores = [_store(f"stores[{i}]", s) for i, s in enumerate(_list(catalog, "stores"))]
        with self.db.write() as tx:
            for group in groups:
                tx.put_group(group)
            known = {g.code for g in tx.groups()}
            for i, category in enumerate(categories):
                if category.group is not None and category.group not in known:
                    raise InvalidArgument(
                        f"categories[{i}].group", f"no such group {category.group!r}"
                    )
                tx.put_category(category)
            for store in stores:
                tx.put_store(store)
        return len(groups), len(categories), len(stores)

    def catalog(self) -> tuple[list[Group], list[Category], list[Store]]:
        with self.db.read() as tx:
            return tx.groups(), tx.categories(), tx.stores()

    def categories(self) -> list[Category]:
        with self.db.read() as tx:
            return tx.categories()

    def user(self, login: str) -> User:
        with self.db.read() as tx:
            user = tx.user(login)
        if user is None:
            raise NotFound("user", login)
        return user


def _list(catalog: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    entries = catalog.get(name, [])
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise InvalidArgument(name, "must be a list of tables")
    return entries


def _str(where: str, entry: Mapping[str, Any], name: str, default: str | None = None) -> str:
    value = entry.get(name, default)
    if not isinstance(value, str):
        raise InvalidArgument(f"{where}.{name}", "must be a string")
    return value


def _choice(
    where: str, entry: Mapping[str, Any], name: str, choices: Mapping[str, Any], default: str
) -> Any:
    value = _str(where, entry, name, default)
    if value not in choices:
        raise InvalidArgument(f"{where}.{name}", f"must be one of {', '.join(choices)}")
    return choices[value]


def _name(where: str, entry: Mapping[str, Any]) -> str:
    return validation.text(
        f"{where}.name", _str(where, entry, "name"), max_len=200, required=True, multiline=False
    )


def _group(where: str, entry: Mapping[str, Any]) -> Group:
    return Group(validation.code(f"{where}.code", _str(where, entry, "code")), _name(where, entry))


_LEVELS = {level.name.lower(): level for level in Level}


def _category(where: str, entry: Mapping[str, Any]) -> Category:
    stop_trade = entry.get("stop_trade", False)
    if not isinstance(stop_trade, bool):
        raise InvalidArgument(f"{where}.stop_trade", "must be true or false")
    group = entry.get("group")
    return Category(
        code=validation.code(f"{where}.code", _str(where, entry, "code")),
        name=_name(where, entry),
        ticket_type=_choice(where, entry, "type", {t.value: t for t in TicketType}, "incident"),
        impact=_choice(where, entry, "impact", _LEVELS, "medium"),
        urgency=_choice(where, entry, "urgency", _LEVELS, "medium"),
        stop_trade=stop_trade,
        group=None
        if group is None
        else validation.code(f"{where}.group", _str(where, entry, "group")),
    )


def _store(where: str, entry: Mapping[str, Any]) -> Store:
    timezone = _str(where, entry, "timezone")
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(
            f"{where}.timezone", f"{timezone!r} is not an IANA time zone"
        ) from None
    return Store(
        code=validation.code(f"{where}.code", _str(where, entry, "code")),
        name=_name(where, entry),
        region=_str(where, entry, "region", ""),
        timezone=timezone,
        tier=_choice(where, entry, "tier", {t.value: t for t in Tier}, "standard"),
    )
