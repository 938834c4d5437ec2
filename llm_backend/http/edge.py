"""Which browsers' requests reach the service: the rules a web page cannot walk around.

A service with no keys lets everyone in as one tenant, the admin. It listens on loopback
only, but any web page the user opens can still reach loopback (issue #33, seen live):
- **DNS rebinding**: a page at ``http://attacker.example:8000`` whose name then resolves to
  127.0.0.1 talks to us same-origin, so CORS never applies; its requests carry ``Host:
  attacker.example:8000``. A keyless service answers 403 to a ``Host`` that is not a loopback
  name (``localhost``, ``*.localhost``), an IP address (a literal address cannot be rebound:
  the pod IP of a probe, a LAN address the operator bound to) or in ``allowed_hosts``. With
  ``allowed_hosts`` set the rule holds with keys too. (Ollama fixed the same hole,
  CVE-2024-28224, by checking ``Host``.)
- **Cross-site writes**: a form or a ``fetch`` with a "simple" content type (multipart,
  text/plain) is sent without a CORS preflight: a page could upload a file or start a
  transcription. A keyless service answers 403 to a state-changing request whose ``Origin``
  is another site's and not in ``cors_origins``; browsers send ``Origin`` on every cross-origin
  POST (and ``Sec-Fetch-Site: cross-site`` where they leave it out).
- **WebSocket handshakes**, which CORS never covers, are held to the ``Origin`` rule with or
  without keys (``/v1/responses`` in WebSocket mode).
A request with no ``Origin`` (the SDKs, curl) and the service's own pages (``/playground``,
``/docs``: same origin) are never refused by these rules.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.types import Scope

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def host_name(host: str) -> str:
    """``Host`` without its port, lower case, IPv6 brackets removed."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_loopback_name(name: str) -> bool:
    return name == "localhost" or name.endswith(".localhost")


def foreign_host(scope: Scope, allowed_hosts: Sequence[str], keyless: bool) -> str | None:
    """The ``Host`` of a request that must be refused, else None."""
    if not keyless and not allowed_hosts:
        return None
    host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
    name = host_name(host)
    if _is_address(name) or _is_loopback_name(name) or "*" in allowed_hosts:
        return None
    for allowed in allowed_hosts:
        allowed = allowed.lower()
        if name == allowed or (allowed.startswith("*.") and name.endswith(allowed[1:])):
            return None
    return host


def _same_origin(origin: str, scope: Scope) -> bool:
    host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
    return bool(host) and urlsplit(origin).netloc.lower() == host


def cross_site_origin(scope: Scope, allowed_origins: Sequence[str], keyless: bool) -> str | None:
    """The ``Origin`` of a WebSocket handshake or (keyless) a state-changing request that
    must be refused, else None: another site's page, not in ``cors_origins``."""
    websocket = scope["type"] == "websocket"
    if not websocket and not (keyless and scope["method"] in STATE_CHANGING):
        return None
    headers = dict(scope["headers"])
    origin = headers.get(b"origin", b"").decode("latin-1")
    if not origin:
        # A browser that leaves Origin out still says where the request comes from.
        return "cross-site" if not websocket and headers.get(b"sec-fetch-site") == b"cross-site" else None
    if "*" in allowed_origins or origin in allowed_origins or _same_origin(origin, scope):
        return None
    return origin
