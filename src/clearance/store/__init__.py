"""Storage: SQLAlchemy 2 Core tables, engines for SQLite and PostgreSQL, Alembic migrations."""

from clearance.store.db import connect, migrate, reading
from clearance.store.tables import metadata

__all__ = ["connect", "metadata", "migrate", "reading"]
