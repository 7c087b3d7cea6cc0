"""The node's config file and its HDX_<SECTION>_<KEY> environment overrides."""

import dataclasses
import math
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from cli import config as configuration
from cli.config import Config, ExchangeSettings
from node.domain.errors import InvalidArgument

DATA = Path("/srv/hdx/node-a")

FILE = """
[node]
name = "Retail network"
key_prefix = "RET"

[database]
url = "postgresql+psycopg://hdx@db/hdx"

[api]
listen = "0.0.0.0:50051"
workers = 4

[tickets]
confirm_window_hours = 48.5
"""


def parse(text: str = FILE, environ: dict[str, str] | None = None, data: Path = DATA) -> Config:
    return configuration.parse(text, data, environ or {})


def refused(field: str, text: str = FILE, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(InvalidArgument) as error:
        parse(text, environ)
    assert error.value.field == field
    return error.value.rule


def sqlite_file(url: str) -> Path:
    parsed = make_url(url)
    assert parsed.get_backend_name() == "sqlite"
    assert parsed.database is not None
    return Path(parsed.database)


# --- the file ----------------------------------------------------------------------------------


def test_the_file_is_read() -> None:
    config = parse()
    assert config.node_name == "Retail network"
    assert config.key_prefix == "RET"
    assert config.database_url == "postgresql+psycopg://hdx@db/hdx"
    assert config.listen == "0.0.0.0:50051"
    assert config.workers == 4
    assert config.confirm_window_hours == 48.5
    assert config.data_dir == DATA
    assert config.workflow is None


def test_an_empty_file_gives_working_defaults(tmp_path: Path) -> None:
    config = parse("", data=tmp_path)
    assert config.node_name
    assert config.key_prefix
    assert config.listen
    assert config.workers >= 1
    assert config.confirm_window_hours >= 0
    assert config.workflow is None


@pytest.mark.parametrize("text", ["", '[database]\nurl = ""\n'])
def test_the_database_defaults_to_the_sqlite_file_in_the_data_dir(
    text: str, tmp_path: Path
) -> None:
    config = parse(text, data=tmp_path)
    path = sqlite_file(config.database_url)
    assert path.is_absolute()
    assert path.parent == tmp_path.resolve()
    assert path.suffix == ".db"


def test_a_relative_data_dir_gives_an_absolute_sqlite_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = sqlite_file(parse("", data=Path("nodes/a")).database_url)
    assert path.is_absolute()
    assert path.parent == (tmp_path / "nodes" / "a").resolve()


def test_a_whole_number_is_a_valid_float_setting() -> None:
    config = parse("[tickets]\nconfirm_window_hours = 24\n")
    assert config.confirm_window_hours == 24
    assert isinstance(config.confirm_window_hours, float)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[api]\nworkers = '16'\n", "api.workers"),
        ("[api]\nworkers = true\n", "api.workers"),
        ("[api]\nworkers = 1.5\n", "api.workers"),
        ("[api]\nworkers = 0\n", "api.workers"),
        ("[api]\nworkers = -2\n", "api.workers"),
        ("[api]\nlisten = 50051\n", "api.listen"),
        ("[node]\nname = 5\n", "node.name"),
        ("[node]\nkey_prefix = ['RET']\n", "node.key_prefix"),
        ("[database]\nurl = false\n", "database.url"),
        ("[tickets]\nconfirm_window_hours = '72'\n", "tickets.confirm_window_hours"),
        ("[tickets]\nconfirm_window_hours = -1\n", "tickets.confirm_window_hours"),
        ("[tickets]\nconfirm_window_hours = inf\n", "tickets.confirm_window_hours"),
        ("[tickets]\nconfirm_window_hours = nan\n", "tickets.confirm_window_hours"),
        ("[tickets]\nconfirm_window_hours = 9000.0\n", "tickets.confirm_window_hours"),
        ("api = 'x'\n", "api"),
        ("workflow = 1\n", "workflow"),
        ("[api\n", configuration.CONFIG_FILE),
        ("name = \n", configuration.CONFIG_FILE),
        ("[api]\nworkers = 1\n[api]\nworkers = 2\n", configuration.CONFIG_FILE),
        ("[exchange]\ntls = 'yes'\n", "exchange.tls"),
        ("[exchange]\nlisten = 50061\n", "exchange.listen"),
        ("[exchange]\nalert_after_minutes = 0\n", "exchange.alert_after_minutes"),
        ("[exchange]\nalert_after_minutes = nan\n", "exchange.alert_after_minutes"),
        ("[exchange]\nalert_after_minutes = 1e9\n", "exchange.alert_after_minutes"),
        ("[exchange]\nalert_store = 'Main St'\n", "exchange.alert_store"),
        ("[exchange]\nalert_category = ''\n", "exchange.alert_category"),
        ("a = " + "[" * 5000 + "]" * 5000 + "\n", configuration.CONFIG_FILE),
    ],
)
def test_a_bad_setting_is_refused_naming_it(text: str, field: str) -> None:
    refused(field, text)


