"""Schema migrations: an empty database reaches the newest revision, the migrated
schema is exactly the one the code describes, and upgrading again changes nothing."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from node.services.admin import AdminService
from node.store import migrate, schema
from node.store.database import Database
from tests.conftest import BACKENDS, PREFIX, STORES, FakeClock
from tests.postgres import PostgresServer


@pytest.fixture(params=BACKENDS)
def empty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database of each backend with no schema at all."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database(f"empty_{uuid.uuid4().hex[:12]}")
    database = Database(url)
    yield database
    database.dispose()


def differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), schema.metadata))


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def shape(engine: Engine) -> dict[str, list[tuple[str, str, bool]]]:
    """Every table's columns: name, type and nullability."""
    inspector = inspect(engine)
    return {
        table: [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)]
        for table in tables(engine)
    }


def test_an_empty_database_migrates_to_the_schema_of_the_code(empty: Database) -> None:
    assert migrate.current(empty.engine) is None
    assert tables(empty.engine) == set()
    assert differences(empty.engine) != []  # the comparison does see a missing schema
    migrate.upgrade(empty.engine)
    assert migrate.current(empty.engine) == migrate.head()
    assert tables(empty.engine) == set(schema.metadata.tables) | {"alembic_version"}
    assert differences(empty.engine) == []


def test_upgrading_twice_changes_nothing(empty: Database) -> None:
    migrate.upgrade(empty.engine)
    empty.initialise(PREFIX, "retail")
    AdminService(empty, FakeClock()).load_catalog(STORES)
    before = shape(empty.engine)

    migrate.upgrade(empty.engine)
    assert migrate.current(empty.engine) == migrate.head()
    assert shape(empty.engine) == before
    with empty.read() as tx:
        assert [s.code for s in tx.stores()] == ["msk-001", "vvo-002"]
        assert tx.setting("key_prefix") == PREFIX
    assert differences(empty.engine) == []


def test_a_node_keeps_its_key_prefix(empty: Database) -> None:
    migrate.upgrade(empty.engine)
    empty.initialise(PREFIX, "retail")
    empty.initialise(PREFIX, "retail")  # again, as `hdx init` run twice does
    with pytest.raises(RuntimeError, match=PREFIX):
        empty.initialise("OTHER", "retail")
    assert empty.key_prefix == PREFIX
