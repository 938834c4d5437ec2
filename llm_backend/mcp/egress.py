"""Which MCP servers this service may connect to (issue #43: closed when unsure).

A server URL under one of ``mcp_allowed_servers`` (URL prefixes: scheme, host and port
equal, the path within the prefix's) is called at whatever address it has: the operator
named it. Any other URL is called only while ``mcp_public_servers`` is on, and only at a
public address: never loopback, private, link-local (the cloud metadata service),
shared, reserved, multicast or documentation ranges, the deprecated site-local IPv6 ones,
nor an IPv6 address that embeds one of those (mapped, compatible, translated, NAT64, 6to4,
Teredo); of the reserved IPv6 block ``::/8`` only NAT64's well-known prefix reaches the
internet (issue #47: ``::a.b.c.d``, ``::ffff:0:a.b.c.d``, ``64:ff9b:1::/48`` and ``fec0::/10``
were let through). A URL's path is compared with a prefix's once normalised as RFC 3986
says (the unreserved characters decoded, dot segments removed), and one whose encoded
slashes or backslashes a server could read as separators is refused: ``/mcp/%2e%2e/x`` is
``/x``, not under ``/mcp``. A name is resolved by this module, every address
it resolves to is checked, and the connection goes to a checked address, so a name that
resolves again to another address (DNS rebinding) is never followed there. Each request
of a connection is checked again, so a redirect is too.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import string
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
from httpcore2 import AsyncNetworkBackend, AsyncNetworkStream, ConnectError
from httpcore2._backends.auto import AutoBackend

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# The IPv6 forms whose last 32 bits are an IPv4 address the stdlib has no property for:
# NAT64's well-known prefix, IPv4-compatible (deprecated) and IPv4-translated (SIIT).
_LAST_32_BITS = (_NAT64, ipaddress.ip_network("::/96"), ipaddress.ip_network("::ffff:0:0:0/96"))
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Refused(Exception):
    """A server URL or address this service does not connect to; the message says why and
    names no secret (the URL's user, password, query and fragment are left out)."""


def shown(url: str) -> str:
    """``url`` as an error may show it: scheme, host, port and path only."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an unreadable URL)"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{port}{parts.path}"[:300]


def _embedded(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped or address.sixtofour:
        return address.ipv4_mapped or address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if any(address in network for network in _LAST_32_BITS):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: Address) -> bool:
    """Whether ``address`` is on the public internet, including what an IPv6 address embeds."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded(address)
        if embedded is not None and not is_public(embedded):
            return False
        # Python 3.11's is_global misses these: site-local (deprecated, RFC 3879) and the
        # reserved ::/8 (IPv4-compatible and -translated forms, local-use NAT64 64:ff9b:1::/48).
        if address.is_site_local or (address.is_reserved and address not in _NAT64):
            return False
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class _Origin:
    scheme: str
    host: str
    port: int
    path: str


def _origin(url: str) -> _Origin:
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 0)
    except ValueError:
        raise Refused(f"'{shown(url)}' is not a URL this service can read.") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise Refused(f"'{shown(url)}' is not an http or https URL.")
    return _Origin(scheme, parts.hostname.lower().rstrip("."), port, normal_path(url, parts.path or "/"))


def _unescaped(match: re.Match) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def normal_path(url: str, path: str) -> str:
    """``path`` as RFC 3986 normalises it (6.2.2: unreserved characters decoded, escapes in
    upper case; 5.2.4: dot segments removed). Refused when a server could read it otherwise:
    an escaped ``/``, ``\\`` or ``%`` (decoded, a separator or an escape of its own), a
    backslash, or a dot segment with parameters (``..;x``, which some servers treat as ``..``)."""
    path = _ESCAPE.sub(_unescaped, path)
    if "\\" in path or re.search(r"%(2F|5C|25)", path) or re.search(r"%(?![0-9A-F]{2})", path):
        raise Refused(f"'{shown(url)}' has an escaped '/', '\\' or '%' in its path, which servers read differently.")
    kept: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments):
        name = segment.split(";", 1)[0]
        if name in (".", "..") and name != segment:
            raise Refused(f"'{shown(url)}' has a dot segment with parameters in its path.")
        last = index == len(segments) - 1
        if name == "..":
            if len(kept) > 1:
                kept.pop()
            if last:
                kept.append("")
        elif name == ".":
            if last:
                kept.append("")
        else:
            kept.append(segment)
    return "/".join(kept) or "/"


def _within(url: _Origin, prefix: _Origin) -> bool:
    if (url.scheme, url.host, url.port) != (prefix.scheme, prefix.host, prefix.port):
        return False
    base = prefix.path.rstrip("/")
    return not base or url.path == base or url.path.startswith(base + "/")


class ServerPolicy:
    """The settings' answer for one URL: ``listed`` (under an allowed prefix: any address),
    ``public`` (public addresses only) or refused."""

    def __init__(self, allowed_prefixes: Iterable[str], public: bool) -> None:
        self.prefixes = [_origin(prefix) for prefix in allowed_prefixes]
        self.public = public

    def route(self, url: str) -> str:
        origin = _origin(url)
        if any(_within(origin, prefix) for prefix in self.prefixes):
            return "listed"
        if not self.public:
            raise Refused(f"'{shown(url)}' is not one of this service's allowed MCP servers (mcp_allowed_servers).")
        try:
            literal = ipaddress.ip_address(origin.host)
        except ValueError:
            return "public"  # a name: its addresses are checked when it is resolved
        if not is_public(literal):
            raise Refused(_private(shown(url), literal))
        return "public"


def _private(where: str, address: Address) -> str:
    return (
        f"'{where}' is at {address}, which is not a public address; only the MCP servers listed in "
        "mcp_allowed_servers may be reached at private, loopback or link-local addresses."
    )


class PublicOnlyBackend(AsyncNetworkBackend):
    """httpcore's network backend for ``public`` URLs: resolve the name here, refuse unless
    every address is public, connect to the first one (never resolved again)."""

    def __init__(self) -> None:
        self.inner = AutoBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:  # as a connection failure (httpx2.ConnectError: HTTP 502 for the client)
            raise ConnectError(f"'{host}' could not be resolved ({type(error).__name__})") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in found]
        if not addresses:
            raise Refused(f"'{host}' resolves to no address.")
        for address in addresses:
            if not is_public(address):
                raise Refused(_private(host, address))
        return await self.inner.connect_tcp(
            str(addresses[0]), port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> AsyncNetworkStream:
        raise Refused("MCP servers are reached over TCP only.")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)
