"""Persistence: the only package that talks to the database (SQLAlchemy 2.x, Alembic).

SQLite in the data directory by default; PostgreSQL (or any SQLAlchemy URL) through
``DATABASE_URL``. The engine is synchronous and every call runs in a worker thread
(``Database.run``), never on the event loop.

One convention for every store (issue #48): a store is a plain synchronous class whose
public methods each open their own session and run one transaction in the calling thread;
code on the event loop calls one as ``await database.run(database.projects.get, project_id)``,
the one visible door to the worker thread (typed with a ParamSpec: a checker sees the
arguments). Measured (``bench/store_calls.py``, SQLite, one stored chat completion read per
call): a coroutine per method (the twin ``_get``/``async def get`` ladders it replaced)
371 µs, ``await database.run(store.get, ...)`` 355 µs; the hop itself 53 µs either way, the
query alone 268 µs, which the loop would stall on. Equal cost, half the methods, a
transaction never split across threads, and tests and the CLI call the same methods
directly. The only coroutines in this package are ``Database.run``/``ping`` and the fronts
that answer from memory, so that most calls cost no hop at all: the settings snapshot
(``Governance.current``, ``ProjectStore.archived``), key authentication and its throttled
touch (``ApiKeyStore``), the usage buffer (``UsageStore``) and the ids no upstream object
can have (``ForwardedObjects``). ``tests/unit/test_storage_convention.py`` keeps it so.
Stores type the database they hold as ``handle.DatabaseHandle``, never this package.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import anyio.to_thread
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import OpenAIError
from . import migrate
from .storable import json_serializer

P = ParamSpec("P")
T = TypeVar("T")


def default_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'llm-backend.db').resolve()}"


def normalize_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` (as platforms hand them out) mean psycopg 3 here."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers never block the writer, and a killed process never leaves a half-written
    # page. synchronous=NORMAL keeps every commit through a process crash (kill -9); only an
    # OS crash or power loss may drop the last commits.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    """The engine, sessions and the stores built on them."""

    def __init__(self, url: str, audit_key: bytes | None = None) -> None:
        """``audit_key``: the audit log's key (``audit_key.of(settings)``); without one the
        chain is sealed under a key anyone knows (``audit_chain.UNKEYED``: tools, tests)."""
        from .api_keys import ApiKeyStore
        from .chat_completions import ChatCompletionStore
        from .conversations import ConversationStore
        from .responses import ResponseStore
        from .usage import UsageStore

        self.url = normalize_url(url)
        is_sqlite = self.url.startswith("sqlite")
        # SQLite: connections move between worker threads; wait for a busy writer, not fail.
        connect_args = {"check_same_thread": False, "timeout": 30} if is_sqlite else {}
        self.engine: Engine = create_engine(
            self.url, pool_pre_ping=True, connect_args=connect_args, json_serializer=json_serializer
        )
        if is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.audit_key = audit_key
        # Every session knows the key its audit entries are sealed with (audit_log.append_in).
        self.sessions: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False, info={"audit_key": audit_key})
        self.chat_completions = ChatCompletionStore(self)
        self.api_keys = ApiKeyStore(self)
        self.responses = ResponseStore(self)
        self.conversations = ConversationStore(self)
        self.usage = UsageStore(self)

    @functools.cached_property
    def projects(self):
        """Projects, the tenants (``projects.py``)."""
        from .projects import ProjectStore

        return ProjectStore(self)

    @functools.cached_property
    def service_accounts(self):
        """Projects' service accounts and keys (``service_accounts.py``)."""
        from .service_accounts import ServiceAccountStore

        return ServiceAccountStore(self)

    @functools.cached_property
    def admin_keys(self):
        """The organisation's managed admin keys (``admin_keys.py``)."""
        from .admin_keys import AdminKeyStore

        return AdminKeyStore(self)

    @functools.cached_property
    def project_limits(self):
        """Projects' per-model rate limits (``project_limits.py``)."""
        from .project_limits import ProjectLimitStore

        return ProjectLimitStore(self)

    @functools.cached_property
    def spend(self):
        """Hard spend limits and spend alerts (``spend.py``)."""
        from .spend import SpendStore

        return SpendStore(self)

    @functools.cached_property
    def retention(self):
        """Data retention: the organisation's type, what projects keep past their period."""
        from .retention import RetentionStore

        return RetentionStore(self)

    @functools.cached_property
    def governance(self):
        """The control plane's settings as requests need them (``governance.py``)."""
        from .governance import Governance

        return Governance(self)

    @functools.cached_property
    def audit_log(self):
        """The append-only audit log (``audit_log.py``)."""
        from .audit_log import AuditLogStore

        return AuditLogStore(self)

    @functools.cached_property
    def vector_index(self):
        """Built on first use: it needs numpy, which a pure gateway does not install."""
        from .vector_index import VectorIndex

        return VectorIndex(self)

    @functools.cached_property
    def mcp_approvals(self):
        """The MCP approval requests the Responses API issued (``mcp_approvals.py``)."""
        from .mcp_approvals import McpApprovals

        return McpApprovals(self)

    @functools.cached_property
    def forwarded_objects(self):
        """Owners of the objects upstreams keep for this service's keys."""
        from .forwarded_objects import ForwardedObjects

        return ForwardedObjects(self)

    @functools.cached_property
    def rate_counters(self):
        """Rate-limit counters shared by the replicas on this database (``rate_counters.py``)."""
        from .rate_counters import RateCounters

        return RateCounters(self)

    def pool_status(self) -> tuple[int, int]:
        """(connections checked out, pool size) of the engine's pool (the metrics read it)."""
        pool = self.engine.pool
        checked_out = getattr(pool, "checkedout", None)
        size = getattr(pool, "size", None)
        return (checked_out() if callable(checked_out) else 0, size() if callable(size) else 0)

    @functools.cached_property
    def vector_stores(self):
        """Vector stores, their files and batches as the API shows them."""
        from .vector_stores import VectorStores

        return VectorStores(self)

    @functools.cached_property
    def vector_store_batches(self):
        from .vector_store_batches import VectorStoreBatches

        return VectorStoreBatches(self)

    @functools.cached_property
    def batches(self):
        """Batches and their lines (``batches.py``)."""
        from .batches import BatchStore

        return BatchStore(self)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking database work in a worker thread. A value no database can hold
        (``storable.py``) is the client's 400, not the driver's error."""
        try:
            return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs))
        except StatementError as error:
            if isinstance(error.orig, OpenAIError):
                raise error.orig from None
            raise

    def upgrade(self, revision: str = "head", owners: dict[str, str] | None = None) -> None:
        """Apply the migrations up to ``revision`` (blocking: call at start-up or from the CLI).
        ``owners``: what static keys' positional owners are now (``Keyring.legacy_owners``),
        carried over once, by the revision that ended positional owners."""
        if self.url.startswith("sqlite:///"):
            Path(make_url(self.url).database).parent.mkdir(parents=True, exist_ok=True)
        migrate.upgrade(self.engine, revision, owners, self.audit_key)

    def revision(self) -> str | None:
        return migrate.current_revision(self.engine)

    def _ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    async def ping(self) -> tuple[bool, str]:
        try:
            await self.run(self._ping)
            return True, ""
        except Exception as exc:  # the reason, without the URL (it may hold a password)
            return False, type(exc).__name__

    def dispose(self) -> None:
        self.engine.dispose()
