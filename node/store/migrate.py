"""Schema migrations with alembic, run from code: `hdx init` creates, `hdx migrate` upgrades."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from node.store.tx import unavailable

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Brings the schema up to revision, from empty or from any older revision.

    Raises:
        Unavailable: the database cannot be reached.
    """
    try:
        command.upgrade(_config(engine), revision)
    except OperationalError as error:
        raise unavailable(error) from error


def current(engine: Engine) -> str | None:
    """The revision the database is at; None when it has no schema yet.

    Raises:
        Unavailable: the database cannot be reached.
    """
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except OperationalError as error:
        raise unavailable(error) from error


def head() -> str:
    """The newest revision this code knows."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision
