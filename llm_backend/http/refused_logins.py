"""Refused admin logins in the audit log (``login.failed``): a 401 or 403 on an admin
operation, told by the ``Authenticator`` (``auth/``, its ``refused_admin``) whichever family
the operation is of, so the core keeps them, not the control plane's own modules.

At most ``REFUSALS_PER_MINUTE`` are logged per replica and minute in each budget (a flood of
bad keys must not fill the database; the rest are counted in a warning): one for requests
without a key, one for wrong keys, and one for each valid key without the right, so that
keyless noise cannot use up the entries that log a real key's probing (issue #56). Each is
written beside its answer, off the request's path.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..auth import Principal
from ..errors import OpenAIError
from ..storage import Database
from ..storage.audit_log import actor_of, new_entry

log = logging.getLogger(__name__)
REFUSALS_PER_MINUTE = 60  # in each budget (see the module's docstring)


class RefusedLogins:
    """Refused admin logins into the audit log (``login.failed``), bounded per minute in
    budgets of their own (``budget``)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._minute = 0
        self._counts: dict[str, int] = {}  # budget -> refusals this minute
        self._tasks: set[asyncio.Task] = set()

    def __call__(self, principal: Principal | None, error: OpenAIError) -> None:
        minute = int(time.time()) // 60
        if minute != self._minute:
            beyond = sum(count - REFUSALS_PER_MINUTE for count in self._counts.values() if count > REFUSALS_PER_MINUTE)
            if beyond:
                log.warning("refused admin logins beyond the audit log's budget", extra={"not_logged": beyond})
            self._minute, self._counts = minute, {}
        kind = budget(principal, error)
        count = self._counts[kind] = self._counts.get(kind, 0) + 1
        if count > REFUSALS_PER_MINUTE:
            return
        actor, actor_id = actor_of(principal)
        details = {"error_code": error.code or "", "error_message": error.message}
        made = new_entry("login.failed", {"login.failed": details}, actor=actor, actor_id=actor_id)
        database = self.database
        task = asyncio.get_running_loop().create_task(database.run(database.audit_log.append, [made]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def budget(principal: Principal | None, error: OpenAIError) -> str:
    """The budget a refused login counts in: a valid key's own (its id: the keys that exist
    bound how many); else its refusal's (no key, a wrong key: the catalogue's two messages)."""
    return f"key {principal.key}" if principal is not None else f"refusal {error.message}"
