"""What a store may use of the database: its sessions, its dialect, the worker-thread door
(``run``), the audit key, and the Admin API's settings cache (``admin_snapshot``).

A Protocol, so that stores type the ``Database`` they are handed without importing the
package that builds them (``storage/__init__.py`` builds the stores: importing it back
from each store was the package's import circle).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, Protocol, TypeVar

from sqlalchemy.orm import Session, sessionmaker

P = ParamSpec("P")
T = TypeVar("T")


class SettingsCache(Protocol):
    """The Admin API's settings as requests read them (``admin_snapshot.AdminSnapshot``)."""

    def changed(self) -> None: ...

    async def current(self) -> Any: ...


class DatabaseHandle(Protocol):
    """The part of ``storage.Database`` a store holds."""

    sessions: sessionmaker[Session]
    audit_key: bytes | None

    @property
    def dialect(self) -> str: ...

    @property
    def admin_snapshot(self) -> SettingsCache: ...

    def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]: ...
