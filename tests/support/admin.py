"""What the metering and limits tests share: a project with a key, today's usage results of
it, a wait for a figure that is counted just after an answer (usage, costs, spend), and one
for a clock minute with room for the requests a test counts."""

from __future__ import annotations

import time
from typing import Any, Callable


def same_minute(needs: float = 10) -> None:
    """Wait, if need be, so that what follows (``needs`` seconds of it) happens within one
    clock minute: a project's windows (and keys' in PostgreSQL) are clock-aligned, and a
    count that crosses a minute starts over."""
    if time.time() % 60 > 60 - needs:
        time.sleep(61 - time.time() % 60)


def project_with_key(org, name: str) -> tuple[str, str]:
    """A new project and a service account's key in it: (project id, key)."""
    project = org.projects.create(name=name)
    return project.id, org.projects.service_accounts.create(project.id, name="bot").api_key.value


def today(org, operation: str, project: str, **options: Any) -> list:
    """Today's results of ``project`` in the usage ``operation`` (``completions``, ``images``...)."""
    start = int(time.time()) // 86400 * 86400
    page = getattr(org.usage, operation)(start_time=start, project_ids=[project], limit=1, **options)
    return [result for bucket in page.data for result in bucket.results]


def until(check: Callable[[], Any], seconds: float = 10.0, every: float = 0.1) -> Any:
    """``check()``'s first truthy answer within ``seconds`` (else its last answer)."""
    deadline = time.monotonic() + seconds
    while not (answer := check()) and time.monotonic() < deadline:
        time.sleep(every)
    return answer
