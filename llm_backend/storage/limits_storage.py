"""The ``limits`` library's storage that ``rate_limit_storage`` names (``redis://...``,
``memory://``, ...): the key limits' counters (``http/key_limits.LimitsCounters``) count in
it, the readiness probe (``serving/readiness.py``) pings it.

Its failures come wrapped (``limits.errors.StorageError``, whatever the storage: redis-py's
``ConnectionError``, a timeout, ...), so that the counters can tell a storage that is down
from a fault of their own and answer it with a 503 (issue #56: it was an unhandled 500,
while ``/ready`` stayed 200). A Redis connection waits at most ``TIMEOUT`` to connect and
for an answer (a URI's own ``socket_timeout`` / ``socket_connect_timeout`` win): the
counters run on the event loop, and a Redis that stopped answering must not hold it longer.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from limits.storage import Storage, storage_from_string

TIMEOUT = 0.5  # seconds: a Redis round trip takes well under a millisecond
_REDIS = ("redis", "rediss", "redis+unix")  # schemes whose client takes redis-py's socket options


def in_limits(uri: str) -> bool:
    """Whether ``rate_limit_storage`` names a ``limits`` storage (empty: this process's memory
    or the database's counters; ``database``: the database's)."""
    return bool(uri) and uri != "database"


def limits_storage(uri: str) -> Storage:
    """A new storage for ``uri``, its failures wrapped and its waits bounded (see above).
    One of ``limits``' async storages (``async+redis://``) is refused by name: the counters
    and the probe call it synchronously (its limiter failed a bare assertion at start-up)."""
    scheme = urlsplit(uri).scheme
    options = {"socket_timeout": TIMEOUT, "socket_connect_timeout": TIMEOUT} if scheme in _REDIS else {}
    storage = storage_from_string(uri, wrap_exceptions=True, **options)
    if not isinstance(storage, Storage):  # the URI's scheme only: its credentials stay out
        raise ValueError(f"rate_limit_storage: {scheme}:// is an async storage; name the synchronous one "
                         f"({scheme.removeprefix('async+')}://)")
    return storage
