"""A node's configuration: `hdx.toml` in its data directory, overridden by environment.

Every setting `key` of section `[section]` can be overridden by the variable
`HDX_SECTION_KEY` (e.g. `HDX_DATABASE_URL`, `HDX_API_LISTEN`), parsed as the
setting's type. A bad value is refused with the variable's name and the rule.
"""

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.domain import validation
from node.domain.errors import InvalidArgument

CONFIG_FILE = "hdx.toml"
DEFAULT_LISTEN = "127.0.0.1:50051"
DEFAULT_EXCHANGE_LISTEN = "127.0.0.1:50061"
ALERT_AFTER_MAX_MINUTES = 7 * 24 * 60

SQLITE_WORKERS = 8
"""Worker threads when the config names none and the database is SQLite: its writers take
turns and share commits, so up to 8 writers arriving together pay one fsync; more threads
only contend for the interpreter (PostgreSQL gets 16)."""

DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "node": {"name": "hdx", "key_prefix": "HDX"},
    "database": {"url": ""},
    "api": {"listen": DEFAULT_LISTEN, "workers": 16},
    "tickets": {"confirm_window_hours": 72.0},
    "exchange": {
        "listen": DEFAULT_EXCHANGE_LISTEN,
        "endpoint": "",
        "tls": True,
        "alert_after_minutes": 30.0,
        "alert_category": "monitoring",
        "alert_store": "",
    },
}
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


@dataclass(frozen=True, slots=True)
class ExchangeSettings:
    """How the node meets its partners (the `[exchange]` table).

    Attributes:
        listen: where the Exchange service listens (host:port).
        endpoint: what invites tell partners to call; the listen address when not set.
        tls: serve over TLS with the node's certificate; False only for local use.
        alert_after_minutes: a partner unreachable this long opens an alert ticket and is
            flagged by `hdx status`.
        alert_category, alert_store: the alert ticket's category and store; no store, no
            ticket (the outage shows in `hdx status` only).
    """

    listen: str = DEFAULT_EXCHANGE_LISTEN
    endpoint: str = DEFAULT_EXCHANGE_LISTEN
    tls: bool = True
    alert_after_minutes: float = 30.0
    alert_category: str = "monitoring"
    alert_store: str = ""


@dataclass(frozen=True, slots=True)
class Config:
    """Settings of one node.

    Attributes:
        workflow: the `[workflow]` table, if the file describes one.
        sla: the `[sla]` table, if the file describes one.
    """

    data_dir: Path
    node_name: str
    key_prefix: str
    database_url: str
    listen: str
    workers: int
    confirm_window_hours: float
    workflow: Mapping[str, Any] | None = None
    sla: Mapping[str, Any] | None = None
    exchange: ExchangeSettings = ExchangeSettings()


def default_data_dir() -> Path:
    return Path(os.environ.get("HDX_DATA_DIR", "hdx-data"))


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'hdx.db').resolve()}"


