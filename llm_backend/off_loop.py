"""Work sized by a request's input, run off the event loop (issue #39).

The event loop answers every request of the process, ``/health`` too: a request's work that
grows with its input (parsing and checking a large body, turning a million token ids into
text) ran on it for seconds, and every tenant waited. Such work runs in one of
``THREADS`` threads kept for it, never the default executor the database calls use (a few
large requests must not hold those up), with the request's context variables. Small inputs
stay on the loop: a thread costs about 50 us, more than their work.

A thread helps only where the work lets the GIL go now and then: Python code does (every
5 ms), a long C call does not; see ``http/body.py`` for the JSON parser's case.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

THREADS = 2
# A list of more values than this in a request (token ids, inputs) is large.
LARGE_LIST = 32_768
T = TypeVar("T")
_threads: ThreadPoolExecutor | None = None


async def off_loop(large: bool, work: Callable[..., T], *args: Any) -> T:
    """``work(*args)``: in a thread of its own pool if ``large``, else here."""
    global _threads
    if not large:
        return work(*args)
    if _threads is None:
        _threads = ThreadPoolExecutor(THREADS, thread_name_prefix="large-input")
    call = functools.partial(contextvars.copy_context().run, work, *args)
    return await asyncio.get_running_loop().run_in_executor(_threads, call)


def many_values(value: Any) -> bool:
    """Whether ``value`` is a list of more than ``LARGE_LIST`` values, those of the lists in
    it counted (a prompt of token arrays, messages with content parts)."""
    if not isinstance(value, list):
        return False
    count = len(value)
    for item in value:
        if count > LARGE_LIST:
            break
        if isinstance(item, (list, dict)):
            count += len(item.get("content") or ()) if isinstance(item, dict) and isinstance(item.get("content"), list) else len(item)
    return count > LARGE_LIST
