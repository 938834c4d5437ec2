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
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.types import Scope

from ..auth import ANONYMOUS, Principal
from ..backends.base import caller_headers, tenant, usage_withheld
from ..serving.services import Services

if TYPE_CHECKING:
    from ..serving.metering.meter import Hold


@dataclass
class Record:
    """What is learnt about a request while it is served, for the metrics: its operation
    (whichever of the fast lane or Connexion routed it), the model its body names, and
    when the engine produced its first token."""

    operation_id: str | None = None
    model: str | None = None
    first_token_at: float | None = None
    tokens_counted: bool = False
    usage_recorded: frozenset = frozenset()  # the usage families its model request is counted in (once each)
    metered_model: str | None = None  # the model ``model`` resolves to (registry.canonical): limits, prices, usage
    spend_hold: Hold | None = None  # what it holds against a hard spend limit, settled at its end
    headers: tuple | list = ()  # added to the answer (rate-limit headers, http/key_limits.py)
    rate_limits: tuple | list = ()  # the same windows, as a Realtime rate_limits.updated lists them
    admin_operation: bool = False  # the organisation's (an admin key's), not a tenant's (http/security.py)
    path_params: dict | None = None  # as routed, in the path's order
    usage_withheld: dict | None = None  # an upstream's usage the client did not ask to see (backends.base)
    raw_body: bytes | None = None  # its JSON body's bytes as sent (spec/validation.py): passed on as they came

    def withheld(self, usage: dict) -> None:
        self.usage_withheld = usage


_services: ContextVar[Services] = ContextVar("services")
_principal: ContextVar[Principal] = ContextVar("principal", default=Principal(ANONYMOUS, admin=True))
_scope: ContextVar[Scope] = ContextVar("scope", default={"headers": [], "query_string": b""})
_record: ContextVar[Record] = ContextVar("record")


def enter(scope: Scope, services: Services | None) -> Record:
    """Start serving the request of ``scope``."""
    _scope.set(scope)
    _record.set(record := Record())
    caller_headers.set(scope["headers"])
    usage_withheld.set(record.withheld)
    _principal.set(Principal(ANONYMOUS, admin=True))
    tenant.set(ANONYMOUS)
    if services is not None:
        _services.set(services)
    return record


def record() -> Record:
    """The record of the request being served (a throwaway one outside any request)."""
    try:
        return _record.get()
    except LookupError:
        return Record()


def authenticated(principal: Principal) -> None:
    _principal.set(principal)
    tenant.set(principal.owner)


def current() -> Services:
    """The services of the app serving the current request."""
    return _services.get()


def caller() -> Principal:
    """Who is calling (the keyless mode: an anonymous admin)."""
    return _principal.get()


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
