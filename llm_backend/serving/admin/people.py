"""Users, invites, roles, groups and certificates: OpenAI's organisation has people; this
service has none (its tenants are projects, reached with their service accounts' keys), so
each of those operations answers the same honest 404 (``errors.no_people``), never an
empty success that would suggest otherwise. With ``admin_api: upstream`` they are
forwarded to the upstream organisation instead (app/documents.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .errors import no_people


def refused(operation_id: str) -> Callable[..., Awaitable[Any]]:
    """A controller for ``operation_id`` that answers ``no_people``."""

    async def controller(**_parameters: Any) -> Any:
        raise no_people(operation_id)

    controller.__name__ = operation_id.replace("-", "_")
    return controller