def test_the_exchange_table_is_read() -> None:
    text = FILE + (
        '[exchange]\nlisten = "0.0.0.0:50061"\nendpoint = "hdx.bakery.example:443"\n'
        'tls = false\nalert_after_minutes = 15\nalert_store = "msk-001"\n'
    )
    assert parse(text).exchange == ExchangeSettings(
        listen="0.0.0.0:50061",
        endpoint="hdx.bakery.example:443",
        tls=False,
        alert_after_minutes=15.0,
        alert_category="monitoring",
        alert_store="msk-001",
    )


def test_without_an_exchange_table_it_listens_on_loopback_over_tls_and_files_no_alerts() -> None:
    exchange = parse().exchange
    assert exchange.listen == exchange.endpoint == configuration.DEFAULT_EXCHANGE_LISTEN
    assert exchange.tls
    assert exchange.alert_after_minutes == 30
    assert exchange.alert_store == ""


@pytest.mark.parametrize(
    ("environ", "tls"),
    [({"HDX_EXCHANGE_TLS": "false"}, False), ({"HDX_EXCHANGE_TLS": "True"}, True), ({}, True)],
)
def test_the_invite_endpoint_follows_the_listen_address_unless_set(
    environ: dict[str, str], tls: bool
) -> None:
    config = parse(FILE, {"HDX_EXCHANGE_LISTEN": "10.0.0.5:7000", **environ})
    assert (config.exchange.endpoint, config.exchange.tls) == ("10.0.0.5:7000", tls)
    given = parse(
        FILE + '[exchange]\nendpoint = "hdx.example:443"\n', {"HDX_EXCHANGE_LISTEN": "x:1"}
    )
    assert given.exchange.endpoint == "hdx.example:443"


def test_a_workflow_table_is_passed_on() -> None:
    config = parse('[workflow]\ninitial = "new"\n[workflow.statuses]\nnew = "new"\n')
    assert config.workflow == {"initial": "new", "statuses": {"new": "new"}}


# --- environment overrides ---------------------------------------------------------------------


@settings(max_examples=100)
@given(
    workers=st.integers(1, 10**6),
    window=st.floats(0, 24 * 365),
    name=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30),
    url=st.text(string.printable, min_size=1, max_size=40),
    listen=st.text(string.printable, max_size=30),
    prefix=st.from_regex(r"[A-Z][A-Z0-9]{0,9}", fullmatch=True),
)
def test_environment_overrides_take_effect_with_the_setting_s_type(
    *, workers: int, window: float, name: str, url: str, listen: str, prefix: str
) -> None:
    environ = {
        "HDX_API_WORKERS": str(workers),
        "HDX_TICKETS_CONFIRM_WINDOW_HOURS": repr(window),
        "HDX_NODE_NAME": name,
        "HDX_NODE_KEY_PREFIX": prefix,
        "HDX_DATABASE_URL": url,
        "HDX_API_LISTEN": listen,
    }
    config = parse(FILE, environ)
    assert config.workers == workers
    assert type(config.workers) is int
    assert config.confirm_window_hours == window
    assert type(config.confirm_window_hours) is float
    assert config.node_name == name
    assert config.key_prefix == prefix
    assert config.database_url == url
    assert config.listen == listen


