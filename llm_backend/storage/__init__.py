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
(``AdminSnapshot.current``, ``ProjectStore.archived``), key authentication and its throttled
touch (``ApiKeyStore``), the usage buffer (``UsageStore``) and the ids no upstream object
can have (``ForwardedObjects``). ``tests/unit/test_storage_convention.py`` keeps it so.
Stores type the database they hold as ``handle.DatabaseHandle``, never this package.

Each core store is one typed attribute of ``Database`` (``StoreOf``: built on first use, its
module imported only then; those the request path needs built with the database, ``EAGER``);
a family's store is ``database.store(TheStore)``, its revisions in its folder, read with the
core's as one history (``migrate.py``).

The modules (rank 0). The tables are ``models/``, a module per family; the schema is
Alembic's ``migrations/``, run at start-up and by ``llm-backend db upgrade``
(docs/PERSISTENCE.md).

- the database itself: ``handle.py`` (what a store may use of it: a Protocol, so that no store
  imports this package), ``migrate.py``, ``clock.py`` (the database's clock in SQL, for every
  lease and expiry replicas compare), ``storable.py`` (the one guard for text no database
  holds: NUL, over-long, unpaired surrogates; matches nothing when compared, OpenAI's 400
  when written), ``paging.py`` (the one cursor of the control plane's lists), ``dml.py``
  (the rows an UPDATE or DELETE changed: ``Session.execute`` is typed to return a ``Result``,
  a ``CursorResult`` for DML: cast once, there);
- stored objects, each query scoped to its owner: ``chat_completions.py``, ``responses.py``
  (a turn's row; history walked back by ``previous_response_id``, never copied forward),
  ``conversations.py``, ``files.py`` (rows here, bytes in a directory), ``uploads.py``,
  ``batches.py`` (leases; one output line per input line, written once; counts computed from
  the lines), ``mcp_approvals.py`` (answered once: one conditional UPDATE),
  ``forwarded_objects.py`` (the owner of each id an upstream keeps for our keys: first claim
  wins);
- vector stores: ``vector_stores.py``, ``vector_store_batches.py``, ``vector_store_rows.py``
  (as the API shows them: counts, usage and statuses computed from the rows, never stored),
  ``vector_index.py`` (files and chunks: what indexing writes and search reads),
  ``keyword_index.py`` (SQLite FTS5 bm25, PostgreSQL idf-weighted ``ts_rank``);
- the control plane: ``projects.py`` (the tenants), ``service_accounts.py``, ``api_keys.py``
  (every managed key as checked on each request: sha256 digests only), ``admin_keys.py``,
  ``project_limits.py``, ``spend.py``, ``retention.py``, ``admin_snapshot.py`` (what every
  request reads of it, read again every 2 s), ``audit_log.py`` and ``audit_chain.py``
  (append-only; each entry sealed to the one before it, HMAC-SHA256);
- counting: ``usage.py`` (tokens per minute, key, project, model and family, written in
  batches), ``rate_counters.py`` (the rate limits every replica on one PostgreSQL shares),
  ``limits_storage.py`` (the ``limits`` storage ``rate_limit_storage`` names: failures
  wrapped, Redis waits capped at 0.5 s).
"""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

import anyio.to_thread
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import OpenAIError
from . import migrate
from .storable import json_serializer

if TYPE_CHECKING:  # the stores' modules are imported when a store is first used
    from .admin_keys import AdminKeyStore
    from .admin_snapshot import AdminSnapshot
    from .api_keys import ApiKeyStore
    from .audit_log import AuditLogStore
    from .batches import BatchStore
    from .chat_completions import ChatCompletionStore
    from .conversations import ConversationStore
    from .forwarded_objects import ForwardedObjects
    from .mcp_approvals import McpApprovals
    from .project_limits import ProjectLimitStore
    from .projects import ProjectStore
    from .rate_counters import RateCounters
    from .responses import ResponseStore
    from .retention import RetentionStore
    from .service_accounts import ServiceAccountStore
    from .spend import SpendStore
    from .usage import UsageStore
    from .vector_index import VectorIndex
    from .vector_store_batches import VectorStoreBatches
    from .vector_stores import VectorStores

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S")


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


EAGER = ("chat_completions", "api_keys", "responses", "conversations", "usage")
_BUILDING = threading.RLock()  # a store's constructor may ask for another


class StoreOf(Generic[S]):
    """One store of the core, as an attribute of ``Database`` typed by its class: built on
    first use and kept, its module imported only then (the vector index needs numpy, which a
    pure gateway does not install); those the request path needs at once are built with the
    database (``EAGER``). One line each in ``Database``, and a checker sees every call through
    it (issue #58: a ``__getattr__ -> Any`` let calls with wrong arguments pass)."""

    def __init__(self, where: str) -> None:
        self.where = where  # "module:Class" in this package

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, database: None, owner: type) -> StoreOf[S]: ...

    @overload
    def __get__(self, database: Database, owner: type) -> S: ...

    def __get__(self, database: Database | None, owner: type) -> StoreOf[S] | S:
        if database is None:
            return self
        with _BUILDING:  # worker threads may ask at once: one store each
            found = database.__dict__.get(self.name)
            if found is None:
                module, _, attribute = self.where.partition(":")
                kind = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
                # Kept on the instance: later reads find it there, without this method.
                found = database.__dict__[self.name] = kind(database)
        return found


class Database:
    """The engine, sessions and the stores built on them (``database.<store>``; a family's:
    ``database.store(Class)``)."""

    chat_completions: StoreOf[ChatCompletionStore] = StoreOf("chat_completions:ChatCompletionStore")
    api_keys: StoreOf[ApiKeyStore] = StoreOf("api_keys:ApiKeyStore")
    responses: StoreOf[ResponseStore] = StoreOf("responses:ResponseStore")
    conversations: StoreOf[ConversationStore] = StoreOf("conversations:ConversationStore")
    usage: StoreOf[UsageStore] = StoreOf("usage:UsageStore")
    projects: StoreOf[ProjectStore] = StoreOf("projects:ProjectStore")  # projects, the tenants
    service_accounts: StoreOf[ServiceAccountStore] = StoreOf("service_accounts:ServiceAccountStore")  # and their keys
    admin_keys: StoreOf[AdminKeyStore] = StoreOf("admin_keys:AdminKeyStore")  # the organisation's managed admin keys
    project_limits: StoreOf[ProjectLimitStore] = StoreOf("project_limits:ProjectLimitStore")  # per-model rate limits
    spend: StoreOf[SpendStore] = StoreOf("spend:SpendStore")  # hard spend limits and spend alerts
    retention: StoreOf[RetentionStore] = StoreOf("retention:RetentionStore")  # what projects keep past their period
    admin_snapshot: StoreOf[AdminSnapshot] = StoreOf("admin_snapshot:AdminSnapshot")  # the Admin API's settings
    audit_log: StoreOf[AuditLogStore] = StoreOf("audit_log:AuditLogStore")  # the append-only audit log
    vector_index: StoreOf[VectorIndex] = StoreOf("vector_index:VectorIndex")  # numpy: built on first use only
    mcp_approvals: StoreOf[McpApprovals] = StoreOf("mcp_approvals:McpApprovals")  # MCP approval requests issued
    forwarded_objects: StoreOf[ForwardedObjects] = StoreOf("forwarded_objects:ForwardedObjects")  # upstream objects' owners
    rate_counters: StoreOf[RateCounters] = StoreOf("rate_counters:RateCounters")  # counters shared by the replicas
    vector_stores: StoreOf[VectorStores] = StoreOf("vector_stores:VectorStores")  # vector stores as the API shows them
    vector_store_batches: StoreOf[VectorStoreBatches] = StoreOf("vector_store_batches:VectorStoreBatches")
    batches: StoreOf[BatchStore] = StoreOf("batches:BatchStore")  # batches and their lines

    def __init__(self, url: str, audit_key: bytes | None = None, migrations: Sequence[Path] = ()) -> None:
        """``audit_key``: the audit log's key (``audit_key.of(settings)``); without one the
        chain is sealed under a key anyone knows (``audit_chain.UNKEYED``: tools, tests).
        ``migrations``: the families' folders of Alembic revisions, in the one history with
        the core's (``migrate.py``; ``Family.migrations``)."""
        self.url = normalize_url(url)
        self.migrations = tuple(migrations)
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
        self._stores: dict[Any, Any] = {}  # the families' (``store``)
        for name in EAGER:
            getattr(self, name)

    def store(self, kind: Callable[[Database], S]) -> S:
        """The store of class ``kind`` (a family's: ``families/<name>/store.py``), built on
        first use with this database and kept, as the core's (``StoreOf``), with no line to
        register and a type a checker follows."""
        with _BUILDING:
            found = self._stores.get(kind)
            if found is None:
                found = self._stores[kind] = kind(self)
        return found

    def pool_status(self) -> tuple[int, int]:
        """(connections checked out, pool size) of the engine's pool (the metrics read it)."""
        pool = self.engine.pool
        checked_out = getattr(pool, "checkedout", None)
        size = getattr(pool, "size", None)
        return (checked_out() if callable(checked_out) else 0, size() if callable(size) else 0)

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
        database = make_url(self.url).database
        if self.url.startswith("sqlite:///") and database:  # a file's: its folder made first
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        migrate.upgrade(self.engine, revision, owners, self.audit_key, self.migrations)

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
