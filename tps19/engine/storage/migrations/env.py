"""Alembic's environment: always online, on the connection tps19 hands over (migrate.py).

There is no alembic.ini and no URL here: the database is the one ``tps19 db`` or the engine
opened, so migrations run with the same 0600 file, lock and one-line errors as everything else.
"""

from alembic import context
from sqlmodel import SQLModel

from tps19.engine.storage import models  # noqa: F401  (registers every table on the metadata)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `tps19 db upgrade`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=True,  # SQLite alters a table by copying it; batch mode does that for us
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
