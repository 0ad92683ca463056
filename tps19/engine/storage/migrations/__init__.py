"""Alembic migrations of the TPS19 schema (run through tps19.engine.storage.migrate, never the alembic CLI)."""