def parse(text: str, data_dir: Path, environ: Mapping[str, str]) -> Config:
    """The configuration in text, with environ's overrides applied.

    Raises:
        InvalidArgument: naming the setting (or variable) and the rule.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InvalidArgument(CONFIG_FILE, str(error)) from None
    except RecursionError:
        raise InvalidArgument(CONFIG_FILE, "arrays or tables nested too deeply") from None
    values: dict[str, dict[str, Any]] = {}
    origin: dict[str, str] = {}  # setting -> the variable that overrode it
    for section, defaults in DEFAULTS.items():
        given = raw.get(section, {})
        if not isinstance(given, dict):
            raise InvalidArgument(section, "must be a table")
        values[section] = {}
        for key, default in defaults.items():
            value = given.get(key, default)
            env = f"HDX_{section}_{key}".upper()
            if env in environ:
                value = _coerce(env, environ[env], type(default))
                origin[f"{section}.{key}"] = env
            elif type(value) is not type(default) and not (
                isinstance(default, float) and type(value) is int
            ):
                raise InvalidArgument(f"{section}.{key}", f"must be a {type(default).__name__}")
            values[section][key] = value
    database_url = values["database"]["url"] or sqlite_url(data_dir)
    workers = values["api"]["workers"]
    if "api.workers" not in origin and "workers" not in raw.get("api", {}):
        workers = SQLITE_WORKERS if database_url.startswith("sqlite") else workers
    if workers < 1:
        raise InvalidArgument(origin.get("api.workers", "api.workers"), "must be at least 1")
    window = float(values["tickets"]["confirm_window_hours"])
    if not 0 <= window <= 24 * 365:
        name = "tickets.confirm_window_hours"
        raise InvalidArgument(origin.get(name, name), "must be between 0 and 8760")
    exchange = values["exchange"]
    alert_after = float(exchange["alert_after_minutes"])
    if not 0 < alert_after <= ALERT_AFTER_MAX_MINUTES:
        name = "exchange.alert_after_minutes"
        raise InvalidArgument(
            origin.get(name, name), f"must be above 0 and at most {ALERT_AFTER_MAX_MINUTES}"
        )
    for key in ("alert_category", "alert_store"):
        name = f"exchange.{key}"
        if exchange[key] or key == "alert_category":
            validation.code(origin.get(name, name), exchange[key])
    workflow, sla = raw.get("workflow"), raw.get("sla")
    for name, table in (("workflow", workflow), ("sla", sla)):
        if table is not None and not isinstance(table, dict):
            raise InvalidArgument(name, "must be a table")
    return Config(
        data_dir=data_dir,
        node_name=values["node"]["name"],
        key_prefix=values["node"]["key_prefix"],
        database_url=database_url,
        listen=values["api"]["listen"],
        workers=workers,
        confirm_window_hours=window,
        workflow=workflow,
        sla=sla,
        exchange=ExchangeSettings(
            listen=exchange["listen"],
            endpoint=exchange["endpoint"] or exchange["listen"],
            tls=exchange["tls"],
            alert_after_minutes=alert_after,
            alert_category=exchange["alert_category"],
            alert_store=exchange["alert_store"],
        ),
    )


def _coerce(name: str, text: str, kind: type) -> Any:
    if kind is bool:
        if text.lower() not in _TRUE + _FALSE:
            raise InvalidArgument(name, f"must be true or false, got {text!r}")
        return text.lower() in _TRUE
    try:
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        raise InvalidArgument(name, f"must be a {kind.__name__}, got {text!r}") from None
    return text


def load(data_dir: Path) -> Config:
    """The configuration of the node in data_dir.

    Raises:
        FileNotFoundError: the node was not initialised there.
    """
    path = data_dir / CONFIG_FILE
    return parse(path.read_text(encoding="utf-8"), data_dir, os.environ)


def _quoted(value: str) -> str:
    """value as a TOML basic string.

    Not plain json.dumps: its ASCII escapes write characters beyond U+FFFF as surrogate
    pairs, which TOML refuses; TOML also refuses a raw DEL, which JSON leaves as it is.
    """
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def render(name: str, key_prefix: str, database_url: str, listen: str) -> str:
    """The text of a new config file."""
    return (
        "# hdx node configuration. Each setting can be overridden by HDX_<SECTION>_<KEY>.\n"
        f"[node]\nname = {_quoted(name)}\nkey_prefix = {_quoted(key_prefix)}\n\n"
        "[database]\n# empty: the SQLite file hdx.db beside this file\n"
        f"url = {_quoted(database_url)}\n\n"
        f"[api]\nlisten = {_quoted(listen)}\n"
        f"# threads running use cases; default {SQLITE_WORKERS} on SQLite, 16 on PostgreSQL\n"
        "# workers = 16\n\n"
        "[tickets]\n# a resolved ticket closes by itself when the store has not answered in time\n"
        "confirm_window_hours = 72\n\n"
        "[exchange]\n# partner nodes call this; invites advertise `endpoint` (default: listen)\n"
        f"listen = {_quoted(DEFAULT_EXCHANGE_LISTEN)}\n"
        '# endpoint = "hdx.example.com:50061"\n'
        "# false only for local use: partners must then be added with --plaintext\n"
        "tls = true\n"
        "# a partner unreachable this long opens an alert ticket (in alert_store)\n"
        "alert_after_minutes = 30\n"
        'alert_category = "monitoring"\n'
        'alert_store = ""\n'
    )
