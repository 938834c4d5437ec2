"""What the code serving a request may ask about it: the app's services, who is calling,
and the request's own line and headers.

Set by ``middleware.RequestContext`` for every request (and the caller by whichever of
``security.py`` or the fast lane checked the key), read through context variables: the
same whether Connexion's pipeline or the fast lane called the controller.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.types import Scope

from ..auth import ANONYMOUS, Principal
from ..backends.base import caller_headers
from ..backends.registry import ModelRegistry
from ..settings import Settings
from ..storage import Database


@dataclass
class Services:
    """Built once per app: what controllers may use."""

    settings: Settings
    registry: ModelRegistry
    database: Database


_services: ContextVar[Services] = ContextVar("services")
_principal: ContextVar[Principal] = ContextVar("principal", default=Principal(ANONYMOUS, admin=True))
_scope: ContextVar[Scope] = ContextVar("scope", default={"headers": [], "query_string": b""})


def enter(scope: Scope, services: Services | None) -> None:
    """Start serving the request of ``scope``."""
    _scope.set(scope)
    caller_headers.set(scope["headers"])
    _principal.set(Principal(ANONYMOUS, admin=True))
    if services is not None:
        _services.set(services)


def authenticated(principal: Principal) -> None:
    _principal.set(principal)


def current() -> Services:
    """The services of the app serving the current request."""
    return _services.get()


def current_owner() -> str:
    """Who owns what the current request stores."""
    return _principal.get().owner


def scope() -> Scope:
    """The ASGI scope of the request being served (to forward it upstream as it came)."""
    return _scope.get()


_METADATA_PARAM = re.compile(r"^metadata\[(.+)\]$")


def query_metadata() -> dict[str, str]:
    """``metadata[key]=value`` query parameters (a deepObject the spec does not declare as one)."""
    pairs = {}
    for name, value in parse_qsl(_scope.get().get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        match = _METADATA_PARAM.match(name)
        if match:
            pairs[match.group(1)] = value
    return pairs