def test_an_override_changes_only_its_own_setting() -> None:
    assert parse(FILE, {"HDX_API_WORKERS": "9"}) == dataclasses.replace(parse(FILE), workers=9)


def test_an_override_applies_even_without_the_file_setting() -> None:
    assert parse("", {"HDX_API_LISTEN": "[::]:6000"}).listen == "[::]:6000"


def test_an_empty_database_url_override_means_the_sqlite_file(tmp_path: Path) -> None:
    config = parse(FILE, {"HDX_DATABASE_URL": ""}, data=tmp_path)
    assert sqlite_file(config.database_url).parent == tmp_path.resolve()


def test_variables_that_are_not_settings_are_ignored() -> None:
    environ = {"HDX_API_WORKER": "x", "HDX_DATA_DIR": "/tmp/x", "hdx_api_workers": "x"}
    assert parse(FILE, environ) == parse(FILE)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HDX_API_WORKERS", "many"),
        ("HDX_API_WORKERS", ""),
        ("HDX_API_WORKERS", "1.5"),
        ("HDX_API_WORKERS", "0"),
        ("HDX_API_WORKERS", "-4"),
        ("HDX_TICKETS_CONFIRM_WINDOW_HOURS", "soon"),
        ("HDX_TICKETS_CONFIRM_WINDOW_HOURS", ""),
        ("HDX_TICKETS_CONFIRM_WINDOW_HOURS", "-1"),
        ("HDX_TICKETS_CONFIRM_WINDOW_HOURS", "nan"),
        ("HDX_TICKETS_CONFIRM_WINDOW_HOURS", "inf"),
        ("HDX_TICKETS_CONFIRM_WINDOW_HOURS", "1e9"),
        ("HDX_EXCHANGE_TLS", "maybe"),
        ("HDX_EXCHANGE_TLS", ""),
        ("HDX_EXCHANGE_ALERT_AFTER_MINUTES", "-5"),
        ("HDX_EXCHANGE_ALERT_AFTER_MINUTES", "nan"),
        ("HDX_EXCHANGE_ALERT_STORE", "Main St"),
    ],
)
def test_a_bad_override_is_refused_naming_the_variable(variable: str, value: str) -> None:
    refused(variable, FILE, {variable: value})


@settings(max_examples=200)
@given(value=st.text(max_size=12) | st.integers(-5, 10**9).map(str))
def test_any_workers_override_is_a_worker_count_or_refused(value: str) -> None:
    try:
        config = parse(FILE, {"HDX_API_WORKERS": value})
    except InvalidArgument as error:
        assert error.field == "HDX_API_WORKERS"
        return
    assert config.workers == int(value)
    assert config.workers >= 1


@settings(max_examples=200)
@given(value=st.text(max_size=12) | st.floats().map(repr))
def test_any_window_override_is_a_sane_window_or_refused(value: str) -> None:
    try:
        config = parse(FILE, {"HDX_TICKETS_CONFIRM_WINDOW_HOURS": value})
    except InvalidArgument as error:
        assert error.field == "HDX_TICKETS_CONFIRM_WINDOW_HOURS"
        return
    assert config.confirm_window_hours == float(value)
    assert math.isfinite(config.confirm_window_hours)
    assert config.confirm_window_hours >= 0


def test_load_reads_the_file_in_the_data_dir_and_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / configuration.CONFIG_FILE).write_text(FILE, encoding="utf-8")
    monkeypatch.setenv("HDX_API_WORKERS", "3")
    config = configuration.load(tmp_path)
    assert config.workers == 3
    assert config.node_name == "Retail network"
    with pytest.raises(FileNotFoundError):
        configuration.load(tmp_path / "elsewhere")


# --- arbitrary text ----------------------------------------------------------------------------

