"""Persistence: the only package that talks to the database (SQLAlchemy).

SQLite in the data directory by default; PostgreSQL (or any SQLAlchemy URL) through
``DATABASE_URL``. Blocking database calls run in a worker thread, never on the event loop.
"""

from __future__ import annotations

from pathlib import Path

import anyio.to_thread
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine


def default_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'llm-backend.db').resolve()}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers never block the writer, and a crash never leaves a half-written page.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)

    def _ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    async def ping(self) -> tuple[bool, str]:
        try:
            await anyio.to_thread.run_sync(self._ping)
            return True, ""
        except Exception as exc:  # the reason, without the URL (it may hold a password)
            return False, type(exc).__name__

    def dispose(self) -> None:
        self.engine.dispose()