sections = st.sampled_from(
    [
        "[node]",
        "[database]",
        "[api]",
        "[tickets]",
        "[exchange]",
        "[workflow]",
        "[other]",
        "[api.extra]",
        "[[",
    ]
)
keys = st.sampled_from(
    [
        "name",
        "key_prefix",
        "url",
        "listen",
        "workers",
        "confirm_window_hours",
        "tls",
        "alert_after_minutes",
        "alert_store",
        "initial",
        "x",
    ]
)
literals = st.one_of(
    st.sampled_from(
        ['"hdx"', "''", "0", "1", "-1", "16", "72", "1.5", "nan", "inf", "true", "[]", "{}"]
    ),
    st.sampled_from(['"RET"', "[1, 2]", "{ a = 1 }", "1979-05-27", '"""x"""', "0x10", "1e3"]),
    st.integers().map(str),
    st.text(max_size=8),
)
lines = st.one_of(
    sections,
    st.builds(lambda k, v: f"{k} = {v}", keys, literals),
    st.builds(lambda s, k: f"{s[1:-1]}.{k} = 1", sections, keys),
    st.text(max_size=12),
)
overrides = st.dictionaries(
    st.sampled_from(
        [
            "HDX_API_WORKERS",
            "HDX_TICKETS_CONFIRM_WINDOW_HOURS",
            "HDX_NODE_NAME",
            "HDX_DATABASE_URL",
        ]
    ),
    st.sampled_from(["", "0", "2", "1.5", "x", "nan"]),
    max_size=2,
)


@settings(max_examples=200, deadline=None)
@given(text=st.lists(lines, max_size=10).map("\n".join), environ=overrides)
def test_arbitrary_text_gives_a_config_or_an_invalid_argument(
    text: str, environ: dict[str, str]
) -> None:
    try:
        config = configuration.parse(text, DATA, environ)
    except InvalidArgument as error:
        assert error.field
        return
    assert isinstance(config.node_name, str)
    assert isinstance(config.key_prefix, str)
    assert isinstance(config.listen, str)
    assert isinstance(config.database_url, str) and config.database_url
    assert type(config.workers) is int and config.workers >= 1
    assert type(config.confirm_window_hours) is float
    assert 0 <= config.confirm_window_hours <= 24 * 365
    assert config.workflow is None or isinstance(config.workflow, dict)
    assert type(config.exchange.tls) is bool
    assert 0 < config.exchange.alert_after_minutes <= configuration.ALERT_AFTER_MAX_MINUTES


# --- render ------------------------------------------------------------------------------------

names = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ['Retail "North"', "O'Brien's", 'back\\slash \\" mix', "tab\there", "line\nbreak", "\x7f"]
)


@settings(max_examples=100)
@given(
    name=names,
    prefix=st.from_regex(r"[A-Z][A-Z0-9]{0,9}", fullmatch=True),
    url=names,
    listen=names,
)
def test_a_rendered_file_parses_back_to_the_same_settings(
    name: str, prefix: str, url: str, listen: str
) -> None:
    config = parse(configuration.render(name, prefix, url, listen), {})
    assert config.node_name == name
    assert config.key_prefix == prefix
    assert config.listen == listen
    if url:
        assert config.database_url == url
    else:
        assert sqlite_file(config.database_url).parent == DATA.resolve()
    assert config.workers >= 1
    assert 0 <= config.confirm_window_hours <= 24 * 365
    assert config.workflow is None
    assert config.exchange == ExchangeSettings()


def test_a_rendered_file_can_be_overridden_by_the_environment() -> None:
    text = configuration.render("Node A", "RET", "", "127.0.0.1:7000")
    config = parse(text, {"HDX_API_LISTEN": "0.0.0.0:7000", "HDX_API_WORKERS": "2"})
    assert config.listen == "0.0.0.0:7000"
    assert config.workers == 2
    assert config.node_name == "Node A"


def test_without_a_worker_count_sqlite_gets_few_threads_and_postgresql_many() -> None:
    postgres = '[database]\nurl = "postgresql+psycopg://hdx@/hdx"\n'
    assert parse("").workers == configuration.SQLITE_WORKERS
    assert parse(postgres).workers == 16
    assert parse("", {"HDX_API_WORKERS": "12"}).workers == 12
    assert parse("[api]\nworkers = 7\n").workers == 7
